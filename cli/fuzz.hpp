#pragma once
// `lockstep fuzz`: stateful network fuzzing of a live LMTP server (--target) or client
// (--listen --trigger) (scenarios/campaign.hpp).
#include <string>
#include <vector>

namespace lockstep::cli {

struct FuzzCliOptions {
  std::string target, out_dir, format = "text";
  std::string listen, trigger, reset, base;  // the client campaign
  std::uint64_t seed = 0;  // 0: from the clock, printed
  double duration = 60, reply_timeout = 0;  // 0: 3 s for a server, 20 s for a client
  std::uint64_t sessions = 0;
  bool no_minimise = false, quiet = false;
  std::vector<std::string> rcpts;
  std::string bad_rcpt, from;
};
// 0: no finding; 1: findings (reproducers written); 2: usage error or unreachable server.
int run_fuzz(const FuzzCliOptions& o);

}  // namespace lockstep::cli
