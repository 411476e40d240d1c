// The fault stages without sockets: every action's effect on the bytes each peer gets,
// the positions they act at, the fault syntax, and the bounds on what is held back.
#include <catch2/catch.hpp>

#include <random>

#include "proxy/fault.hpp"
#include "proxy/fault_stage.hpp"

using namespace lockstep;
using namespace lockstep::proxy;

namespace {
// What the two peers receive, and what else the stage did.
struct Wire {
  std::string to_client, to_server;
  std::vector<Step> notes;
  std::vector<std::size_t> client_writes, server_writes;  // sizes of each write
  std::chrono::microseconds waited{0};
  int closes = 0, resets = 0;
  std::vector<std::string> held;  // replies a hold step carried
};

void apply_steps(const std::vector<Step>& steps, Wire& w) {
  for (const auto& s : steps) {
    switch (s.kind) {
      case Step::Kind::write:
        (s.stream == Dir::server ? w.to_client : w.to_server) += s.bytes;
        (s.stream == Dir::server ? w.client_writes : w.server_writes).push_back(s.bytes.size());
        break;
      case Step::Kind::note: w.notes.push_back(s); break;
      case Step::Kind::wait: w.waited += s.delay; break;
      case Step::Kind::close: ++w.closes; break;
      case Step::Kind::reset: ++w.resets; break;
      case Step::Kind::hold: w.held.push_back(s.bytes); break;
    }
  }
}

FaultSpec spec(const std::string& text) {
  std::string err;
  auto f = parse_fault(text, err);
  INFO(err);
  REQUIRE(f);
  return *f;
}

// One pipelined LMTP session, as the two peers send it.
struct Chunk {
  Dir dir;
  std::string bytes;
};
const std::vector<Chunk> kSession = {
    {Dir::server, "220 lmtp.test ready\r\n"},
    {Dir::client, "LHLO c.test\r\n"},
    {Dir::server, "250-lmtp.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n"},
    {Dir::client, "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n"},
    {Dir::server, "250 2.1.0 ok\r\n250 2.1.5 b ok\r\n250 2.1.5 c ok\r\n354 go ahead\r\n"},
    {Dir::client, "Subject: t\r\n\r\nhello\r\n.\r\n"},
    {Dir::server, "250 2.0.0 b saved\r\n250 2.0.0 c saved\r\n"},
    {Dir::client, "QUIT\r\n"},
    {Dir::server, "221 2.0.0 bye\r\n"},
};

std::string all(Dir d) {
  std::string s;
  for (const auto& c : kSession)
    if (c.dir == d) s += c.bytes;
  return s;
}

Wire run(const std::vector<std::string>& faults, const std::vector<Chunk>& session = kSession, std::size_t piece = 0) {
  std::vector<FaultSpec> fs;
  for (const auto& f : faults) fs.push_back(spec(f));
  FaultStage st(fs, 1);
  Wire w;
  std::vector<Step> out;
  for (const auto& c : session) {
    if (w.closes || w.resets) break;
    if (piece == 0) {
      st.from(c.dir, c.bytes, 0, out);
    } else {
      for (std::size_t i = 0; i < c.bytes.size(); i += piece) st.from(c.dir, std::string_view(c.bytes).substr(i, piece), 0, out);
    }
    apply_steps(out, w);
    out.clear();
  }
  if (!w.closes && !w.resets) {
    st.eof(Dir::server, out);
    st.eof(Dir::client, out);
    apply_steps(out, w);
  }
  return w;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  s.replace(s.find(from), from.size(), to);
  return s;
}
}  // namespace

TEST_CASE("faults parse from the compact syntax, with presets and clear errors", "[fault]") {
  auto f = spec("inject@eod#1,text=350 lockers");
  CHECK(f.action == FaultAction::inject);
  CHECK(f.where == FaultWhere::eod);
  CHECK(f.nth == 1);
  CHECK(f.dir == Dir::server);
  CHECK(f.text == std::vector<std::string>{"350 lockers"});

  auto p = spec("cyrus-lockers,conn=2");
  CHECK(p.name == "cyrus-lockers");
  CHECK(p.action == FaultAction::inject);
  CHECK(p.conn == 2);

  auto n = spec("mine=drop@rcpt#2+,times=3");
  CHECK(n.name == "mine");
  CHECK(n.verb == Verb::rcpt);
  CHECK(n.and_later);
  CHECK(n.times == 3);

  auto q = spec("inject@lhlo,line=2,'text=250-A, B\\n250-C'");
  CHECK(q.text == std::vector<std::string>{"250-A, B", "250-C"});
  CHECK(spec("delay@rcpt,dir=c,ms=5").dir == Dir::client);
  CHECK(spec("close@data+100").dir == Dir::client);
  CHECK(spec("slow-data-done,ms=1500").ms == std::chrono::milliseconds(1500));

  for (const auto& p2 : fault_presets()) {
    std::string err;
    INFO(p2.name);
    CHECK(parse_fault(std::string(p2.name), err));
  }

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"nonsense", "neither ACTION@WHERE nor a preset"},
      {"explode@rcpt", "unknown action 'explode'"},
      {"drop@frobnicate", "unknown position 'frobnicate'"},
      {"inject@eod", "text= is required"},
      {"replace@rcpt", "code= or text= is required"},
      {"drop@content", "content is not a reply position"},
      {"bare-lf@greeting", "changes the client's bytes"},
      {"drop@rcpt#0", "a count from 1"},
      {"drop@rcpt,p=1.5", "bad value in 'p=1.5'"},
      {"drop@rcpt,colour=red", "unknown option 'colour'"},
      {"drop@rcpt,times", "needs a value"},
      {"smuggle@content,variant=lf", "bad value in 'variant=lf'"},
      {"pipeline-body@rcpt", "applies to data"},
      {"delay@rcpt", "ms= "},
      {"close@content", "use data+N"},
      {"replace@rcpt,code=99", "bad value in 'code=99'"},
  };
  for (const auto& [text, why] : bad) {
    std::string err;
    INFO(text);
    CHECK_FALSE(parse_fault(text, err));
    CHECK_THAT(err, Catch::Contains(why));
  }
}

TEST_CASE("a fault is described in plain words", "[fault]") {
  CHECK(describe(spec("cyrus-lockers")) == "inject '350 lockers' before the 1st per-recipient reply after end of data");
  CHECK(describe(spec("drop@rcpt#2+,p=0.5")) ==
        "drop the reply to the 2nd and later RCPT command, with probability 0.5");
  CHECK(describe(spec("close@data+10")) == "close both connections at the content after 10 octets");
}

TEST_CASE("faults choose their connections by number, period and probability", "[fault]") {
  CHECK(selects(spec("drop@rcpt"), 7, 0.99));
  CHECK(selects(spec("drop@rcpt,conn=2"), 2, 0.5));
  CHECK_FALSE(selects(spec("drop@rcpt,conn=2"), 3, 0.5));
  CHECK(selects(spec("drop@rcpt,every=3"), 6, 0.5));
  CHECK_FALSE(selects(spec("drop@rcpt,every=3"), 7, 0.5));
  CHECK(selects(spec("drop@rcpt,p=0.25"), 1, 0.2));
  CHECK_FALSE(selects(spec("drop@rcpt,p=0.25"), 1, 0.3));
}

TEST_CASE("without a fault on a stream its bytes pass unchanged, however they are split", "[fault]") {
  for (std::size_t piece : {0, 1, 2, 3, 7, 64}) {
    INFO("piece " << piece);
    // A client fault that never fires leaves both streams as they were.
    const Wire w = run({"bare-lf@vrfy"}, kSession, piece);
    CHECK(w.to_client == all(Dir::server));
    CHECK(w.to_server == all(Dir::client));
    const Wire w2 = run({"drop@vrfy"}, kSession, piece);
    CHECK(w2.to_client == all(Dir::server));
    CHECK(w2.to_server == all(Dir::client));
    CHECK(w2.notes.empty());
  }
}

TEST_CASE("cyrus-lockers puts '350 lockers' before the end-of-data replies and notes where", "[fault][incident]") {
  for (std::size_t piece : {0, 1, 5}) {
    INFO("piece " << piece);
    const Wire w = run({"cyrus-lockers"}, kSession, piece);
    const std::string want = replace_all(all(Dir::server), "250 2.0.0 b saved", "350 lockers\r\n250 2.0.0 b saved");
    CHECK(w.to_client == want);
    CHECK(w.to_server == all(Dir::client));
    REQUIRE(w.notes.size() == 1);
    CHECK(w.notes[0].stream == Dir::server);
    CHECK(w.notes[0].offset == want.find("350 lockers"));
    CHECK(w.notes[0].length == 13);
    CHECK_THAT(w.notes[0].bytes, Catch::StartsWith("cyrus-lockers: injected '350 lockers'"));
  }
}

TEST_CASE("each reply fault changes exactly the reply at its position", "[fault]") {
  const std::string s = all(Dir::server);
  struct Case {
    std::string fault, from, to;
  };
  const std::vector<Case> cases = {
      {"inject-after@rcpt#1,text=250 2.1.5 extra", "250 2.1.5 b ok\r\n", "250 2.1.5 b ok\r\n250 2.1.5 extra\r\n"},
      {"replace@eod#2,code=452", "250 2.0.0 c saved", "452 4.0.0 c saved"},
      {"replace@mail,text=451 4.3.0 busy", "250 2.1.0 ok", "451 4.3.0 busy"},
      {"replace@rcpt#2,code=452,text=4.5.3 Too many recipients", "250 2.1.5 c ok", "452 4.5.3 Too many recipients"},
      {"exim-452-then-250", "250 2.1.5 c ok", "452 4.5.3 Too many recipients"},
      {"spampd-single-data-reply", "250 2.0.0 c saved\r\n", ""},
      {"drop@eod", "250 2.0.0 b saved\r\n250 2.0.0 c saved\r\n", ""},
      {"dup@rcpt#2", "250 2.1.5 c ok\r\n", "250 2.1.5 c ok\r\n250 2.1.5 c ok\r\n"},
      {"swap@rcpt#1", "250 2.1.5 b ok\r\n250 2.1.5 c ok\r\n", "250 2.1.5 c ok\r\n250 2.1.5 b ok\r\n"},
      {"dovecot-multiline-split", "250-lmtp.test\r\n", "250 lmtp.test\r\n"},
      {"split@lhlo,line=3", "250-ENHANCEDSTATUSCODES", "250 ENHANCEDSTATUSCODES"},
      {"inject@lhlo,line=2,text=250-XLOCKSTEP", "250-PIPELINING", "250-XLOCKSTEP\r\n250-PIPELINING"},
      {"drop@lhlo,line=4", "250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n", "250 ENHANCEDSTATUSCODES\r\n"},
      {"replace@lhlo,line=2,code=251", "250-PIPELINING", "251-PIPELINING"},
      {"inject@greeting,text=220-first", "220 lmtp.test", "220-first\r\n220 lmtp.test"},
      {"inject@any#2,text=250 2.0.0 stray", "250 2.1.0 ok", "250 2.0.0 stray\r\n250 2.1.0 ok"},
      {"shutdown@rcpt#2", "250 2.1.5 c ok\r\n354 go ahead\r\n250 2.0.0 b saved\r\n250 2.0.0 c saved\r\n221 2.0.0 bye\r\n",
       "421 4.3.2 lockstep: service shutting down (injected)\r\n"},
  };
  for (const auto& c : cases) {
    INFO(c.fault);
    const Wire w = run({c.fault});
    CHECK(w.to_client == replace_all(s, c.from, c.to));
    CHECK_FALSE(w.notes.empty());
  }
}

TEST_CASE("a fault acts only where its position, transaction and count allow", "[fault]") {
  // Two transactions on one connection.
  std::vector<Chunk> two = kSession;
  two.insert(two.end() - 2, {Dir::client, "MAIL FROM:<a@x.test>\r\nRCPT TO:<d@x.test>\r\nDATA\r\n"});
  two.insert(two.end() - 2, {Dir::server, "250 2.1.0 ok\r\n250 2.1.5 d ok\r\n354 go ahead\r\n"});
  two.insert(two.end() - 2, {Dir::client, "hi\r\n.\r\n"});
  two.insert(two.end() - 2, {Dir::server, "250 2.0.0 d saved\r\n"});
  auto count = [](const std::string& hay, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
    return n;
  };
  CHECK(count(run({"cyrus-lockers"}, two).to_client, "350 lockers") == 2);
  CHECK(count(run({"cyrus-lockers,times=1"}, two).to_client, "350 lockers") == 1);
  const std::string second = run({"cyrus-lockers,txn=2"}, two).to_client;
  CHECK(count(second, "350 lockers") == 1);
  CHECK(second.find("350 lockers\r\n250 2.0.0 d saved") != std::string::npos);
  CHECK(count(run({"drop@mail#2"}, two).to_client, "250 2.1.0 ok") == 1);
  CHECK(count(run({"drop@mail#1+"}, two).to_client, "250 2.1.0 ok") == 0);
}

TEST_CASE("delay, fragment and coalesce change the timing and the writes, not the bytes", "[fault]") {
  const Wire d = run({"delay@eod#1,ms=40"});
  CHECK(d.to_client == all(Dir::server));
  CHECK(d.waited == std::chrono::milliseconds(40));
  const Wire j = run({"delay@eod#1,ms=40,jitter=20"});
  CHECK(j.waited >= std::chrono::milliseconds(40));
  CHECK(j.waited <= std::chrono::milliseconds(60));

  const Wire f = run({"fragment@greeting,size=1"});
  CHECK(f.to_client == all(Dir::server));
  REQUIRE(f.client_writes.size() >= 21);
  for (std::size_t i = 0; i < 21; ++i) CHECK(f.client_writes[i] == 1);

  // The four replies of the pipelined group, each in its own read, go out in one write.
  std::vector<Chunk> spread;
  for (const auto& c : kSession) {
    if (c.bytes.rfind("250 2.1.0", 0) == 0) {
      for (const char* r : {"250 2.1.0 ok\r\n", "250 2.1.5 b ok\r\n", "250 2.1.5 c ok\r\n", "354 go ahead\r\n"})
        spread.push_back({Dir::server, r});
    } else {
      spread.push_back(c);
    }
  }
  const Wire plain = run({"drop@vrfy"}, spread);
  const Wire c = run({"coalesce@any"}, spread);
  CHECK(c.to_client == all(Dir::server));
  CHECK(c.client_writes.size() < plain.client_writes.size());
  CHECK(std::find(c.client_writes.begin(), c.client_writes.end(), std::string("250 2.1.0 ok\r\n250 2.1.5 b ok\r\n250 2.1.5 c ok\r\n354 go ahead\r\n").size()) !=
        c.client_writes.end());
}

TEST_CASE("close, reset and lost-final-reply end the session at their position", "[fault]") {
  const Wire lost = run({"lost-final-reply"});
  CHECK(lost.closes == 1);
  CHECK(lost.to_client == all(Dir::server).substr(0, all(Dir::server).find("250 2.0.0 b saved")));
  CHECK(lost.to_server.find("hello\r\n.\r\n") != std::string::npos);  // the server got the message

  const Wire r = run({"reset@greeting"});
  CHECK(r.resets == 1);
  CHECK(r.to_client.empty());

  const Wire mid = run({"close@data+9"});
  CHECK(mid.closes == 1);
  CHECK(mid.to_server.substr(mid.to_server.find("DATA\r\n") + 6) == "Subject: ");
}

TEST_CASE("each client fault changes exactly the command or content at its position", "[fault]") {
  const std::string c = all(Dir::client);
  struct Case {
    std::string fault, from, to;
  };
  const std::vector<Case> cases = {
      {"bare-lf@mail", "MAIL FROM:<a@x.test>\r\n", "MAIL FROM:<a@x.test>\n"},
      {"bare-cr@rcpt#2", "RCPT TO:<c@x.test>\r\n", "RCPT TO:<c@x.test>\r"},
      {"bare-lf@content", "Subject: t\r\n\r\nhello\r\n.\r\n", "Subject: t\n\nhello\r\n.\r\n"},
      {"bare-cr@content", "Subject: t\r\n\r\nhello\r\n.\r\n", "Subject: t\r\rhello\r\n.\r\n"},
      {"smuggle@content", "hello\r\n.\r\n", "hello\n.\n\r\n.\r\n"},
      {"smuggle@content,variant=crlflf,text=RSET", "hello\r\n.\r\n", "hello\r\n.\nRSET\r\n.\r\n"},
      {"after-quit@quit", "QUIT\r\n", "QUIT\r\nNOOP\r\n"},
      {"after-quit@quit,text=RSET\\nNOOP", "QUIT\r\n", "QUIT\r\nRSET\r\nNOOP\r\n"},
  };
  for (const auto& k : cases) {
    INFO(k.fault);
    const Wire w = run({k.fault});
    CHECK(w.to_server == replace_all(c, k.from, k.to));
    CHECK(w.to_client == all(Dir::server));
    CHECK_FALSE(w.notes.empty());
  }
  const Wire l = run({"long-line@rcpt#1,len=600"});
  const auto at = l.to_server.find("RCPT TO:<b@x.test> X");
  REQUIRE(at != std::string::npos);
  CHECK(l.to_server.find("\r\n", at) + 2 - at == 600);

  const Wire d = run({"delay@rcpt#2,dir=c,ms=15"});
  CHECK(d.waited == std::chrono::milliseconds(15));
  CHECK(d.to_server == c);
}

TEST_CASE("pipeline-body answers DATA itself and holds the server's own 354 back", "[fault]") {
  FaultStage st({spec("pipeline-body@data")}, 1);
  Wire w;
  std::vector<Step> out;
  auto feed = [&](Dir d, const std::string& b) {
    st.from(d, b, 0, out);
    apply_steps(out, w);
    out.clear();
  };
  feed(Dir::server, "220 x\r\n");
  feed(Dir::client, "LHLO c\r\n");
  feed(Dir::server, "250-x\r\n250 PIPELINING\r\n");
  feed(Dir::client, "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n");
  // lockstep's 354 is out before the server has answered anything.
  CHECK(w.to_client == "220 x\r\n250-x\r\n250 PIPELINING\r\n354 lockstep: go ahead (injected; the server has not answered yet)\r\n");
  feed(Dir::client, "hello\r\n.\r\n");
  // The content reached the server before its 354.
  CHECK(w.to_server == "LHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nhello\r\n.\r\n");
  feed(Dir::server, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n250 2.0.0 saved\r\n");
  CHECK(w.to_client.find("354 go\r\n") == std::string::npos);
  CHECK(w.to_client.find("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 saved\r\n") != std::string::npos);
}

TEST_CASE("early answers a command before the client sends it and drops the server's own reply", "[fault]") {
  FaultStage st({spec("early@any#2,text=250 2.1.0 early")}, 1);
  Wire w;
  std::vector<Step> out;
  auto feed = [&](Dir d, const std::string& b) {
    st.from(d, b, 0, out);
    apply_steps(out, w);
    out.clear();
  };
  feed(Dir::server, "220 x\r\n");
  feed(Dir::client, "LHLO c\r\n");
  feed(Dir::server, "250-x\r\n250 PIPELINING\r\n");
  // Command 2 (MAIL) is answered before the client has sent it.
  CHECK(w.to_client == "220 x\r\n250-x\r\n250 PIPELINING\r\n250 2.1.0 early\r\n");
  feed(Dir::client, "MAIL FROM:<a@x>\r\n");
  feed(Dir::server, "250 2.1.0 ok\r\n");
  CHECK(w.to_client == "220 x\r\n250-x\r\n250 PIPELINING\r\n250 2.1.0 early\r\n");
  feed(Dir::client, "RCPT TO:<b@x>\r\n");
  feed(Dir::server, "250 2.1.5 ok\r\n");
  CHECK(w.to_client.substr(w.to_client.size() - 14) == "250 2.1.5 ok\r\n");
  CHECK(w.notes.size() == 2);
  std::string err;
  CHECK_FALSE(parse_fault("early@rcpt", err));
  CHECK_THAT(err, Catch::Contains("early@any#N"));
}

TEST_CASE("BDAT chunks pass as octets, never as commands", "[fault]") {
  const std::vector<Chunk> bdat = {
      {Dir::server, "220 x\r\n"},
      {Dir::client, "LHLO c\r\n"},
      {Dir::server, "250-x\r\n250 CHUNKING\r\n"},
      {Dir::client, "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nBDAT 20 LAST\r\nMAIL FROM:<evil@x>\r\n"},
      {Dir::server, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.0.0 saved\r\n"},
  };
  const Wire w = run({"bare-lf@mail"}, bdat);
  CHECK(w.to_server == "LHLO c\r\nMAIL FROM:<a@x>\nRCPT TO:<b@x>\r\nBDAT 20 LAST\r\nMAIL FROM:<evil@x>\r\n");
  // The per-recipient reply after BDAT LAST is an end-of-data position.
  CHECK(run({"cyrus-lockers"}, bdat).to_client.find("350 lockers\r\n250 2.0.0 saved") != std::string::npos);
}

TEST_CASE("what a stage holds back stays bounded, and garbage goes through", "[fault][bad-input]") {
  FaultStage st({spec("cyrus-lockers"), spec("bare-lf@mail")}, 1);
  std::vector<Step> out;
  std::string got_c, got_s;
  std::mt19937 rng(5);
  const std::string block(100000, 'x');
  for (int i = 0; i < 30; ++i) {
    st.from(Dir::server, block, 0, out);
    st.from(Dir::client, block, 0, out);
    CHECK(st.held(Dir::server) <= FaultStage::kMaxHeld);
    CHECK(st.held(Dir::client) <= FaultStage::kMaxHeld);
    for (auto& s : out)
      if (s.kind == Step::Kind::write) (s.stream == Dir::server ? got_s : got_c) += s.bytes;
    out.clear();
  }
  st.eof(Dir::server, out);
  st.eof(Dir::client, out);
  for (auto& s : out)
    if (s.kind == Step::Kind::write) (s.stream == Dir::server ? got_s : got_c) += s.bytes;
  CHECK(got_s.size() == 30 * block.size());
  CHECK(got_c.size() == 30 * block.size());

  // Random bytes in both directions: every byte comes out once, in order.
  FaultStage st2({spec("cyrus-lockers"), spec("bare-lf@vrfy")}, 2);
  std::string in_s, in_c;
  got_s.clear();
  got_c.clear();
  for (int i = 0; i < 400; ++i) {
    std::string b(1 + rng() % 40, '\0');
    for (auto& ch : b) ch = "\r\n.ab2 5-"[rng() % 9];
    const Dir d = rng() % 2 ? Dir::client : Dir::server;
    (d == Dir::server ? in_s : in_c) += b;
    st2.from(d, b, 0, out);
  }
  st2.eof(Dir::server, out);
  st2.eof(Dir::client, out);
  for (auto& s : out)
    if (s.kind == Step::Kind::write) (s.stream == Dir::server ? got_s : got_c) += s.bytes;
  // Nothing is lost or reordered; the only change is what a fault injected.
  CHECK(got_c == in_c);
  for (auto at = got_s.find("350 lockers\r\n"); at != std::string::npos; at = got_s.find("350 lockers\r\n"))
    got_s.erase(at, 13);
  CHECK(got_s == in_s);
}

// Interception: a held reply waits for release(); nothing of the server stream passes it.
TEST_CASE("a held reply goes out only when released: passed, dropped or edited", "[proxy][faults][hold]") {
  auto run_until_hold = [](FaultStage& st, Wire& w) {
    std::vector<Step> out;
    st.from(Dir::server, kSession[0].bytes, 1, out);
    st.from(Dir::client, kSession[1].bytes, 2, out);
    st.from(Dir::server, kSession[2].bytes, 3, out);
    st.from(Dir::client, kSession[3].bytes, 4, out);
    st.hold_next();
    // Four replies in one read: the first (MAIL's) is held, the other three wait behind it.
    st.from(Dir::server, kSession[4].bytes, 5, out);
    apply_steps(out, w);
  };
  FaultStage st({}, 1);
  Wire w;
  run_until_hold(st, w);
  REQUIRE(w.held.size() == 1);
  CHECK(w.held[0] == "250 2.1.0 ok\r\n");
  CHECK(st.holding());
  CHECK(st.held_label() == "MAIL FROM:<a@x.test>");
  CHECK(w.to_client.find("250 2.1.0") == std::string::npos);
  CHECK(w.to_client.find("250 2.1.5") == std::string::npos);
  // The client keeps talking meanwhile; its bytes go on.
  std::vector<Step> out;
  st.from(Dir::client, kSession[5].bytes, 6, out);
  apply_steps(out, w);
  CHECK(w.to_server.find("hello") != std::string::npos);

  SECTION("pass: the reply and those behind it, unchanged and in order") {
    out.clear();
    st.release(FaultStage::Release::pass, "", 7, out);
    apply_steps(out, w);
    CHECK_FALSE(st.holding());
    CHECK(w.notes.empty());
    CHECK(w.to_client.substr(w.to_client.size() - kSession[4].bytes.size()) == kSession[4].bytes);
  }
  SECTION("drop: a note, and the rest goes on") {
    out.clear();
    st.release(FaultStage::Release::drop, "", 7, out);
    apply_steps(out, w);
    REQUIRE(w.notes.size() == 1);
    CHECK(w.notes[0].bytes.find("dropped the held reply '250 2.1.0 ok'") != std::string::npos);
    CHECK(w.notes[0].length == 0);
    CHECK(w.to_client.find("250 2.1.0 ok") == std::string::npos);
    CHECK(w.to_client.find("250 2.1.5 b ok\r\n250 2.1.5 c ok\r\n354 go ahead\r\n") != std::string::npos);
  }
  SECTION("edit: the text as CRLF lines, marked with its stream range") {
    const std::size_t before = w.to_client.size();
    out.clear();
    st.release(FaultStage::Release::edit, "250-first\n250 2.1.0 edited", 7, out);
    apply_steps(out, w);
    REQUIRE(w.notes.size() == 1);
    CHECK(w.notes[0].offset == before);
    CHECK(w.notes[0].length == std::string("250-first\r\n250 2.1.0 edited\r\n").size());
    CHECK(w.to_client.substr(before) == "250-first\r\n250 2.1.0 edited\r\n250 2.1.5 b ok\r\n250 2.1.5 c ok\r\n354 go ahead\r\n");
  }
  SECTION("the server closing while a reply is held: the held reply goes first") {
    out.clear();
    st.eof(Dir::server, out);
    apply_steps(out, w);
    CHECK(w.to_client.find("250 2.1.0 ok\r\n250 2.1.5 b ok") != std::string::npos);
  }
}
