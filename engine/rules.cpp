#include "engine/rules.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_map>

namespace lockstep {

namespace {
constexpr Rule kRules[] = {
#include "engine/rule_catalogue.inc"
};

struct NotChecked {
  std::string_view id, why;
};
// Rules lockstep does not check on the wire yet, with the reason.
constexpr NotChecked kNotChecked[] = {
#include "engine/rules_not_checked.inc"
};
}  // namespace

std::span<const Rule> all_rules() { return kRules; }

const Rule* find_rule(std::string_view id) {
  static const auto* index = [] {
    auto* m = new std::unordered_map<std::string_view, const Rule*>();
    for (const Rule& r : kRules) (*m)[r.id] = &r;
    return m;
  }();
  const auto it = index->find(id);
  return it == index->end() ? nullptr : it->second;
}

const Rule& rule(std::string_view id) {
  const Rule* r = find_rule(id);
  if (!r) {
    std::fprintf(stderr, "lockstep: internal error: unknown rule ID %.*s\n", static_cast<int>(id.size()), id.data());
    std::abort();
  }
  return *r;
}

RuleStatus rule_status(const Rule& r) {
  for (const auto& n : kNotChecked)
    if (n.id == r.id) return {&r, false, n.why};
  return {&r, true, {}};
}

}  // namespace lockstep
