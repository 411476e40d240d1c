#include <catch2/catch.hpp>

#include <map>

#include "tests/engine/rule_cases.hpp"

using namespace lockstep;
using namespace lockstep::test;

namespace lockstep::test {
std::vector<std::string> txn(std::vector<std::string> rest, const std::string& caps) {
  std::vector<std::string> v{"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 sender ok", "C: RCPT TO:<b@example.test>",
                             "S: 250 2.1.5 recipient ok"};
  v.insert(v.end(), rest.begin(), rest.end());
  return hello(v, caps);
}

std::vector<std::string> txn2(std::vector<std::string> rest) {
  std::vector<std::string> v{"C: RCPT TO:<c@example.test>", "S: 250 2.1.5 recipient ok"};
  v.insert(v.end(), rest.begin(), rest.end());
  return txn(v);
}

std::vector<std::string> data(std::vector<std::string> rest) {
  std::vector<std::string> v{"C: DATA", "S: 354 go ahead"};
  v.insert(v.end(), rest.begin(), rest.end());
  return txn(v);
}

std::vector<std::string> auth_login(std::vector<std::string> rest) {
  std::vector<std::string> v{"C: AUTH LOGIN", "S: 334 VXNlcm5hbWU6", "C: ZnJlZA==", "S: 334 UGFzc3dvcmQ6",
                             "C: c2VjcmV0", "S: 235 2.7.0 authenticated"};
  v.insert(v.end(), rest.begin(), rest.end());
  return hello(v, kAuthCapsList);
}

SessionOptions unordered() {
  SessionOptions o;
  o.ordered = false;
  return o;
}

std::vector<RuleCase> all_rule_cases() {
  std::vector<RuleCase> all;
  for (auto part : {lmtp_cases(), smtp_cases(), extension_cases(), desync_cases()})
    all.insert(all.end(), part.begin(), part.end());
  return all;
}
}  // namespace lockstep::test

TEST_CASE("every rule case reports its rule on the violating session and not on the conforming one",
          "[engine][rules]") {
  std::map<std::string, int> seen;
  for (const RuleCase& c : all_rule_cases()) {
    const int n = ++seen[c.rule];
    DYNAMIC_SECTION(c.rule << (n > 1 ? " (case " + std::to_string(n) + ")" : std::string())) {
      const RunResult bad = run_script(c.bad, c.opts, c.capture_ended, c.bad_peers);
      INFO("violating session:\n" << bad.dump());
      CHECK(bad.has(c.rule));
      const RunResult good = run_script(c.good, c.opts, c.capture_ended, c.good_peers);
      INFO("conforming session:\n" << good.dump());
      CHECK_FALSE(good.has(c.rule));
    }
  }
}
