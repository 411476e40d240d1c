#pragma once
// Scenarios: a session written like a transcript (YAML, scenarios/README.md), that
// lockstep plays against a live peer. Parsing is strict: every error names the file and
// line.
#include <chrono>
#include <cstdint>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "proxy/fault.hpp"

namespace lockstep::scenarios {

// What an S: step accepts as the next reply (or replies).
struct ReplyPattern {
  std::vector<std::string> codes;  // alternatives: "250", "2xx", "5xx"; empty: any code
  std::string regex_text;          // "~ REGEX": searched in the whole reply text
  std::optional<std::regex> regex;
  bool none = false;               // no reply may arrive within the wait
  bool optional = false;           // "S?": taken when the next reply matches, else left for the next step
  std::uint32_t count = 1;         // this many replies in a row, each matching
  std::string text;                // as written, for reports

  // Whether one reply matches: its code, and the regex searched in its text (each line
  // after the code and its separator, joined by "\n").
  bool matches(int code, const std::string& reply_text) const;
};

// What a C: step of a server-role scenario accepts as the client's next command(s).
struct CommandPattern {
  std::vector<std::string> verbs;  // alternatives ("MAIL", "RCPT"); empty: any command
  std::string regex_text;          // "~ REGEX": searched in the whole command line
  std::optional<std::regex> regex;
  std::uint32_t count = 1;
  bool optional = false;           // "C?"
  bool content = false;            // "C: content": message content up to the end of data
  bool none = false;               // "C: none": no command within 1 s
  std::string text;                // as written

  bool matches(const std::string& line) const;
};

struct ScenarioStep {
  enum class Kind : std::uint8_t {
    send,           // bytes to the peer
    expect,         // replies from the peer (lockstep the client)
    wait,           // a pause
    close,          // lockstep half-closes its side
    expect_close,   // the peer must close within the wait
    expect_command, // the client's command(s) or content (lockstep the server)
    accept,         // lockstep the server: close this connection, wait for the client's next one
    trigger,        // run the trigger command again
    no_connection,  // no new connection may arrive within `wait`
    replies,        // lockstep the client: take the replies the server owes (by the engine's count), up to `wait`
  };
  Kind kind = Kind::send;
  int line = 0;                   // in the scenario file
  std::string bytes;              // send
  std::size_t fragment = 0;       // send: octets per write (0: all in one write)
  bool if_matched = false;        // send ("S?", role server): only when the C? step before it matched
  std::string shown;              // for reports: the command(s) as written
  ReplyPattern expect;            // expect
  CommandPattern command;         // expect_command
  std::chrono::milliseconds wait{0};
};

struct Scenario {
  std::string file;
  std::string id, title, role = "client", source, requirement;  // role: client (tests a server) or server (tests a client)
  std::vector<std::string> rules;     // rule IDs of the catalogue the case checks
  std::vector<std::string> needs;      // capabilities the server must advertise, or the case is not applicable
  std::vector<ScenarioStep> steps;
  std::chrono::milliseconds timeout{0};  // per expectation; 0: the runner's default
  // Faults on what lockstep writes (the --fault syntax): on the commands when lockstep is
  // the client, on the replies when it is the server; every connection of the case.
  std::vector<proxy::FaultSpec> faults;
};

// Placeholders a scenario may use: {rcpt1} {rcpt2} {rcpt3} {bad_rcpt} {from} {helo}.
struct Placeholders {
  std::vector<std::string> rcpts = {"alice@lab.test", "bob@lab.test", "carol@lab.test"};
  std::string bad_rcpt = "nobody@lab.test";
  std::string from = "sender@example.org";
  std::string helo = "lockstep.test";
};

// Parses one scenario file; throws std::runtime_error "FILE:LINE: what is wrong".
Scenario load_scenario(const std::string& path, const Placeholders& ph);
// The text of a scenario file (at most 4 MiB); throws `PATH: ...` when it cannot be read.
std::string read_scenario_file(const std::string& path);
Scenario parse_scenario(const std::string& text, const std::string& name, const Placeholders& ph);

// Every *.yaml under `path` (or `path` itself), sorted by file name.
std::vector<std::string> scenario_files(const std::string& path);

}  // namespace lockstep::scenarios
