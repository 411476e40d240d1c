#pragma once
// Plays a scenario against a live server (lockstep is the client): sends the C: steps,
// matches each reply against the S: steps, and lets the engine judge the whole session.
#include <chrono>
#include <string>
#include <vector>

#include "engine/event.hpp"
#include "scenarios/scenario.hpp"

namespace lockstep::scenarios {

enum class Verdict : std::uint8_t { pass, fail, not_applicable, error };
std::string_view to_string(Verdict v);

struct CaseResult {
  std::string id, title, file, requirement, source;
  std::vector<std::string> rules;
  Verdict verdict = Verdict::pass;
  std::string reason;                    // why it failed, does not apply, or could not run
  int line = 0;                          // the scenario line where it failed
  std::vector<std::string> transcript;   // "C: ..." / "S: ..." as exchanged
  std::vector<Finding> findings;         // the engine's findings about the server (warnings and errors)
  double seconds = 0;
};

struct RunOptions {
  std::string target;                            // host:port, [v6]:port or unix:/path
  std::chrono::milliseconds timeout{10000};      // for each expected reply
  std::chrono::milliseconds connect_timeout{5000};
  Placeholders placeholders;
};

// Connects to host:port, [v6]:port or unix:/path (non-blocking, TCP_NODELAY); -1 with
// `error` set.
int connect_to(const std::string& target, std::chrono::milliseconds timeout, std::string& error);

// Runs one scenario on a fresh connection. Never throws for the peer's behaviour: a
// refused connection is Verdict::error with the reason.
CaseResult run_client(const Scenario& sc, const RunOptions& opts);

}  // namespace lockstep::scenarios
