// Bad input to the session engine: garbage, endless lines, peers that stop mid-way.
#include <catch2/catch.hpp>

#include <random>

#include "tests/support/script.hpp"

using namespace lockstep;
using namespace lockstep::test;

TEST_CASE("binary garbage in both directions gives findings, never a crash", "[engine][bad-input]") {
  std::mt19937 rng(42);
  for (int round = 0; round < 50; ++round) {
    Session s;
    for (int i = 0; i < 40; ++i) {
      std::string chunk(rng() % 300, '\0');
      for (auto& c : chunk) c = static_cast<char>(rng() & 0xff);
      s.feed(rng() % 2 ? Dir::client : Dir::server, chunk, i);
      while (s.next()) {
      }
    }
    s.finish(100);
    std::size_t n = 0;
    while (s.next()) ++n;
    CHECK(s.state() != State::tls);  // garbage never looks like an accepted STARTTLS by chance here
  }
}

TEST_CASE("a client line of 256 MB without a line end is held in constant memory and reported at the end",
          "[engine][bad-input][limits]") {
  Session s;
  s.feed(Dir::server, "220 lmtp.test ready\r\n", 1);
  const std::string chunk(1 << 20, 'A');
  for (int i = 0; i < 256; ++i) {
    s.feed(Dir::client, chunk, 2);
    while (s.next()) {
    }
  }
  s.finish(3);
  bool reported = false;
  while (auto e = s.next())
    if (auto* f = std::get_if<Finding>(&*e)) reported = reported || f->rule->id == "SMTP-4.5.3.1.4-COMMAND-LINE-512";
  CHECK(reported);
}

TEST_CASE("a server that never ends its multi-line reply is reported when the session ends", "[engine][bad-input]") {
  std::vector<std::string> script{"S: 220 lmtp.test ready", "C: LHLO c"};
  for (int i = 0; i < 10000; ++i) script.push_back("S: 250-line " + std::to_string(i));
  const RunResult r = run_script(script);
  CHECK(r.has("SMTP-4.2.1-MULTILINE-FORMAT"));
}

TEST_CASE("a peer that vanishes in the middle of content is reported as a failed transaction", "[engine][bad-input]") {
  const RunResult r = run_script(hello({"C: MAIL FROM:<a@b.example>", "C: RCPT TO:<c@d.example>", "C: DATA",
                                        "S: 250 2.1.0 ok", "S: 250 2.1.5 ok", "S: 354 go", "C: partial content",
                                        "CLOSE C"}));
  INFO(r.dump());
  CHECK(r.has("SMTP-3.8-CLIENT-LOSS-IS-451"));
  CHECK(r.has("SMTP-4.1.1.10-NO-CLOSE-BEFORE-QUIT"));
}

TEST_CASE("thousands of pipelined commands without replies keep memory bounded by what is owed",
          "[engine][limits]") {
  Session s;
  s.feed(Dir::server, "220 lmtp.test ready\r\n", 1);
  s.feed(Dir::client, "LHLO c\r\n", 2);
  s.feed(Dir::server, "250-x\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 PIPELINING\r\n", 3);
  std::string noops;
  for (int i = 0; i < 100000; ++i) noops += "RSET\r\n";
  s.feed(Dir::client, noops, 4);
  std::string ok;
  for (int i = 0; i < 100000; ++i) ok += "250 2.0.0 ok\r\n";
  s.feed(Dir::server, ok, 5);
  s.finish(6);
  std::size_t errors = 0;
  while (auto e = s.next())
    if (auto* f = std::get_if<Finding>(&*e); f && f->severity == Severity::error) ++errors;
  CHECK(errors == 0);
  CHECK(s.replies() == 100002);
}

TEST_CASE("with redaction the engine marks content and AUTH secrets, and only those", "[engine][redact]") {
  SessionOptions o;
  o.redaction = true;
  Session s(o);
  s.feed(Dir::server, "220 x ready\r\n", 1);
  const std::string auth = "AUTH PLAIN dGVzdAB0ZXN0AHNlY3JldA==\r\n";
  s.feed(Dir::client, auth, 2);
  auto r = s.take_redactions();
  REQUIRE(r.size() == 1);
  CHECK(auth.substr(r[0].first, r[0].second - r[0].first) == "dGVzdAB0ZXN0AHNlY3JldA==");
  s.feed(Dir::server, "235 2.7.0 ok\r\n", 3);
  const std::string cmds = "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n";
  s.feed(Dir::client, cmds, 4);
  CHECK(s.take_redactions().empty());
  s.feed(Dir::server, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n", 5);
  const std::uint64_t base = auth.size() + cmds.size();
  s.feed(Dir::client, "secret body\r\n.\r\n", 6);
  r = s.take_redactions();
  REQUIRE(r.size() == 1);
  CHECK(r[0].first == base);
  CHECK(r[0].second == base + 16);
}
