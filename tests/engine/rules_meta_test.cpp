#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "engine/rules.hpp"
#include "tests/engine/rule_cases.hpp"

using namespace lockstep;

namespace {
// Every rule ID written as a string literal in the engine's sources.
std::set<std::string> rules_in_engine() {
  static const std::vector<std::string> families{"LMTP-", "SMTP-", "PIPE-", "CHUNK-", "ESC-", "ESCODE-", "SIZE-",
                                                  "8BITMIME-", "SMTPUTF8-", "DSN-", "STARTTLS-", "AUTH-", "NULLMX-",
                                                  "SMUG-", "DESYNC-"};
  auto id_char = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-'; };
  std::set<std::string> ids;
  for (const auto& e : std::filesystem::directory_iterator(std::string(LOCKSTEP_SOURCE_DIR) + "/engine")) {
    if (e.path().extension() != ".cpp" || e.path().filename() == "rules.cpp") continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    // Every string literal that is a whole rule ID.
    for (std::size_t q = text.find('"'); q != std::string::npos; q = text.find('"', q + 1)) {
      std::size_t end = q + 1;
      while (end < text.size() && id_char(text[end])) ++end;
      if (end >= text.size() || text[end] != '"' || end == q + 1) continue;
      const std::string lit = text.substr(q + 1, end - q - 1);
      for (const auto& f : families)
        if (lit.rfind(f, 0) == 0 && lit.size() > f.size()) ids.insert(lit);
      q = end;
    }
  }
  return ids;
}
}  // namespace

TEST_CASE("every rule the engine reports is in the catalogue and has a test case", "[engine][rules][meta]") {
  std::set<std::string> cased;
  for (const auto& c : lockstep::test::all_rule_cases()) cased.insert(c.rule);
  for (const auto& id : rules_in_engine()) {
    INFO(id);
    CHECK(find_rule(id) != nullptr);
    CHECK(cased.count(id) == 1);
    const Rule* r = find_rule(id);
    if (r) CHECK(rule_status(*r).checked);
  }
}

TEST_CASE("every catalogue rule is either checked or listed as not checked with a reason", "[engine][rules][meta]") {
  const auto used = rules_in_engine();
  for (const Rule& r : all_rules()) {
    INFO(r.id);
    const RuleStatus s = rule_status(r);
    if (used.count(std::string(r.id))) CHECK(s.checked);
    else {
      CHECK_FALSE(s.checked);
      CHECK_FALSE(s.why_not.empty());
    }
  }
  CHECK(all_rules().size() == 222);
}
