// Rule cases (see rule_cases.hpp).
#include "tests/engine/rule_cases.hpp"

namespace lockstep::test {

std::vector<RuleCase> desync_cases() {
  return {};
}

}  // namespace lockstep::test
