// Faults on real sockets: what the client and the server receive through the proxy,
// what the recording and the live findings say about it, and the control API.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "proxy/control.hpp"
#include "tests/proxy/harness.hpp"

namespace {
// A blocking client that reads with deadlines, so a fault that withholds a reply
// cannot hang the test.
struct WireClient {
  explicit WireClient(unsigned short port) : s(io) {
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  // Reads until `until` appears after `from` (default: anywhere), the peer closes, or
  // `seconds` pass; returns whether it appeared.
  bool wait_for(const std::string& until, double seconds = 5, std::size_t from = 0) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (got.find(until, from) == std::string::npos) {
      if (closed) return false;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{s.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::recv(s.native_handle(), buf, sizeof buf, 0);
      if (n <= 0) {
        closed = true;
        error = n < 0 ? errno : 0;
        return got.find(until, from) != std::string::npos;
      }
      got.append(buf, static_cast<std::size_t>(n));
    }
    return true;
  }
  // Waits for the peer to close; true when it did within `seconds`.
  bool wait_closed(double seconds = 5) {
    wait_for(std::string("\x01never\x02"), seconds);
    return closed;
  }
  // A fault may have closed the connection already: what could not be sent is dropped.
  void send(const std::string& b) {
    boost::system::error_code ec;
    asio::write(s, asio::buffer(b), ec);
  }

  asio::io_context io;
  tcp::socket s;
  std::string got;
  bool closed = false;
  int error = 0;
};

auto with_faults(std::vector<std::string> faults, std::uint64_t seed = 7) {
  return [faults = std::move(faults), seed](proxy::ProxyOptions& o) {
    for (const auto& text : faults) {
      std::string err;
      auto f = proxy::parse_fault(text, err);
      INFO(err);
      REQUIRE(f);
      o.faults.push_back(*f);
    }
    o.seed = seed;
  };
}

// Greeting and LHLO.
void greet(WireClient& c) {
  REQUIRE(c.wait_for("220 "));
  c.send("LHLO c.test\r\n");
  REQUIRE(c.wait_for("250 SIZE\r\n"));
}

// Greeting, LHLO, and one pipelined transaction to two recipients up to the 354.
void to_354(WireClient& c) {
  greet(c);
  c.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@lab.test>\r\nRCPT TO:<bob@lab.test>\r\nDATA\r\n");
  REQUIRE(c.wait_for("354 "));
}
}  // namespace

TEST_CASE("cyrus-lockers on the wire: the client gets '350 lockers', live and offline findings say it was injected",
          "[proxy][fault][incident]") {
  proxy::ToyLmtpServer server;
  const std::string rec = temp_path("fault-lockers.jsonl");
  std::filesystem::remove(rec);
  std::vector<std::string> live_rules;
  {
    RunningProxy p("127.0.0.1:" + std::to_string(server.port()), rec, "127.0.0.1:0", 1, with_faults({"cyrus-lockers"}));
    WireClient c(p.port());
    to_354(c);
    const std::size_t mark = c.got.size();
    c.send("Subject: x\r\n\r\nhi\r\n.\r\n");
    REQUIRE(c.wait_for("250 2.0.0 ok\r\n250 2.0.0 ok\r\n", 5, mark));
    CHECK(c.got.substr(mark) == "350 lockers\r\n250 2.0.0 ok\r\n250 2.0.0 ok\r\n");
    c.send("QUIT\r\n");
    CHECK(c.wait_closed());
    p.stop();
    // The server got exactly what the client sent: the fault was on the replies only.
    REQUIRE(server.received().size() == 1);
    CHECK(server.received()[0] ==
          "LHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<alice@lab.test>\r\nRCPT TO:<bob@lab.test>\r\nDATA\r\n"
          "Subject: x\r\n\r\nhi\r\n.\r\n"
          "QUIT\r\n");
    std::lock_guard lock(p.mu);
    REQUIRE(!p.live.empty());
    for (const auto& [conn, f] : p.live) {
      live_rules.push_back(std::string(f.rule->id) + "@" + std::to_string(f.offset));
      if (f.severity == Severity::error) CHECK(f.injected);
    }
    CHECK(std::find(live_rules.begin(), live_rules.end(), "LMTP-4.2-PER-RCPT-REPLIES@" + std::to_string(c.got.find("350 lockers"))) !=
          live_rules.end());
    REQUIRE(p.sessions.size() == 1);
    REQUIRE(p.sessions[0].faults.size() == 2);  // the connection's faults and seed, then the injection
    CHECK_THAT(p.sessions[0].faults[0], Catch::Contains("seed"));
  }
  const std::string text = slurp(rec);
  CHECK(text.find("\"ev\":\"fault\",\"dir\":\"s\",\"text\":\"cyrus-lockers: injected '350 lockers'\"") != std::string::npos);
  CHECK(offline_rules(rec) == live_rules);
  // Offline, the same findings carry the injected mark.
  const auto results = offline_results(rec);
  REQUIRE(results.size() == 1);
  for (const auto& f : results[0].findings)
    if (f.severity == Severity::error) CHECK(f.injected);
  std::filesystem::remove(rec);
}

TEST_CASE("reply faults on the wire: delay, fragment, lost-final-reply, reset, shutdown", "[proxy][fault]") {
  proxy::ToyLmtpServer server;
  const std::string up = "127.0.0.1:" + std::to_string(server.port());

  SECTION("delay holds the first end-of-data reply back") {
    RunningProxy p(up, {}, "127.0.0.1:0", 1, with_faults({"slow-data-done,ms=400"}));
    WireClient c(p.port());
    to_354(c);
    const std::size_t mark = c.got.size();
    const auto t0 = std::chrono::steady_clock::now();
    c.send("hi\r\n.\r\n");
    CHECK_FALSE(c.wait_for("250 2.0.0 ok", 0.2, mark));  // not yet
    REQUIRE(c.wait_for("250 2.0.0 ok\r\n250 2.0.0 ok\r\n", 5, mark));
    CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(400));
  }
  SECTION("fragment writes the LHLO reply one octet at a time") {
    const std::string rec = temp_path("fault-fragment.jsonl");
    std::filesystem::remove(rec);
    {
      RunningProxy p(up, rec, "127.0.0.1:0", 1, with_faults({"fragment@lhlo,size=1"}));
      WireClient c(p.port());
      to_354(c);
      p.stop();
    }
    // Each octet was its own write: its own data event in the recording.
    const std::string text = slurp(rec);
    std::size_t ones = 0;
    for (auto at = text.find("\"dir\":\"s\",\"data\":\""); at != std::string::npos; at = text.find("\"dir\":\"s\",\"data\":\"", at + 1)) {
      const std::size_t b = at + 18, e = text.find('"', b);
      if (e - b == 1 || text.compare(b, 2, "\\r") == 0 || text.compare(b, 2, "\\n") == 0) ones += e - b <= 2;
    }
    CHECK(ones >= std::string("250-fake.lab.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SIZE\r\n").size());
    std::filesystem::remove(rec);
  }
  SECTION("lost-final-reply: the server delivers, the client hears nothing and sees the connection close") {
    RunningProxy p(up, {}, "127.0.0.1:0", 1, with_faults({"lost-final-reply"}));
    WireClient c(p.port());
    to_354(c);
    const std::size_t mark = c.got.size();
    c.send("hi\r\n.\r\n");
    CHECK(c.wait_closed());
    CHECK(c.got.substr(mark).empty());
    // The server did get the end of data: the message was delivered.
    for (int i = 0; i < 100 && server.received().at(0).find("hi\r\n.\r\n") == std::string::npos; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(server.received().at(0).find("hi\r\n.\r\n") != std::string::npos);
  }
  SECTION("reset at the greeting resets the client's connection") {
    RunningProxy p(up, {}, "127.0.0.1:0", 1, with_faults({"reset@greeting"}));
    WireClient c(p.port());
    CHECK(c.wait_closed());
    CHECK(c.got.empty());
    CHECK(c.error == ECONNRESET);
  }
  SECTION("shutdown answers the 2nd RCPT with 421 and closes") {
    RunningProxy p(up, {}, "127.0.0.1:0", 1, with_faults({"shutdown@rcpt#2"}));
    WireClient c(p.port());
    greet(c);
    const std::size_t mark = c.got.size();
    c.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@lab.test>\r\nRCPT TO:<bob@lab.test>\r\nDATA\r\n");
    CHECK(c.wait_closed());
    CHECK(c.got.substr(mark) == "250 2.1.0 ok\r\n250 2.1.5 ok\r\n421 4.3.2 lockstep: service shutting down (injected)\r\n");
  }
}

TEST_CASE("client faults on the wire: the server receives the changed bytes", "[proxy][fault]") {
  proxy::ToyLmtpServer server;
  const std::string up = "127.0.0.1:" + std::to_string(server.port());
  SECTION("bare-lf on MAIL") {
    RunningProxy p(up, {}, "127.0.0.1:0", 1, with_faults({"bare-lf@mail"}));
    WireClient c(p.port());
    greet(c);
    c.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@lab.test>\r\n");
    REQUIRE(c.wait_for("250 2.1.0 ok\r\n"));
    CHECK(server.received().at(0) == "LHLO c.test\r\nMAIL FROM:<a@b.test>\nRCPT TO:<alice@lab.test>\r\n");
  }
  SECTION("pipeline-body: lockstep answers DATA, the content reaches the server with DATA, its 354 stays back") {
    RunningProxy p(up, {}, "127.0.0.1:0", 1, with_faults({"pipeline-body@data"}));
    WireClient c(p.port());
    greet(c);
    const std::size_t mark = c.got.size();
    c.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@lab.test>\r\nDATA\r\n");
    REQUIRE(c.wait_for("354 lockstep", 5, mark));
    c.send("hi\r\n.\r\n");
    REQUIRE(c.wait_for("250 2.0.0 ok\r\n", 5, mark));
    const std::string replies = c.got.substr(mark);
    CHECK(replies.find("354 go ahead") == std::string::npos);
    CHECK(replies.find("250 2.1.0 ok\r\n") != std::string::npos);
    CHECK(server.received().at(0).find("DATA\r\nhi\r\n.\r\n") != std::string::npos);
  }
  SECTION("close after N octets of content cuts the message mid-DATA") {
    const std::string rec = temp_path("fault-cut.jsonl");
    std::filesystem::remove(rec);
    {
      RunningProxy p(up, rec, "127.0.0.1:0", 1, with_faults({"close@data+3"}));
      WireClient c(p.port());
      to_354(c);
      c.send("hello world\r\n.\r\n");
      CHECK(c.wait_closed());
      p.stop();
    }
    // What went upstream, as recorded: the content stops after three octets.
    std::string err, upstream;
    auto src = open_source(rec, "auto", err);
    REQUIRE(src);
    SourceEvent ev;
    while (src->next(ev))
      if (ev.kind == SourceEvent::Kind::data && ev.dir == Dir::client) upstream += ev.bytes;
    CHECK(upstream.substr(upstream.find("DATA\r\n") + 6) == "hel");
    CHECK(server.received().at(0).find("world") == std::string::npos);
    std::filesystem::remove(rec);
  }
}

namespace {
// One pipelined session through a proxy with `faults`: what the client received and
// what went upstream (from the recording).
struct WireRun {
  std::string client_got, upstream_got;
};
WireRun wire_run(const std::string& up, const std::vector<std::string>& faults) {
  const std::string rec = temp_path("fault-table.jsonl");
  std::filesystem::remove(rec);
  WireRun out;
  {
    RunningProxy p(up, rec, "127.0.0.1:0", 1, with_faults(faults));
    WireClient c(p.port());
    c.wait_for("220 ", 2);
    c.send("LHLO c.test\r\n");
    c.wait_for("SIZE\r\n", 2);
    c.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<alice@lab.test>\r\nRCPT TO:<bob@lab.test>\r\nDATA\r\n");
    c.wait_for("354 go ahead\r\n", 2);
    c.send("Subject: t\r\n\r\nhello\r\n.\r\nQUIT\r\n");
    c.wait_closed(3);
    out.client_got = c.got;
    p.stop();
  }
  std::string err;
  auto src = open_source(rec, "auto", err);
  REQUIRE(src);
  SourceEvent ev;
  while (src->next(ev))
    if (ev.kind == SourceEvent::Kind::data && ev.dir == Dir::client) out.upstream_got += ev.bytes;
  std::filesystem::remove(rec);
  return out;
}
}  // namespace

TEST_CASE("every fault kind has its effect on the wire", "[proxy][fault]") {
  proxy::ToyLmtpServer server;
  const std::string up = "127.0.0.1:" + std::to_string(server.port());
  const WireRun base = wire_run(up, {});
  const std::string eod2 = "250 2.0.0 ok\r\n250 2.0.0 ok\r\n";
  REQUIRE(base.client_got ==
          "220 fake.lab.test LMTP ready\r\n250-fake.lab.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
          "250-8BITMIME\r\n250 SIZE\r\n250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n" +
              eod2 + "221 2.0.0 bye\r\n");
  using Edits = std::vector<std::pair<std::string, std::string>>;
  auto edited = [](std::string s, const Edits& edits) {
    for (const auto& [from, to] : edits) {
      const auto at = s.find(from);
      REQUIRE(at != std::string::npos);
      s.replace(at, from.size(), to);
    }
    return s;
  };
  const std::vector<std::pair<std::string, Edits>> reply_cases = {
      {"cyrus-lockers", {{"354 go ahead\r\n", "354 go ahead\r\n350 lockers\r\n"}}},
      {"inject-after@mail,text=250 2.1.0 extra", {{"250 2.1.0 ok\r\n", "250 2.1.0 ok\r\n250 2.1.0 extra\r\n"}}},
      {"replace@eod#2,code=452", {{eod2, "250 2.0.0 ok\r\n452 4.0.0 ok\r\n"}}},
      {"spampd-single-data-reply", {{eod2, "250 2.0.0 ok\r\n"}}},
      {"exim-452-then-250", {{"250 2.1.5 ok\r\n354", "452 4.5.3 Too many recipients\r\n354"}}},
      {"dup@mail", {{"250 2.1.0 ok\r\n", "250 2.1.0 ok\r\n250 2.1.0 ok\r\n"}}},
      {"swap@rcpt#2", {{"250 2.1.5 ok\r\n354 go ahead\r\n", "354 go ahead\r\n250 2.1.5 ok\r\n"}}},
      {"dovecot-multiline-split", {{"250-fake.lab.test", "250 fake.lab.test"}}},
      {"drop@lhlo,line=2", {{"250-PIPELINING\r\n", ""}}},
      {"inject@lhlo,line=5,text=250-XLOCKSTEP", {{"250 SIZE", "250-XLOCKSTEP\r\n250 SIZE"}}},
      {"early@any#2,text=250 2.1.0 early", {{"250 SIZE\r\n250 2.1.0 ok\r\n", "250 SIZE\r\n250 2.1.0 early\r\n"}}},
      {"shutdown@rcpt#2", {{"250 2.1.5 ok\r\n354 go ahead\r\n" + eod2 + "221 2.0.0 bye\r\n",
                            "421 4.3.2 lockstep: service shutting down (injected)\r\n"}}},
      {"lost-final-reply", {{eod2 + "221 2.0.0 bye\r\n", ""}}},
      {"close@greeting", {{base.client_got, ""}}},
      {"coalesce@any", {}},
      {"fragment@any,size=2", {}},
      {"delay@mail,ms=50", {}},
  };
  for (const auto& [fault, edits] : reply_cases) {
    INFO(fault);
    const WireRun r = wire_run(up, {fault});
    CHECK(r.client_got == edited(base.client_got, edits));
  }
  const std::vector<std::pair<std::string, Edits>> client_cases = {
      {"bare-lf@rcpt#1", {{"<alice@lab.test>\r\n", "<alice@lab.test>\n"}}},
      {"bare-cr@content", {{"Subject: t\r\n\r\nhello", "Subject: t\r\rhello"}}},
      {"smuggle@content,variant=lflf,text=RSET", {{"hello\r\n.\r\n", "hello\n.\nRSET\r\n.\r\n"}}},
      {"long-line@mail,len=100", {{"MAIL FROM:<a@b.test>\r\n", "MAIL FROM:<a@b.test> " + std::string(77, 'X') + "\r\n"}}},
      {"after-quit@quit", {{"QUIT\r\n", "QUIT\r\nNOOP\r\n"}}},
      {"close@data+4", {{"ect: t\r\n\r\nhello\r\n.\r\nQUIT\r\n", ""}}},
  };
  for (const auto& [fault, edits] : client_cases) {
    INFO(fault);
    const WireRun r = wire_run(up, {fault});
    CHECK(r.upstream_got == edited(base.upstream_got, edits));
  }
}

TEST_CASE("a seed replays which connections a probabilistic fault chooses", "[proxy][fault]") {
  proxy::ToyLmtpServer server;
  const std::string up = "127.0.0.1:" + std::to_string(server.port());
  auto chosen = [&](std::uint64_t seed) {
    RunningProxy p(up, {}, "127.0.0.1:0", 1, with_faults({"cyrus-lockers,p=0.5"}, seed));
    for (int i = 0; i < 16; ++i) {
      WireClient c(p.port());
      REQUIRE(c.wait_for("220 "));
      c.send("QUIT\r\n");
      c.wait_closed();
    }
    for (int i = 0; i < 200 && p.session_count() < 16; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    p.stop();
    std::set<std::string> conns;
    std::lock_guard lock(p.mu);
    for (const auto& s : p.sessions)
      if (!s.faults.empty()) conns.insert(s.conn);
    return conns;
  };
  const auto a = chosen(12345), b = chosen(12345), c = chosen(999);
  CHECK(a == b);
  CHECK(a.size() > 0);
  CHECK(a.size() < 16);
  CHECK(a != c);
}

TEST_CASE("the control API adds, lists and removes faults for new connections", "[proxy][fault][control]") {
  proxy::ToyLmtpServer server;
  const std::string up = "127.0.0.1:" + std::to_string(server.port());
  RunningProxy p(up);
  auto call = [&](const std::string& method, const std::string& target, const std::string& body = {},
                  const std::string& token = {}) {
    return proxy::handle_control(*p.p, proxy::ControlRequest{method, target, body, token.empty() ? "" : "Bearer " + token}, "");
  };
  auto r = call("POST", "/faults", R"({"name": "lockers", "spec": "cyrus-lockers"})");
  CHECK(r.status == 201);
  CHECK_THAT(r.body, Catch::Contains("\"name\":\"lockers\""));
  CHECK(call("POST", "/faults", R"({"name": "lockers", "spec": "cyrus-lockers"})").status == 409);
  CHECK(call("POST", "/faults", R"({"spec": "explode@rcpt"})").status == 400);
  CHECK(call("POST", "/faults", "not json").status == 400);
  CHECK(call("GET", "/nowhere").status == 404);
  CHECK_THAT(call("GET", "/faults").body, Catch::Contains("lockers"));
  CHECK_THAT(call("GET", "/presets").body, Catch::Contains("spampd-single-data-reply"));

  {  // A new connection gets the fault.
    WireClient c(p.port());
    to_354(c);
    const std::size_t mark = c.got.size();
    auto sessions = call("GET", "/sessions");
    CHECK_THAT(sessions.body, Catch::Contains("\"faults\":[\"lockers\"]"));
    c.send("hi\r\n.\r\n");
    REQUIRE(c.wait_for("250 2.0.0 ok\r\n250 2.0.0 ok\r\n", 5, mark));
    CHECK(c.got.substr(mark, 13) == "350 lockers\r\n");
  }
  CHECK(call("DELETE", "/faults/lockers").status == 204);
  CHECK(call("DELETE", "/faults/lockers").status == 404);
  {  // And after its removal, a new connection does not.
    WireClient c(p.port());
    to_354(c);
    const std::size_t mark = c.got.size();
    c.send("hi\r\n.\r\n");
    REQUIRE(c.wait_for("250 2.0.0 ok\r\n250 2.0.0 ok\r\n", 5, mark));
    CHECK(c.got.substr(mark) == "250 2.0.0 ok\r\n250 2.0.0 ok\r\n");
  }
  // With a token, requests without it are refused.
  CHECK(proxy::handle_control(*p.p, {"GET", "/faults", "", ""}, "s3cret").status == 401);
  CHECK(proxy::handle_control(*p.p, {"GET", "/faults", "", "Bearer wrong!"}, "s3cret").status == 401);
  CHECK(proxy::handle_control(*p.p, {"GET", "/faults", "", "Bearer s3cret"}, "s3cret").status == 200);
}

TEST_CASE("the control API serves HTTP on loopback and wants a token elsewhere", "[proxy][control]") {
  proxy::ToyLmtpServer server;
  RunningProxy p("127.0.0.1:" + std::to_string(server.port()));
  CHECK_THROWS_WITH(proxy::ControlServer(p.p->io(), *p.p, "0.0.0.0:0", ""), Catch::Contains("--control-token is required"));
  CHECK_THROWS_WITH(proxy::ControlServer(p.p->io(), *p.p, "nonsense", ""), Catch::Contains("--control"));
  proxy::ControlServer control(p.p->io(), *p.p, "127.0.0.1:0", "");
  const std::string addr = control.local_address();
  const auto port = static_cast<unsigned short>(std::stoi(addr.substr(addr.rfind(':') + 1)));
  namespace http = boost::beast::http;
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{http::verb::post, "/faults", 11};
  req.set(http::field::host, "localhost");
  req.body() = R"({"spec": "drop@rcpt#2"})";
  req.prepare_payload();
  http::write(s, req);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  CHECK(res.result_int() == 201);
  CHECK(boost::json::parse(res.body()).as_object().at("action").as_string() == "drop");
  REQUIRE(p.p->faults().size() == 1);
  CHECK(p.p->faults()[0].name == "drop@rcpt#2");
  control.stop();
}
