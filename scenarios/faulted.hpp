#pragma once
// A case's faults (Scenario::faults) on the stream lockstep writes: the sans-I/O fault
// stages of the proxy, fed what lockstep writes and what the peer sends (for positions).
// The runners carry out the steps: write, wait, note, close, reset.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/fault_stage.hpp"
#include "scenarios/scenario.hpp"

namespace lockstep::scenarios {

class CaseFaults {
 public:
  // `conn`: the case's connection number, 1-based (for conn=, every=, p=).
  CaseFaults(const Scenario& sc, std::uint64_t conn);
  bool active() const { return stage_ != nullptr; }
  Dir writes() const { return writes_; }
  // What lockstep writes; the steps to carry out instead.
  std::vector<proxy::Step> ours(std::string_view bytes, Time t);
  // What the peer sent; steps for lockstep's stream may come out (a reply held for a
  // swap or a delay released). Steps for the peer's stream are to be ignored.
  std::vector<proxy::Step> theirs(std::string_view bytes, Time t);

  // Carries out `steps` on the socket `fd`: lockstep's writes go to `write` (false when
  // the peer is gone), fault notes to `note`; waits sleep here; a close or reset (RST:
  // SO_LINGER 0 is set on `fd` first) calls `end(reset)` and skips what follows.
  // False when a write failed.
  bool carry_out(const std::vector<proxy::Step>& steps, int fd, const std::function<bool(const std::string&)>& write,
                 const std::function<void(const std::string&)>& note, const std::function<void(bool reset)>& end) const;

 private:
  Dir writes_;
  std::unique_ptr<proxy::FaultStage> stage_;
};

}  // namespace lockstep::scenarios
