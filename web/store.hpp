#pragma once
// The sessions the web view has seen end: their results (ladder included) and their
// recordings, the newest `keep` of them. Fed by the proxy's hooks from any thread.
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/checker.hpp"

namespace lockstep::web {

struct Ended {
  SessionResult result;
  std::string tape;          // the recording (JSONL), possibly cut
  bool tape_truncated = false;
};

class Store {
 public:
  explicit Store(std::size_t keep = 100) : keep_(keep) {}
  void ended(SessionResult r);
  void tape(const std::string& conn, std::string tape, bool truncated);
  // Newest first.
  std::vector<std::shared_ptr<const Ended>> list() const;
  std::shared_ptr<const Ended> get(const std::string& conn) const;

 private:
  std::size_t keep_;
  mutable std::mutex mu_;
  std::deque<std::shared_ptr<Ended>> ended_;  // oldest first
};

}  // namespace lockstep::web
