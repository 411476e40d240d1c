#pragma once
// The rule catalogue (IDs verbatim from the LMTP rule catalogue) and what lockstep
// checks of each.
#include <span>
#include <string_view>

#include "engine/types.hpp"

namespace lockstep {

struct Rule {
  std::string_view id;
  std::string_view level;   // the requirement keyword as the RFC writes it
  Severity severity;        // default severity of a finding under this rule
  RuleSide side;
};

// Why a rule is not checked on the wire (empty when it is checked).
struct RuleStatus {
  const Rule* rule;
  bool checked;
  std::string_view why_not;
};

// All 222 rules of the catalogue, in catalogue order.
std::span<const Rule> all_rules();

// Returns the rule with this ID, or nullptr when the ID is not in the catalogue.
const Rule* find_rule(std::string_view id);

// Returns the rule with this ID; an unknown ID is a programming error and aborts.
const Rule& rule(std::string_view id);

// Whether lockstep checks the rule, and if not, why.
RuleStatus rule_status(const Rule& r);

}  // namespace lockstep
