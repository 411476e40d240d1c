// Real sessions (socat dumps and Postfix -v logs recorded from Dovecot, Cyrus, Postfix,
// Exim, OpenSMTPD and swaks) as regression fixtures, and the incident fixtures.
#include <catch2/catch.hpp>

#include <filesystem>

#include "engine/checker.hpp"

using namespace lockstep;

namespace {
std::vector<SessionResult> check_file(const std::string& path, CheckerLimits limits = {}) {
  std::string err;
  auto src = open_source(path, "auto", err);
  INFO(err);
  REQUIRE(src);
  std::vector<SessionResult> out;
  Checker c(src->info(), path, [&](SessionResult&& r) { out.push_back(std::move(r)); }, limits);
  SourceEvent ev;
  while (src->next(ev)) c.on(ev);
  c.finish();
  CHECK(src->error().empty());
  return out;
}
std::string dump(const SessionResult& r) {
  std::string s = r.conn + ":\n";
  for (const auto& f : r.findings) s += std::string(f.rule->id) + " " + std::string(to_string(f.severity)) + ": " + f.explanation + "\n";
  return s;
}
const std::string kFixtures = std::string(LOCKSTEP_SOURCE_DIR) + "/tests/fixtures/";
}  // namespace

TEST_CASE("real transcripts between Postfix, Exim, OpenSMTPD, swaks and Dovecot or Cyrus have no error findings",
          "[fixtures][transcripts]") {
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(kFixtures + "transcripts")) {
    ++files;
    DYNAMIC_SECTION(e.path().filename().string()) {
      const auto sessions = check_file(e.path().string());
      CHECK_FALSE(sessions.empty());
      for (const auto& s : sessions) {
        INFO(dump(s));
        CHECK(s.errors == 0);
        CHECK(s.warnings == 0);
        CHECK(s.commands > 0);
        CHECK_FALSE(s.desynced);
      }
    }
  }
  CHECK(files >= 9);
}

TEST_CASE("real Postfix -v logs against Dovecot and Cyrus have no error findings", "[fixtures][postfix]") {
  for (const char* name : {"postfix-dovecot-clean.log", "postfix-dovecot-syslog.log", "postfix-connection-reuse.log"}) {
    DYNAMIC_SECTION(name) {
      const auto sessions = check_file(kFixtures + "postfix/" + name);
      CHECK(sessions.size() >= 1);
      for (const auto& s : sessions) {
        INFO(dump(s));
        CHECK(s.errors == 0);
      }
    }
  }
}

TEST_CASE("Cyrus 3.6 sends a multi-line 550 without enhanced codes on its first lines: a real deviation",
          "[fixtures][postfix][cyrus]") {
  const auto sessions = check_file(kFixtures + "postfix/postfix-cyrus-clean.log");
  REQUIRE(sessions.size() == 3);
  std::size_t errors = 0;
  for (const auto& s : sessions) {
    for (const auto& f : s.findings)
      if (f.severity == Severity::error) {
        ++errors;
        CHECK(f.rule->id == "ESC-4-REQUIRED-ON-2-4-5");
        CHECK(f.bytes.starts_with("550-Mailbox unknown."));
      }
  }
  CHECK(errors == 1);
}

TEST_CASE("the Cyrus lockers incident log: the 3xx, every later reply one step late, DATA's impossible 250",
          "[fixtures][incident]") {
  const auto sessions = check_file(kFixtures + "incidents/cyrus-lockers-postfix.log");
  REQUIRE(sessions.size() == 1);
  const SessionResult& s = sessions[0];
  INFO(dump(s));
  CHECK(s.desynced);
  const Finding* root = nullptr;
  std::vector<std::string> impossible;
  for (const auto& f : s.findings) {
    if (f.rule->id == "LMTP-4.2-PER-RCPT-REPLIES" && !root) root = &f;
    if (f.rule->id == "DESYNC-2-IMPOSSIBLE-CODE") impossible.push_back(f.bytes + " -> " + f.command);
  }
  REQUIRE(root);
  CHECK(root->bytes == "350 lockers");
  CHECK(impossible == std::vector<std::string>{"350 lockers -> end of data (<anna@example.net>)",
                                               "250 2.1.5 ok -> DATA", "354 go ahead -> QUIT"});
  bool late = false;
  for (const auto& n : s.narrative) late = late || n == "DATA will receive '250 2.1.5 ok', meant for RCPT TO:<ben@example.net>";
  CHECK(late);
  CHECK(s.statuses.size() == 2);
}

TEST_CASE("real Postfix after a stray 350 (fake server): the surplus is found in every session",
          "[fixtures][postfix][incident]") {
  const auto sessions = check_file(kFixtures + "postfix/postfix-incident-cyrus-lockers.log");
  REQUIRE(sessions.size() == 2);
  for (const auto& s : sessions) {
    INFO(dump(s));
    CHECK(s.desynced);
    REQUIRE_FALSE(s.findings.empty());
    CHECK(s.findings.front().rule->id == "LMTP-4.2-PER-RCPT-REPLIES");
  }
}

TEST_CASE("a capped ladder keeps the first entries, paired as in the whole one, and counts the rest",
          "[fixtures][ladder]") {
  const std::string path = kFixtures + "incidents/cyrus-lockers-postfix.log";
  const auto whole = check_file(path);
  REQUIRE(whole.size() == 1);
  const auto& full = whole[0];
  REQUIRE(full.ladder.size() > 12);
  REQUIRE(full.ladder_dropped == 0);
  for (const std::size_t cap : {std::size_t{1}, std::size_t{5}, full.ladder.size() - 1}) {
    DYNAMIC_SECTION("cap " << cap) {
      CheckerLimits limits;
      limits.ladder = cap;
      const auto capped = check_file(path, limits);
      REQUIRE(capped.size() == 1);
      const auto& r = capped[0];
      REQUIRE(r.ladder.size() == cap);
      CHECK(r.ladder_dropped == full.ladder.size() - cap);
      CHECK(r.findings.size() == full.findings.size());
      CHECK(r.narrative == full.narrative);
      for (std::size_t i = 0; i < cap; ++i) {
        INFO("entry " << i);
        CHECK(r.ladder[i].dir == full.ladder[i].dir);
        CHECK(r.ladder[i].text == full.ladder[i].text);
        CHECK(r.ladder[i].offset == full.ladder[i].offset);
        CHECK(r.ladder[i].client_pair == full.ladder[i].client_pair);
        CHECK(r.ladder[i].true_pair == full.ladder[i].true_pair);
        CHECK(r.ladder[i].mispair == full.ladder[i].mispair);
        CHECK(r.ladder[i].findings == full.ladder[i].findings);
      }
    }
  }
  // No ladder at all: the session is not traced, so there is nothing to count as dropped.
  CheckerLimits none;
  none.ladder = 0;
  const auto bare = check_file(path, none);
  REQUIRE(bare.size() == 1);
  CHECK(bare[0].ladder.empty());
  CHECK(bare[0].ladder_dropped == 0);
  CHECK(bare[0].findings.size() == full.findings.size());
  // The incident's replies are paired in the whole ladder: the stray 350 with end of data.
  bool stray = false;
  for (const auto& l : full.ladder)
    if (l.text.rfind("350 lockers", 0) == 0) stray = !l.client_pair.empty() && !l.findings.empty();
  CHECK(stray);
}
