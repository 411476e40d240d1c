// Desynchronisation: the reply that broke lockstep, the realignment, and the story of
// what the client will mistake each later reply for.
#include <algorithm>

#include <catch2/catch.hpp>

#include "tests/support/script.hpp"

using namespace lockstep;
using namespace lockstep::test;

namespace {
// The worked example of the rule catalogue (§15.3): a stray "350 lockers" before the
// one per-recipient reply; the client pipelines RSET/MAIL/RCPT/DATA and then QUIT.
std::vector<std::string> cyrus_lockers(bool stray_before_client_moves_on) {
  std::vector<std::string> s = hello({"C: MAIL FROM:<a@example.org>", "C: RCPT TO:<b@example.net>", "C: DATA",
                                      "S: 250 2.1.0 ok", "S: 250 2.1.5 ok", "S: 354 go ahead", "C: Subject: hi",
                                      "C: ", "C: hello", "C: ."});
  if (stray_before_client_moves_on) {
    s.insert(s.end(), {"S: 350 lockers", "S: 250 2.0.0 ok", "C: RSET", "C: MAIL FROM:<c@example.org>",
                       "C: RCPT TO:<d@example.net>", "C: DATA"});
  } else {
    s.insert(s.end(), {"S: 350 lockers", "C: RSET", "C: MAIL FROM:<c@example.org>", "C: RCPT TO:<d@example.net>",
                       "C: DATA", "S: 250 2.0.0 ok"});
  }
  s.insert(s.end(), {"S: 250 2.0.0 ok", "S: 250 2.1.0 ok", "S: 250 2.1.5 ok", "C: QUIT", "S: 354 go ahead"});
  return s;
}
}  // namespace

TEST_CASE("Cyrus lockers incident: a stray 3xx after end of data breaks lockstep and is proven by order",
          "[engine][desync][incident]") {
  const RunResult r = run_script(cyrus_lockers(true));
  INFO(r.dump());
  // The root cause: the surplus reply in the per-recipient block.
  const Finding* root = r.first("LMTP-4.2-PER-RCPT-REPLIES");
  REQUIRE(root);
  CHECK(root->bytes == "350 lockers");
  CHECK(root->proof == Proof::order);
  // With both streams in order, the real reply arriving with nothing pending proves it.
  const Finding* d1 = r.first("DESYNC-1-UNSOLICITED");
  REQUIRE(d1);
  CHECK(d1->bytes == "250 2.0.0 ok");
  CHECK(d1->cause == root->id);
  // What the client sees: 350 for end of data, 250 2.1.5 for DATA, 354 for QUIT.
  CHECK(r.count("DESYNC-2-IMPOSSIBLE-CODE") == 3);
  CHECK(r.has("DESYNC-7-REALIGN"));
  REQUIRE(r.narrative.size() >= 5);
  bool data_line = false;
  for (const auto& n : r.narrative) data_line = data_line || n == "DATA will receive '250 2.1.5 ok', meant for RCPT TO:<d@example.net>";
  CHECK(data_line);
  // The findings name the slots: the one the client pairs the reply with, and the one
  // the server meant it for.
  std::vector<std::string> d2, d8;
  for (const auto& f : r.findings) {
    if (f.rule->id == std::string_view("DESYNC-2-IMPOSSIBLE-CODE")) d2.push_back(f.explanation);
    if (f.rule->id == std::string_view("DESYNC-8-CLIENT-ACTIONS")) d8.push_back(f.explanation);
  }
  REQUIRE_FALSE(d2.empty());
  CHECK(d2[0].rfind("the client pairs '350 lockers' with end of data (<b@example.net>), but ", 0) == 0);
  CHECK(std::find(d8.begin(), d8.end(),
                  "the client acts on '350 lockers' as the reply to end of data (<b@example.net>): it records the "
                  "delivery to <b@example.net> as failed, though it answers nothing") != d8.end());
  CHECK(std::find(d8.begin(), d8.end(),
                  "the client acts on '250 2.1.5 ok' as the reply to DATA: it does not send its message content "
                  "and gives up the transaction, while the server meant it for RCPT TO:<d@example.net>") != d8.end());
  CHECK(r.desynced);
}

TEST_CASE("Cyrus lockers incident without order information is proven by impossible codes",
          "[engine][desync][incident]") {
  SessionOptions o;
  o.ordered = false;
  const RunResult r = run_script(cyrus_lockers(false), o);
  INFO(r.dump());
  const Finding* root = r.first("LMTP-4.2-PER-RCPT-REPLIES");
  REQUIRE(root);
  CHECK(root->bytes == "350 lockers");
  CHECK(root->proof == Proof::impossible_code);
  CHECK_FALSE(r.has("DESYNC-1-UNSOLICITED"));
  CHECK(r.count("DESYNC-2-IMPOSSIBLE-CODE") == 3);
  // Every later reply is one step late.
  const std::vector<std::string> expected{
      "end of data (<b@example.net>) will receive '350 lockers', a surplus reply meant for no command",
      "RSET will receive '250 2.0.0 ok', meant for end of data (<b@example.net>)",
      "MAIL FROM:<c@example.org> will receive '250 2.0.0 ok', meant for RSET",
      "RCPT TO:<d@example.net> will receive '250 2.1.0 ok', meant for MAIL FROM:<c@example.org>",
      "DATA will receive '250 2.1.5 ok', meant for RCPT TO:<d@example.net>",
      "QUIT will receive '354 go ahead', meant for DATA; the server now reads everything the client sends as "
      "message content, so the client's next commands get no reply",
  };
  CHECK(r.narrative == expected);
}

TEST_CASE("a wrong reply code that is not an extra reply does not shift the pairing", "[engine][desync]") {
  const RunResult r = run_script(hello({"C: RSET", "S: 550 5.0.0 no", "C: MAIL FROM:<a@example.org>",
                                        "C: RCPT TO:<b@example.net>", "C: DATA", "S: 250 2.1.0 ok", "S: 250 2.1.5 ok",
                                        "S: 354 go ahead", "C: x", "C: .", "S: 250 2.0.0 ok", "C: QUIT",
                                        "S: 221 2.0.0 bye", "CLOSE S", "CLOSE C"}));
  INFO(r.dump());
  CHECK(r.has("SMTP-4.1.1.5-RSET-250"));
  CHECK_FALSE(r.desynced);
  CHECK(r.narrative.empty());
  CHECK_FALSE(r.has("DESYNC-2-IMPOSSIBLE-CODE"));
}

TEST_CASE("one reply for two recipients (the spampd case) leaves a reply owed when the connection ends",
          "[engine][desync][incident]") {
  const RunResult r = run_script(hello({"C: MAIL FROM:<a@example.org>", "C: RCPT TO:<b@example.net>",
                                        "C: RCPT TO:<c@example.net>", "C: DATA", "S: 250 2.1.0 ok", "S: 250 2.1.5 ok",
                                        "S: 250 2.1.5 ok", "S: 354 go ahead", "C: x", "C: .", "S: 250 2.0.0 ok",
                                        "CLOSE S", "CLOSE C"}));
  INFO(r.dump());
  CHECK(r.has("DESYNC-5-ACCOUNTING"));
  CHECK(r.has("LMTP-5-PARTIAL-REPLIES"));
  CHECK(r.has("DESYNC-3-PER-RCPT-COUNT"));
}

TEST_CASE("a missing per-recipient reply followed by QUIT's 221 is found by realignment", "[engine][desync]") {
  const RunResult r = run_script(hello({"C: MAIL FROM:<a@example.org>", "C: RCPT TO:<b@example.net>",
                                        "C: RCPT TO:<c@example.net>", "C: DATA", "S: 250 2.1.0 ok", "S: 250 2.1.5 ok",
                                        "S: 250 2.1.5 ok", "S: 354 go ahead", "C: x", "C: .", "C: QUIT",
                                        "S: 250 2.0.0 ok", "S: 221 2.0.0 bye", "CLOSE S", "CLOSE C"}));
  INFO(r.dump());
  const Finding* f = r.first("LMTP-4.2-PER-RCPT-REPLIES");
  REQUIRE(f);
  CHECK(f->command == "end of data (reply 2/2, <c@example.net>)");
  CHECK(r.has("DESYNC-3-PER-RCPT-COUNT"));
  CHECK(r.desynced);
}

TEST_CASE("a duplicated RCPT reply makes DATA receive a 250 meant for RCPT", "[engine][desync]") {
  const RunResult r = run_script(hello({"C: MAIL FROM:<a@example.org>", "C: RCPT TO:<b@example.net>", "C: DATA",
                                        "S: 250 2.1.0 ok", "S: 250 2.1.5 ok", "S: 250 2.1.5 ok", "S: 354 go ahead",
                                        "C: QUIT", "S: 221 2.0.0 bye"}));
  INFO(r.dump());
  CHECK(r.has("SMTP-4.2-ONE-REPLY-PER-COMMAND"));
  CHECK(r.has("DESYNC-2-IMPOSSIBLE-CODE"));
  const Finding* d2 = r.first("DESYNC-2-IMPOSSIBLE-CODE");
  REQUIRE(d2);
  CHECK(d2->command == "DATA");
}

TEST_CASE("an asynchronous 421 is not a desync and excuses the replies still owed", "[engine][desync]") {
  const RunResult r = run_script(hello({"C: MAIL FROM:<a@example.org>", "C: RCPT TO:<b@example.net>",
                                        "S: 421 4.3.2 shutting down", "CLOSE S", "CLOSE C"}));
  INFO(r.dump());
  CHECK_FALSE(r.desynced);
  CHECK_FALSE(r.has("DESYNC-5-ACCOUNTING"));
  CHECK_FALSE(r.has("DESYNC-1-UNSOLICITED"));
  CHECK_FALSE(r.has("SMTP-3.8-SERVER-CLOSE"));
}

TEST_CASE("a session that starts mid-way gives no false findings", "[engine][mid-session]") {
  SessionOptions o;
  o.mid_session = true;
  o.ordered = false;
  const RunResult r = run_script({"S: 250 2.0.0 ok", "S: 354 go ahead", "C: RSET", "C: MAIL FROM:<a@example.org> SIZE=100",
                                  "C: RCPT TO:<b@example.net> NOTIFY=NEVER", "C: DATA", "S: 250 2.0.0 ok",
                                  "S: 250 2.1.0 ok", "S: 250 2.1.5 ok", "S: 354 go ahead", "C: x", "C: .",
                                  "S: 250 2.0.0 ok"},
                                 o, true);
  INFO(r.dump());
  CHECK(r.findings.empty());
}

TEST_CASE("BDAT LAST pipelined before the RCPT replies gets one reply per accepted recipient",
          "[engine][chunking]") {
  const RunResult r = run_script(hello({"C: MAIL FROM:<a@example.org>", "C: RCPT TO:<b@example.net>",
                                        "C: RCPT TO:<nobody@example.net>", "C: RCPT TO:<c@example.net>",
                                        "C|BDAT 5 LAST\r\nhello", "C: QUIT", "S: 250 2.1.0 ok", "S: 250 2.1.5 ok",
                                        "S: 550 5.1.1 unknown", "S: 250 2.1.5 ok", "S: 250 2.0.0 <b@example.net> saved",
                                        "S: 250 2.0.0 <c@example.net> saved", "S: 221 2.0.0 bye", "CLOSE S", "CLOSE C"}));
  INFO(r.dump());
  CHECK(r.findings.empty());
}

// A server that does not offer CHUNKING answers BDAT with 500 and reads the chunk's
// octets as commands; one that offers it consumes the chunk whatever it answers.
TEST_CASE("BDAT refused as unknown when CHUNKING was not offered: the chunk is read as commands",
          "[engine][desync][chunking]") {
  auto errors = [](const RunResult& r) {
    std::size_t n = 0;
    for (const auto& f : r.findings) n += f.severity == Severity::error && f.side == Dir::server;
    return n;
  };
  // "RSET\r\nNOOP\r\n" is 12 octets: the chunk of BDAT 12, or two commands.
  const std::vector<std::string> tail{"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok",
                                      "C: RCPT TO:<b@example.net>", "S: 250 2.1.5 ok",
                                      "C|BDAT 12 LAST\r\nRSET\r\nNOOP\r\n",
                                      "S: 500 5.5.2 unknown command", "S: 250 2.0.0 ok", "S: 250 2.0.0 ok",
                                      "C: QUIT", "S: 221 2.0.0 bye"};
  SECTION("without LHLO") {
    std::vector<std::string> s{"S: 220 lmtp.test ready"};
    s.insert(s.end(), tail.begin(), tail.end());
    const RunResult r = run_script(s);
    INFO(r.dump());
    CHECK(errors(r) == 0);
    CHECK_FALSE(r.desynced);
  }
  SECTION("LHLO without CHUNKING, the chunk split across writes") {
    std::vector<std::string> t = tail;
    t[4] = "C|BDAT 12 LAST\r\nRS";
    t.insert(t.begin() + 5, "C|ET\r\nNOOP\r\n");
    const RunResult r = run_script(hello(t, "PIPELINING,ENHANCEDSTATUSCODES"));
    INFO(r.dump());
    CHECK(errors(r) == 0);
    CHECK_FALSE(r.desynced);
  }
  SECTION("CHUNKING offered: the chunk is consumed, and the two 250s are surplus") {
    const RunResult r = run_script(hello(tail));
    INFO(r.dump());
    CHECK(r.desynced);
    CHECK(r.has("DESYNC-1-UNSOLICITED"));
  }
  SECTION("without CHUNKING a 250 still means the chunk was data") {
    std::vector<std::string> t = tail;
    t[5] = "S: 250 2.0.0 ok";  // the BDAT LAST's one reply
    t.erase(t.begin() + 6, t.begin() + 8);
    const RunResult r = run_script(hello(t, "PIPELINING,ENHANCEDSTATUSCODES"));
    INFO(r.dump());
    CHECK(errors(r) == 0);
    CHECK_FALSE(r.desynced);
  }
}

// BDAT LAST pipelined behind a RCPT that fails: its slot count waits for the RCPT reply,
// then it owes zero replies. The octets held meanwhile (the chunk, then NOOP) follow it.
TEST_CASE("a held BDAT LAST that turns out to owe zero replies keeps the commands behind it in place",
          "[engine][desync][chunking]") {
  const std::vector<std::string> head{"C|MAIL FROM:<a@example.org>\r\nRCPT TO:<nobody@example.net>\r\nBDAT 7 LAST\r\nhello\r\nNOOP\r\n",
                                      "S: 250 2.1.0 ok", "S: 550 5.1.1 no such user"};
  SECTION("a server that sends nothing for it: clean") {
    std::vector<std::string> s = head;
    s.insert(s.end(), {"S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"});
    const RunResult r = run_script(hello(s, "PIPELINING,ENHANCEDSTATUSCODES"));
    INFO(r.dump());
    CHECK_FALSE(r.has("LMTP-4.3-BDAT-LAST-ZERO-REPLIES"));
    CHECK_FALSE(r.desynced);
  }
  SECTION("a server that answers it (Dovecot's 503): the reply is the one too many") {
    std::vector<std::string> s = head;
    s.insert(s.end(), {"S: 503 5.5.1 no valid recipients", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"});
    const RunResult r = run_script(hello(s, "PIPELINING,ENHANCEDSTATUSCODES"));
    INFO(r.dump());
    const Finding* f = r.first("LMTP-4.3-BDAT-LAST-ZERO-REPLIES");
    REQUIRE(f);
    CHECK(f->bytes == "503 5.5.1 no valid recipients");
  }
}

TEST_CASE("the client judges its commands by the capabilities of the reply it paired with LHLO",
          "[engine][desync]") {
  // A surplus 250 before LHLO is what the client takes as LHLO's reply: by its count the
  // server advertised nothing, so SIZE= on MAIL is a parameter it was not offered. The
  // server's real LHLO reply (which the realigned view reads) does advertise SIZE.
  const std::vector<std::string> script = {
      "S: 220 lmtp.example.test ready", "C: NOOP", "S: 250 2.0.0 ok", "S: 250 2.0.0 ok",
      "C: LHLO client.example.test", "S: 250-lmtp.example.test", "S: 250-PIPELINING",
      "S: 250-ENHANCEDSTATUSCODES", "S: 250 SIZE 100000", "C: MAIL FROM:<a@example.org> SIZE=100",
      "S: 250 2.1.0 ok", "C: QUIT", "S: 221 2.0.0 bye"};
  const RunResult r = run_script(script);
  INFO(r.dump());
  REQUIRE(r.has("DESYNC-1-UNSOLICITED"));
  const Finding* f = r.first("SMTP-4.1.1.3-PARAMS-ONLY-IF-OFFERED");
  REQUIRE(f);
  CHECK(f->command == "MAIL FROM:<a@example.org> SIZE=100");
  // In step, the same exchange gives no such finding.
  std::vector<std::string> in_step = script;
  in_step.erase(in_step.begin() + 3);
  const RunResult clean = run_script(in_step);
  INFO(clean.dump());
  CHECK_FALSE(clean.has("SMTP-4.1.1.3-PARAMS-ONLY-IF-OFFERED"));
  CHECK_FALSE(clean.has("DESYNC-1-UNSOLICITED"));
}
