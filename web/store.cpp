#include "web/store.hpp"

namespace lockstep::web {

void Store::ended(SessionResult r) {
  auto e = std::make_shared<Ended>();
  e->result = std::move(r);
  std::lock_guard lock(mu_);
  ended_.push_back(std::move(e));
  while (ended_.size() > keep_) ended_.pop_front();
}

void Store::tape(const std::string& conn, std::string tape, bool truncated) {
  std::lock_guard lock(mu_);
  for (auto it = ended_.rbegin(); it != ended_.rend(); ++it)
    if ((*it)->result.conn == conn) {
      // Replaced, not changed in place: readers may hold the old one.
      auto e = std::make_shared<Ended>(**it);
      e->tape = std::move(tape);
      e->tape_truncated = truncated;
      *it = std::move(e);
      return;
    }
}

std::vector<std::shared_ptr<const Ended>> Store::list() const {
  std::lock_guard lock(mu_);
  return {ended_.rbegin(), ended_.rend()};
}

std::shared_ptr<const Ended> Store::get(const std::string& conn) const {
  std::lock_guard lock(mu_);
  for (auto it = ended_.rbegin(); it != ended_.rend(); ++it)
    if ((*it)->result.conn == conn) return *it;
  return nullptr;
}

}  // namespace lockstep::web
