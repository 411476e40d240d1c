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

// Session builders shared by the case files (each adds `hello`'s greeting and LHLO).
inline constexpr const char* kDefaultCaps = "PIPELINING,ENHANCEDSTATUSCODES,8BITMIME,CHUNKING,SIZE 100000";
// `rest` after MAIL and one accepted RCPT.
std::vector<std::string> txn(std::vector<std::string> rest, const std::string& caps = kDefaultCaps);
// `rest` after MAIL and two accepted RCPTs.
std::vector<std::string> txn2(std::vector<std::string> rest);
// `rest` after MAIL, one accepted RCPT, DATA and its 354.
std::vector<std::string> data(std::vector<std::string> rest);
// A complete AUTH LOGIN exchange (two 334 challenges, 235) after the LHLO advertising
// AUTH, then `rest`.
inline constexpr const char* kAuthCapsList = "PIPELINING,ENHANCEDSTATUSCODES,8BITMIME,AUTH PLAIN LOGIN";
std::vector<std::string> auth_login(std::vector<std::string> rest);
// Options for a source without the order of the two streams.
SessionOptions unordered();

}  // namespace lockstep::test
