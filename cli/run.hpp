#pragma once
#include <string>
#include <vector>

namespace lockstep::cli {

struct RunCliOptions {
  std::string target;                     // lockstep is the client (tests a server)
  std::string listen, trigger, reset;     // lockstep is the server (tests a client)
  std::vector<std::string> scenarios;     // files or directories (run); empty for the suite's own
  std::string suite;                      // "server" or "client" for `lockstep suite`, empty for `lockstep run`
  std::string suite_dir;                  // where the suite's cases are (default: the built-in path)
  std::vector<std::string> only, skip;    // case id or rule prefixes
  std::string format = "text", color = "auto", html, output;
  std::vector<std::string> rcpts;         // {rcpt1}..{rcpt3}
  std::string bad_rcpt, from;
  double timeout = 10;
  bool verbose = false;
};

struct ReplayCliOptions {
  std::string file, input_format = "auto", conn, output_dir;
  RunCliOptions run;  // --target, --format, --html, -o, --timeout
};
// `lockstep replay FILE --target ADDR`: 0 when every session got the recorded reply codes.
int run_replay(const ReplayCliOptions& o);
// `lockstep record-to-scenario FILE [-o DIR]`: writes one scenario per connection.
int run_record_to_scenario(const ReplayCliOptions& o);

// `lockstep run` and `lockstep suite`: 0 when no case failed, 1 when one did (or could
// not run), 2 for usage errors and unreadable scenarios.
int run_scenarios(const RunCliOptions& o);

}  // namespace lockstep::cli
