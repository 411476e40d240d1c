#include "scenarios/faulted.hpp"

#include <sys/socket.h>

#include <fmt/format.h>

#include <random>
#include <thread>

namespace lockstep::scenarios {

CaseFaults::CaseFaults(const Scenario& sc, std::uint64_t conn) : writes_(sc.role == "server" ? Dir::server : Dir::client) {
  // Deterministic per case and connection, so a run can be repeated.
  const std::uint64_t seed = std::hash<std::string>{}(sc.id) ^ (conn * 0x9E3779B97F4A7C15ull);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> draw(0.0, 1.0);
  std::vector<proxy::FaultSpec> chosen;
  for (const auto& f : sc.faults)
    if (proxy::selects(f, conn, draw(rng))) chosen.push_back(f);
  if (!chosen.empty()) stage_ = std::make_unique<proxy::FaultStage>(std::move(chosen), seed);
}

std::vector<proxy::Step> CaseFaults::ours(std::string_view bytes, Time t) {
  std::vector<proxy::Step> out;
  stage_->from(writes_, bytes, t, out);
  return out;
}

std::vector<proxy::Step> CaseFaults::theirs(std::string_view bytes, Time t) {
  std::vector<proxy::Step> out;
  stage_->from(writes_ == Dir::server ? Dir::client : Dir::server, bytes, t, out);
  return out;
}

bool CaseFaults::carry_out(const std::vector<proxy::Step>& steps, int fd, const std::function<bool(const std::string&)>& write,
                           const std::function<void(const std::string&)>& note, const std::function<void(bool reset)>& end) const {
  bool ok = true;
  for (const auto& st : steps) {
    switch (st.kind) {
      case proxy::Step::Kind::write:
        if (st.stream == writes_ && ok) ok = write(st.bytes);
        break;
      case proxy::Step::Kind::wait:
        std::this_thread::sleep_for(st.delay);
        break;
      case proxy::Step::Kind::note:
        note("-- fault: " + st.bytes);
        break;
      case proxy::Step::Kind::hold:  // scenarios never arm interception
        break;
      case proxy::Step::Kind::close:
      case proxy::Step::Kind::reset: {
        const bool reset = st.kind == proxy::Step::Kind::reset;
        if (reset) {
          const linger hard{1, 0};
          ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
        }
        note(fmt::format("{}: (lockstep {} the connection: fault)", writes_ == Dir::server ? 'S' : 'C', reset ? "reset" : "closed"));
        end(reset);
        return ok;
      }
    }
  }
  return ok;
}

}  // namespace lockstep::scenarios
