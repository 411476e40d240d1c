#pragma once
// Plays a server-role scenario: lockstep is the LMTP server and tests a client. A
// trigger command makes the client under test deliver (e.g. sendmail into a Postfix);
// lockstep accepts its connection, sends the S: replies, matches the C: commands, and
// lets the engine judge what the client did.
#include <chrono>
#include <functional>
#include <string>

#include "scenarios/runner.hpp"

namespace lockstep::scenarios {

struct ServeOptions {
  std::string trigger;   // shell command run at the start of each case (and by trigger: steps)
  std::string reset;     // shell command run before each case (e.g. empty the client's queue)
  std::chrono::milliseconds timeout{30000};  // for each expected connection or command
  Placeholders placeholders;
  // In-process trigger (tests): called where the trigger command would run.
  std::function<void()> trigger_hook;
};

// The listening socket, kept for the whole run so the client always finds lockstep.
class Listener {
 public:
  // Listens on host:port (port 0: any) or unix:/path; throws std::runtime_error with a
  // clear message.
  explicit Listener(const std::string& address);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  // The next connection, or -1 when none came before `deadline`.
  int accept(std::chrono::steady_clock::time_point deadline);
  // Closes every connection waiting in the backlog (left over from an earlier case).
  void drain();
  std::string address() const { return address_; }

 private:
  int fd_ = -1;
  std::string address_, unix_path_;
};

CaseResult run_server(const Scenario& sc, Listener& listener, const ServeOptions& opts);

}  // namespace lockstep::scenarios
