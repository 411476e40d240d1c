#pragma once
// One violating and one conforming session per rule. Every rule ID the engine can
// report must have a case (rules_meta_test.cpp checks it).
#include <string>
#include <utility>
#include <vector>

#include "tests/support/script.hpp"

namespace lockstep::test {

struct RuleCase {
  std::string rule;
  std::vector<std::string> bad;   // must report `rule`
  std::vector<std::string> good;  // must not report `rule`
  SessionOptions opts = {};
  bool capture_ended = false;
  // Peer addresses for the deployment rules (client, server); empty: not set.
  std::pair<std::string, std::string> bad_peers = {}, good_peers = {};
};

// Cases are split by rule family into several files; each returns its part.
std::vector<RuleCase> lmtp_cases();
std::vector<RuleCase> smtp_cases();
std::vector<RuleCase> extension_cases();  // PIPE, CHUNK, ESC, SIZE, 8BITMIME, SMTPUTF8, DSN, AUTH, STARTTLS
std::vector<RuleCase> desync_cases();     // DESYNC, SMUG

std::vector<RuleCase> all_rule_cases();

}  // namespace lockstep::test
