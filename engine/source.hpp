#pragma once
// A source of recorded traffic: the events of one or many connections, in the order the
// recorder saw them. Importers turn recordings, logs and dumps into sources.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "engine/linereader.hpp"
#include "engine/textindex.hpp"
#include "engine/types.hpp"

namespace lockstep {

struct SourceEvent {
  enum class Kind : std::uint8_t {
    open,    // a connection starts: client/server addresses in a, b; bytes "mid-session"
             // when the source joins a connection after its start
    data,    // bytes in direction `dir`
    close,   // the peer sending in `dir` closed its side
    end,     // the connection is over (both sides gone, or the log says so)
    status,  // a client-side delivery status line (Postfix), text in `bytes`
    fault,   // a fault lockstep injected (proxy recordings), text in `bytes`
    timeout, // the recorder gave up waiting (idle timeout)
  };
  Kind kind = Kind::data;
  std::string conn;   // connection key, unique within the source
  Dir dir = Dir::client;
  std::string bytes;
  // data: what the reader learnt of `bytes` while decoding them (valid only if it did).
  TextIndex index;
  Time time = 0;
  std::string a, b;   // open: client and server address
  // fault: the stream range [offset, offset + length) of `dir` the fault wrote (length
  // 0: where it removed or held bytes back); `located` when the source gave it.
  std::uint64_t offset = 0, length = 0;
  bool located = false;
};

// What a source knows, which decides the proofs available (lmtp-rules.md §15.1).
struct SourceInfo {
  std::string format;        // "jsonl", "postfix", "socat"
  bool ordered = true;       // both streams in wire order: DESYNC-1 and group checks
  bool content_visible = true;
  bool mid_session = false;  // sessions may start mid-way
  std::string order_note;    // a sentence for the report
};

class Source {
 public:
  virtual ~Source() = default;
  // The next event; false at the end or on an error (error() then says what).
  virtual bool next(SourceEvent& ev) = 0;
  virtual SourceInfo info() const = 0;
  virtual std::string error() const { return error_; }
  // A source whose events can be read again (a JSON Lines recording in a regular file):
  // span() gives the octets [begin, end) of the file that held the last event and
  // nothing else, and reread() reads n octets of the file from `at` into `out` (false
  // when they are gone). make_jsonl_source() reads such octets as events again.
  virtual bool rereadable() const { return false; }
  virtual bool span(std::uint64_t& begin, std::uint64_t& end) const {
    (void)begin, (void)end;
    return false;
  }
  virtual bool reread(std::uint64_t at, char* out, std::size_t n) const {
    (void)at, (void)out, (void)n;
    return false;
  }
  // Problems that did not stop the import (unparsable lines, cut lines...).
  std::uint64_t skipped_lines = 0;
  std::string first_skipped;

 protected:
  std::string error_;
};

// Opens `path` (or "-" for standard input) and picks the importer by looking at the
// first lines, unless `format` names one ("jsonl", "postfix", "socat"). Returns null
// and sets `error` when the file cannot be read or its format is unknown.
std::unique_ptr<Source> open_source(const std::string& path, const std::string& format, std::string& error);

std::unique_ptr<Source> make_jsonl_source(std::unique_ptr<LineReader> in);
std::unique_ptr<Source> make_postfix_source(std::unique_ptr<LineReader> in);
std::unique_ptr<Source> make_socat_source(std::unique_ptr<LineReader> in);

// Which format the start of a file looks like: "jsonl", "postfix", "socat" or "".
std::string sniff_format(std::string_view head);

}  // namespace lockstep
