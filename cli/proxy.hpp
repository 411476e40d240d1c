#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lockstep::cli {

struct ProxyCliOptions {
  std::string listen, upstream, record, format = "text", color = "auto";
  bool quiet = false, redact = false;
  unsigned threads = 0;  // 0: one per CPU
  double idle_timeout = 300;
  double reply_timeout = 0;
  double connect_timeout = 30;
  double drain_timeout = 10;
  std::string socket_mode = "0666";
  std::vector<std::string> faults;   // --fault, each parsed by parse_fault
  std::uint64_t seed = 0;            // 0: drawn at start and printed
  std::string control, control_token;
  std::string ui, ui_token;          // the web view
};

// `lockstep faults`: the syntax, the actions and the presets.
int run_faults_help();

// Runs `lockstep proxy` until SIGINT/SIGTERM; returns the exit code (2 on bad flags or
// when it cannot listen).
int run_proxy(const ProxyCliOptions& o);

}  // namespace lockstep::cli
