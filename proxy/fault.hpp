#pragma once
// Faults: what lockstep does to the relayed bytes, and where. A fault is an action at a
// protocol position ("inject '350 lockers' before the first end-of-data reply"), for a
// choice of connections. The syntax, one fault per --fault:
//
//   [NAME=]ACTION@WHERE[,KEY=VALUE...]     or     PRESET[,KEY=VALUE...]
//
// WHERE: greeting | VERB[#N[+]] | eod[#K[+]] | any[#N[+]] | content | data+N
// (the reply to / the Nth command of a verb, the Kth per-recipient reply after end of
// data or BDAT LAST, the Nth command of any verb, the message content, after N octets
// of content; "+" means "and every later one"). docs/faults.md has the full table.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/command.hpp"
#include "engine/types.hpp"

namespace lockstep::proxy {

enum class FaultAction : std::uint8_t {
  // On replies (server to client).
  inject,        // a reply (or a line, with line=N) before the one at the position
  inject_after,  // ... after it
  replace,       // its code (code=, the enhanced code's class follows) or its whole text (text=)
  drop,          // the reply (or line N)
  dup,           // sent twice
  swap,          // sent after the next reply of its pipeline group
  split,         // a multi-line reply sent as two replies, after line N
  delay,         // held back ms (+ up to jitter) milliseconds
  fragment,      // written size octets at a time
  coalesce,      // held until no reply is owed, then written with the others in one write
  close,         // both connections closed instead of passing it on
  reset,         // the client's connection reset (RST), the upstream closed
  shutdown,      // "421 4.3.2 ..." instead of it, then both connections closed
  early,         // any#N: a reply (text=) for command N sent before the client sends it; the server's own dropped
  // On commands and content (client to server).
  bare_lf,       // CRLF line ends sent as LF
  bare_cr,       // ... as CR
  smuggle,       // an ambiguous end-of-data sequence (variant=) before the real one
  long_line,     // the command line padded to len= octets
  after_quit,    // commands (text=, default NOOP) sent after QUIT
  pipeline_body, // DATA's 354 answered by lockstep, the content sent before the server's 354
};
std::string_view to_string(FaultAction a);

enum class FaultWhere : std::uint8_t { greeting, command, any, eod, content, data_octets };

struct FaultSpec {
  std::string name;            // NAME=, the preset's name, or the spec text
  std::string spec;            // the text as given (after preset expansion)
  FaultAction action = FaultAction::inject;
  Dir dir = Dir::server;       // the stream the fault changes
  FaultWhere where = FaultWhere::any;
  Verb verb = Verb::unknown;   // FaultWhere::command
  std::uint32_t nth = 0;       // #N (0: every)
  bool and_later = false;      // #N+
  std::uint32_t line = 0;      // line=N: a line inside a multi-line reply (0: the whole reply)
  std::uint32_t txn = 0;       // txn=N: only the Nth end of data of a connection (0: every)
  std::uint64_t octets = 0;    // data+N
  std::vector<std::string> text;  // text=: lines, without CRLF
  int code = 0;                // code=
  std::chrono::milliseconds ms{0}, jitter{0};
  std::size_t size = 1;        // fragment: octets per write
  std::size_t len = 1000;      // long-line: octets on the line with its CRLF
  std::string variant = "lflf";  // smuggle: lflf crcr crlf lfcr lfcrlf crlflf crcrlf crlfcr
  // Which connections (all unless set): the Nth, every Nth, with a probability drawn
  // from the connection's seed; at most `times` firings per connection (0: no limit).
  std::uint64_t conn = 0, every = 0;
  double probability = 1.0;
  std::uint32_t times = 0;
};

// Parses one --fault value; nullopt with `error` set (a sentence naming the bad part).
std::optional<FaultSpec> parse_fault(std::string_view text, std::string& error);

// "inject '350 lockers' before the 1st end-of-data reply, on every connection".
std::string describe(const FaultSpec& f);

struct FaultPreset {
  std::string_view name, spec, incident;
};
const std::vector<FaultPreset>& fault_presets();

// Whether the fault applies to connection number `conn` (1-based); `draw` is a uniform
// number in [0, 1) from the connection's seed.
bool selects(const FaultSpec& f, std::uint64_t conn, double draw);

// The octets of an ambiguous end-of-data variant ("lflf" -> "\n.\n"), or empty.
std::string_view smuggle_bytes(std::string_view variant);

}  // namespace lockstep::proxy
