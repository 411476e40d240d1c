// The proxy against an in-process LMTP server: byte-exact relay, the same findings live
// and offline, an unreachable upstream, unix sockets, and 1,000 concurrent sessions.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <future>
#include <map>
#include <mutex>

#include <boost/asio/read.hpp>
#include <fmt/format.h>

#include "engine/jsonl.hpp"
#include "proxy/recorder.hpp"
#include "tests/proxy/harness.hpp"


TEST_CASE("the proxy relays every byte unchanged both ways and records what the engine saw", "[proxy]") {
  proxy::ToyLmtpServer server;
  const std::string rec = temp_path("exact.jsonl");
  std::filesystem::remove(rec);
  std::string sent, got;
  {
    RunningProxy px("127.0.0.1:" + std::to_string(server.port()), rec);
    std::mt19937 rng(7);
    got = client_session(px.port(), rng, sent);
    // Wait (bounded) for the proxy to see both sides close.
    for (int i = 0; i < 200 && px.session_count() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    px.stop();
    REQUIRE(px.sessions.size() == 1);
    CHECK(px.sessions[0].errors == 0);
    CHECK(px.sessions[0].commands == 7);
    CHECK(px.live.empty());
  }
  const auto recv = server.received();
  REQUIRE(recv.size() == 1);
  CHECK(recv[0] == sent);
  CHECK(got.find("220 fake.lab.test LMTP ready\r\n") == 0);
  CHECK(got.find("550 5.1.1 unknown user\r\n") != std::string::npos);
  CHECK(offline_rules(rec).empty());
  // The opening event names both ends: the client's address as accepted, and the server.
  std::string err;
  auto src = open_source(rec, "auto", err);
  REQUIRE(src);
  SourceEvent ev;
  std::vector<std::pair<std::string, std::string>> ends;
  while (src->next(ev))
    if (ev.kind == SourceEvent::Kind::open) ends.emplace_back(ev.a, ev.b);
  REQUIRE(ends.size() == 1);
  CHECK(ends[0].first.rfind("127.0.0.1:", 0) == 0);
  CHECK(std::stoi(ends[0].first.substr(10)) > 0);
  CHECK(ends[0].second == "127.0.0.1:" + std::to_string(server.port()));
  std::filesystem::remove(rec);
}

TEST_CASE("a stray reply gives the same findings live and from the recording", "[proxy][desync]") {
  proxy::ToyLmtpServer server(proxy::ToyLmtpServer::Options{"350 lockers"});
  const std::string rec = temp_path("stray.jsonl");
  std::filesystem::remove(rec);
  std::vector<std::string> live;
  {
    RunningProxy px("127.0.0.1:" + std::to_string(server.port()), rec);
    asio::io_context io;
    std::string buf;
    tcp::socket s = open_to_354(io, px.port(), buf);
    asio::write(s, asio::buffer(std::string("hi\r\n.\r\n")));
    read_until(s, buf, "250 2.0.0 ok\r\n");  // after the stray 350
    asio::write(s, asio::buffer(std::string("QUIT\r\n")));
    read_until(s, buf, "221 2.0.0 bye\r\n");
    s.close();
    for (int i = 0; i < 200 && px.session_count() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    px.stop();
    for (const auto& [conn, f] : px.live) live.push_back(std::string(f.rule->id) + "@" + std::to_string(f.offset));
  }
  INFO("live findings: " << live.size());
  CHECK(std::find(live.begin(), live.end(), "LMTP-4.2-PER-RCPT-REPLIES@" + std::string("")) == live.end());
  bool root = false, order = false;
  for (const auto& l : live) {
    root = root || l.rfind("LMTP-4.2-PER-RCPT-REPLIES@", 0) == 0;
    order = order || l.rfind("DESYNC-1-UNSOLICITED@", 0) == 0;
  }
  CHECK(root);
  CHECK(order);
  CHECK(offline_rules(rec) == live);
  std::filesystem::remove(rec);
}

TEST_CASE("an unreachable upstream gets the client a 421 and is recorded as a fault", "[proxy][bad-input]") {
  // A port nobody listens on: bind one, note it, close it.
  unsigned short dead;
  {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    dead = a.local_endpoint().port();
  }
  const std::string rec = temp_path("unreachable.jsonl");
  std::filesystem::remove(rec);
  RunningProxy px("127.0.0.1:" + std::to_string(dead), rec);
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), px.port()));
  std::string buf;
  const std::string reply = read_until(s, buf, "\r\n");
  CHECK(reply.rfind("421 4.4.0 ", 0) == 0);
  boost::system::error_code ec;
  char c;
  s.read_some(asio::buffer(&c, 1), ec);
  CHECK(ec == asio::error::eof);
  px.stop();
  std::string err;
  auto src = open_source(rec, "auto", err);
  REQUIRE(src);
  bool fault = false;
  SourceEvent ev;
  while (src->next(ev)) fault = fault || ev.kind == SourceEvent::Kind::fault;
  CHECK(fault);
  std::filesystem::remove(rec);
}

TEST_CASE("bad listen addresses and busy ports give a clear error", "[proxy][bad-input]") {
  std::string err;
  CHECK_FALSE(proxy::parse_address("localhost", err));
  CHECK(err.find("host:port") != std::string::npos);
  CHECK_FALSE(proxy::parse_address("127.0.0.1:99999", err));
  CHECK_FALSE(proxy::parse_address("unix:", err));
  CHECK(proxy::parse_address("[::1]:24", err));
  asio::io_context io;
  tcp::acceptor busy(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = busy.local_endpoint().port();
  proxy::ProxyOptions o;
  o.listen = proxy::parse_address("127.0.0.1:" + std::to_string(port), err).value();
  o.upstream = proxy::parse_address("127.0.0.1:1", err).value();
  proxy::Proxy p(o, {});
  CHECK_THROWS_WITH(p.start(), Catch::Contains("cannot listen on"));
  proxy::ProxyOptions o2 = o;
  o2.listen = proxy::parse_address("127.0.0.1:0", err).value();
  o2.record = "/nonexistent-dir/rec.jsonl";
  proxy::Proxy p2(o2, {});
  CHECK_THROWS_WITH(p2.start(), Catch::Contains("cannot open the recording"));
}

TEST_CASE("the proxy listens on a unix socket", "[proxy]") {
  proxy::ToyLmtpServer server;
  const std::string path = temp_path("listen.sock");
  RunningProxy px("127.0.0.1:" + std::to_string(server.port()), {}, "unix:" + path);
  asio::io_context io;
  asio::local::stream_protocol::socket s(io);
  s.connect(asio::local::stream_protocol::endpoint(path));
  std::string buf;
  asio::read_until(s, asio::dynamic_buffer(buf), "\r\n");
  CHECK(buf.rfind("220 ", 0) == 0);
  asio::write(s, asio::buffer(std::string("QUIT\r\n")));
  asio::read_until(s, asio::dynamic_buffer(buf), "221");
  s.close();
  px.stop();
  std::filesystem::remove(path);
}

TEST_CASE("with several threads, connections take turns on them, each relayed byte-exact, and the proxy then stops",
          "[proxy][threads]") {
  proxy::ToyLmtpServer server;
  const std::string rec = temp_path("threads.jsonl");
  std::filesystem::remove(rec);
  std::vector<std::string> sent(6);
  {
    RunningProxy px("127.0.0.1:" + std::to_string(server.port()), rec, "127.0.0.1:0", 3);
    for (int i = 0; i < 6; ++i) {
      std::mt19937 rng(static_cast<unsigned>(100 + i));
      client_session(px.port(), rng, sent[static_cast<std::size_t>(i)]);
    }
    for (int i = 0; i < 300 && px.session_count() < 6; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    // run() returns once stopped, though the connections lived on the other threads too.
    auto stopped = std::async(std::launch::async, [&] { px.stop(); });
    REQUIRE(stopped.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
    REQUIRE(px.sessions.size() == 6);
    for (const auto& r : px.sessions) CHECK(r.errors == 0);
    // Accepted in turn: two connections on each of the three threads.
    std::map<std::thread::id, int> per_thread;
    for (const auto& t : px.session_threads) ++per_thread[t];
    CHECK(per_thread.size() == 3);
    for (const auto& [t, n] : per_thread) CHECK(n == 2);
  }
  const auto recv = server.received();
  REQUIRE(recv.size() == 6);
  CHECK(std::is_permutation(recv.begin(), recv.end(), sent.begin()));
  CHECK(offline_results(rec).size() == 6);
  CHECK(offline_rules(rec).empty());
  std::filesystem::remove(rec);
}

TEST_CASE("a server's last reply and its close, come together, both reach the client", "[proxy][eof]") {
  // The server answers and closes at once, so the proxy is woken once for the octets and
  // the end: the end must not wait for a wake-up that never comes.
  const std::string said = "220 x ready\r\n421 4.3.2 going away\r\n";
  constexpr int kRounds = 40;
  RawServer server([&](tcp::socket& s) {
    boost::system::error_code ec;
    asio::write(s, asio::buffer(said), ec);
    s.close(ec);
  });
  {
    RunningProxy px(server.upstream());
    for (int i = 0; i < kRounds; ++i) {
      asio::io_context io;
      tcp::socket s(io);
      s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), px.port()));
      // Read to the end, for 5 s at most: a missed end fails instead of hanging.
      std::string got;
      bool ended = false;
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (!ended && std::chrono::steady_clock::now() < until) {
        pollfd pfd{s.native_handle(), POLLIN, 0};
        if (::poll(&pfd, 1, 100) <= 0) continue;
        char b[256];
        const ssize_t n = ::recv(s.native_handle(), b, sizeof b, 0);
        if (n > 0) got.append(b, static_cast<std::size_t>(n));
        else ended = true;
      }
      INFO("round " << i);
      CHECK(got == said);
      REQUIRE(ended);
    }
    px.stop();
  }
}

TEST_CASE("a large message read a small buffer at a time arrives whole", "[proxy]") {
  proxy::ToyLmtpServer server;
  RunningProxy px("127.0.0.1:" + std::to_string(server.port()), {}, "127.0.0.1:0", 1,
                  [](proxy::ProxyOptions& o) { o.buffer = 1000; });  // most reads fill the buffer
  std::string body;
  std::mt19937 rng(11);
  for (int i = 0; i < 40000; ++i) body += fmt::format("line {} {}\r\n", i, std::string(rng() % 90, 'a' + static_cast<char>(i % 26)));
  std::string sent;
  {
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), px.port()));
    std::string buf;
    auto say = [&](const std::string& text, const std::string& until) {
      sent += text;
      asio::write(s, asio::buffer(text));
      read_until(s, buf, until);
    };
    read_until(s, buf, "\r\n");
    say("LHLO c\r\n", "250 SIZE\r\n");
    say("MAIL FROM:<a@b>\r\nRCPT TO:<alice@lab.test>\r\nDATA\r\n", "354 go ahead\r\n");
    say(body + ".\r\n", "250 2.0.0 ok\r\n");
    say("QUIT\r\n", "221 2.0.0 bye\r\n");
  }
  for (int i = 0; i < 300 && px.session_count() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  px.stop();
  const auto recv = server.received();
  REQUIRE(recv.size() == 1);
  CHECK(recv[0].size() == sent.size());
  CHECK(recv[0] == sent);
  REQUIRE(px.sessions.size() == 1);
  CHECK(px.sessions[0].errors == 0);
}

TEST_CASE("what a slow server does not take at once is kept and written whole, in order", "[proxy][backpressure]") {
  // The server reads nothing for a while: the proxy's writes to it fill the socket and
  // stop part-way, and the rest waits in the connection's own buffer while the thread's
  // read buffer serves the other reads.
  asio::io_context sio;
  tcp::acceptor acc(sio, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::string got;
  std::thread server([&] {
    boost::system::error_code ec;
    tcp::socket s(sio);
    acc.accept(s, ec);
    if (ec) return;
    asio::write(s, asio::buffer(std::string("220 slow ready\r\n")), ec);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    char b[65536];
    for (;;) {
      const std::size_t n = s.read_some(asio::buffer(b), ec);
      if (ec) break;
      got.append(b, n);
    }
  });
  std::string sent = "LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nDATA\r\n";
  std::mt19937 rng(5);
  while (sent.size() < (12u << 20)) sent += fmt::format("{:08x} {}\r\n", rng(), std::string(rng() % 200, 'k'));
  sent += ".\r\nQUIT\r\n";
  {
    RunningProxy px("127.0.0.1:" + std::to_string(acc.local_endpoint().port()));
    asio::io_context io;
    tcp::socket s(io);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), px.port()));
    std::string buf;
    read_until(s, buf, "\r\n");
    std::mt19937 wrng(9);
    for (std::size_t i = 0; i < sent.size();) {  // writes of up to 256 KiB
      const std::size_t n = std::min<std::size_t>(1 + wrng() % (256u << 10), sent.size() - i);
      asio::write(s, asio::buffer(sent.data() + i, n));
      i += n;
    }
    s.shutdown(tcp::socket::shutdown_send);
    server.join();  // the server saw the end: every octet went through
    px.stop();
  }
  CHECK(got.size() == sent.size());
  CHECK(got == sent);
}

TEST_CASE("connections waiting for a slow server cost no CPU, after others have come and gone", "[proxy][idle]") {
  // Closed connections leave their reactor registrations to be reused, with the events of
  // their last wake-up (a reset, a hang-up): a wait must not take those for a new edge.
  std::atomic<bool> slow{false};
  RawServer server([&](tcp::socket& s) {
    if (slow) return;  // held open: the slow server says nothing on it
    boost::system::error_code ec;
    asio::write(s, asio::buffer(std::string("220 x\r\n")), ec);
    const linger reset{1, 0};  // closes with a reset
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    s.close(ec);
  });
  RunningProxy px(server.upstream(), {}, "127.0.0.1:0", 2);
  asio::io_context io;
  const auto ep = tcp::endpoint(asio::ip::make_address("127.0.0.1"), px.port());
  for (int i = 0; i < 20; ++i) {  // connections that end with the server's reset
    tcp::socket s(io);
    s.connect(ep);
    std::string buf;
    boost::system::error_code ec;
    asio::read(s, asio::dynamic_buffer(buf), ec);
  }
  for (int i = 0; i < 300 && px.session_count() < 20; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  slow = true;
  std::vector<tcp::socket> waiting;
  for (int i = 0; i < 20; ++i) {
    waiting.emplace_back(io);
    waiting.back().connect(ep);
  }
  auto cpu = [] {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
  };
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // connected upstream
  const long before = cpu();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  const long used = cpu() - before;
  // Waiting costs next to nothing; a wait that ends at once spins a thread (600 ms of it).
  CHECK(used < 200000);
  waiting.clear();
  px.stop();
}

TEST_CASE("1,000 concurrent sessions through the proxy all complete", "[proxy][load]") {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 16384);
  setrlimit(RLIMIT_NOFILE, &rl);
  REQUIRE(rl.rlim_cur >= 4200);  // client, proxy (2) and server side of each session
  proxy::ToyLmtpServer server;
  RunningProxy px("127.0.0.1:" + std::to_string(server.port()), {}, "127.0.0.1:0", 2);
  asio::io_context io;
  std::atomic<int> done{0}, failed{0};
  std::vector<std::unique_ptr<tcp::socket>> held;
  const auto ep = tcp::endpoint(asio::ip::make_address("127.0.0.1"), px.port());
  // All sessions connect and get their greeting first, so all 1,000 are open at once.
  std::atomic<int> greeted{0};
  for (int i = 0; i < 1000; ++i) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto tup = asio::as_tuple(asio::use_awaitable);
          tcp::socket s(io);
          auto [ec] = co_await s.async_connect(ep, tup);
          std::string buf;
          if (!ec) std::tie(ec, std::ignore) = co_await asio::async_read_until(s, asio::dynamic_buffer(buf), "\r\n", tup);
          ++greeted;
          asio::steady_timer t(io);
          while (!ec && greeted.load() < 1000) {
            t.expires_after(std::chrono::milliseconds(5));
            co_await t.async_wait(tup);
          }
          std::string cmd = "LHLO c\r\nQUIT\r\n";
          if (!ec) std::tie(ec, std::ignore) = co_await asio::async_write(s, asio::buffer(cmd), tup);
          if (!ec) std::tie(ec, std::ignore) = co_await asio::async_read_until(s, asio::dynamic_buffer(buf), "221 2.0.0 bye\r\n", tup);
          (ec ? failed : done)++;
        },
        asio::detached);
  }
  std::thread runner([&] { io.run_for(std::chrono::seconds(60)); });
  runner.join();
  CHECK(failed == 0);
  CHECK(done == 1000);
  for (int i = 0; i < 500 && px.session_count() < 1000; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(px.session_count() == 1000);
  CHECK(server.sessions() == 1000);
  px.stop();
}

TEST_CASE("with redaction the proxy masks message content in the recording, keeping sizes and lines", "[proxy][redact]") {
  proxy::ToyLmtpServer server;
  const std::string rec = temp_path("redact.jsonl");
  std::filesystem::remove(rec);
  {
    RunningProxy px("127.0.0.1:" + std::to_string(server.port()), rec, "127.0.0.1:0", 1,
                    [](proxy::ProxyOptions& o) { o.redact = true; });
    asio::io_context io;
    std::string buf;
    tcp::socket s = open_to_354(io, px.port(), buf);
    asio::write(s, asio::buffer(std::string("Subject: the secret plan\r\n")));
    asio::write(s, asio::buffer(std::string("..dotted secret\r\nmore secret text\r\n.\r\nQUIT\r\n")));
    read_until(s, buf, "221 2.0.0 bye\r\n");
    s.close();
    for (int i = 0; i < 200 && px.session_count() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    px.stop();
  }
  // The server got the real bytes; the recording has none of the secret.
  CHECK(server.received().at(0).find("the secret plan") != std::string::npos);
  const std::string text = slurp(rec);
  CHECK(text.find("secret") == std::string::npos);
  CHECK(text.find("MAIL FROM:<a@b>") != std::string::npos);
  CHECK(text.find("xxxxxxxx") != std::string::npos);
  // Still a valid recording: same commands, same content size, no error.
  const auto out = offline_results(rec);
  REQUIRE(out.size() == 1);
  CHECK(out[0].errors == 0);
  CHECK(out[0].commands == 5);
  std::filesystem::remove(rec);
}

TEST_CASE("a server that keeps its end-of-data reply back times out with PIPE-3.2-FLUSH-WHEN-IDLE, live and offline",
          "[proxy][timeout]") {
  proxy::ToyLmtpServer::Options so;
  so.silent_after_data = true;
  proxy::ToyLmtpServer server(so);
  const std::string rec = temp_path("timeout.jsonl");
  std::filesystem::remove(rec);
  std::vector<std::string> live;
  {
    RunningProxy px("127.0.0.1:" + std::to_string(server.port()), rec, "127.0.0.1:0", 1,
                    [](proxy::ProxyOptions& o) { o.reply_timeout = std::chrono::milliseconds(300); });
    asio::io_context io;
    std::string buf;
    tcp::socket s = open_to_354(io, px.port(), buf);
    asio::write(s, asio::buffer(std::string("hello\r\n.\r\n")));
    // The proxy gives up after 0.3 s and closes the connection.
    boost::system::error_code ec;
    char c;
    const auto start = std::chrono::steady_clock::now();
    s.read_some(asio::buffer(&c, 1), ec);
    CHECK(ec);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
    for (int i = 0; i < 200 && px.session_count() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    px.stop();
    for (const auto& [conn, f] : px.live) live.push_back(std::string(f.rule->id));
  }
  CHECK(std::find(live.begin(), live.end(), "PIPE-3.2-FLUSH-WHEN-IDLE") != live.end());
  bool offline = false;
  for (const auto& r : offline_rules(rec)) offline = offline || r.rfind("PIPE-3.2-FLUSH-WHEN-IDLE@", 0) == 0;
  CHECK(offline);
  std::filesystem::remove(rec);
}

TEST_CASE("the recording of an open connection reaches the file within the flush delay, in blocks", "[proxy][record]") {
  proxy::ToyLmtpServer server;
  const std::string rec = temp_path("flush.jsonl");
  std::filesystem::remove(rec);
  {
    RunningProxy px("127.0.0.1:" + std::to_string(server.port()), rec);
    asio::io_context io;
    std::string buf;
    tcp::socket s = open_to_354(io, px.port(), buf);
    // The connection stays open: what it did so far is on file within kRecordFlushDelay
    // (waited for up to 40 times that, for a loaded machine).
    bool seen = false;
    for (int i = 0; i < 80 && !seen; ++i) {
      std::this_thread::sleep_for(proxy::kRecordFlushDelay / 2);
      seen = slurp(rec).find("354 go ahead") != std::string::npos;
    }
    CHECK(seen);
    CHECK(px.session_count() == 0);
    // A message larger than a block: written by size, whole, with its end-of-data reply.
    std::string body;
    for (int i = 0; body.size() < 300 * 1024; ++i) body += "line " + std::to_string(i) + " of a long message\r\n";
    asio::write(s, asio::buffer(body + ".\r\n"));
    read_until(s, buf, "\r\n");
    asio::write(s, asio::buffer(std::string("QUIT\r\n")));
    read_until(s, buf, "\r\n");
    s.close();
    for (int i = 0; i < 200 && px.session_count() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    // Reported sessions are on file already (the flush comes before the report).
    REQUIRE(px.session_count() == 1);
    const auto results = offline_results(rec);
    REQUIRE(results.size() == 1);
    CHECK(results[0].errors == 0);
    CHECK(results[0].commands == 5);
    px.stop();
  }
  std::filesystem::remove(rec);
}

TEST_CASE("the recorder's brief mutex lets one thread in at a time, spinning or asleep", "[proxy][record]") {
  proxy::BriefMutex m;
  std::uint64_t count = 0;  // not atomic: only the mutex keeps the increments whole
  std::atomic<int> inside{0}, most{0};
  auto work = [&](int n, bool hold_long) {
    for (int i = 0; i < n; ++i) {
      std::lock_guard lock(m);
      const int now = ++inside;
      if (now > most) most = now;
      const std::uint64_t v = count;
      // Now and then a hold longer than the spin, so that waiters also go to sleep.
      if (hold_long && i % 500 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
      count = v + 1;
      --inside;
    }
  };
  std::thread a(work, 20000, true), b(work, 20000, false), c(work, 20000, false);
  a.join();
  b.join();
  c.join();
  CHECK(count == 60000);
  CHECK(most == 1);
  // Held, it turns another thread away (a second try from the holder is undefined).
  REQUIRE(m.try_lock());
  bool other = true;
  std::thread([&] { other = m.try_lock(); }).join();
  CHECK_FALSE(other);
  m.unlock();
  std::thread([&] {
    other = m.try_lock();
    if (other) m.unlock();
  }).join();
  CHECK(other);
}

TEST_CASE("a session reported nowhere leaves its recording to the next flush; a reported one is on file first",
          "[proxy][record]") {
  proxy::ToyLmtpServer server;
  const std::string rec = temp_path("reports.jsonl");
  std::filesystem::remove(rec);
  {
    // One thread: the flush timer cannot run while a connection ends, so what the file
    // holds when the session is reported is what the end itself wrote.
    std::atomic<bool> report{true};
    std::mutex seen_mu;
    std::vector<std::pair<std::string, bool>> on_file;  // conn, its end event on file when reported
    RunningProxy px(
        "127.0.0.1:" + std::to_string(server.port()), rec, "127.0.0.1:0", 1, {},
        [&](const SessionResult&) { return report.load(); },
        [&](const SessionResult& r) {
          const bool there = slurp(rec).find("\"conn\":\"" + r.conn + "\",\"ev\":\"end\"") != std::string::npos;
          std::lock_guard lock(seen_mu);
          on_file.emplace_back(r.conn, there);
        });
    auto one_session = [&](std::size_t want) {
      asio::io_context io;
      std::string buf;
      tcp::socket s = open_to_354(io, px.port(), buf);
      asio::write(s, asio::buffer(std::string("hi\r\n.\r\nQUIT\r\n")));
      read_until(s, buf, "221 2.0.0 bye\r\n");
      s.close();
      for (int i = 0; i < 200 && px.session_count() < want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      REQUIRE(px.session_count() == want);
    };
    one_session(1);
    report = false;
    one_session(2);
    {
      std::lock_guard lock(seen_mu);
      REQUIRE(on_file.size() == 2);
      CHECK(on_file[0].second);        // reported: on file before the report
      CHECK_FALSE(on_file[1].second);  // reported nowhere: still in the recorder's block
    }
    // ... and on file within the flush delay (waited for up to 40 times that).
    const std::string end2 = "\"conn\":\"" + on_file[1].first + "\",\"ev\":\"end\"";
    bool there = false;
    for (int i = 0; i < 80 && !there; ++i) {
      std::this_thread::sleep_for(proxy::kRecordFlushDelay / 2);
      there = slurp(rec).find(end2) != std::string::npos;
    }
    CHECK(there);
    px.stop();
  }
  const auto results = offline_results(rec);
  REQUIRE(results.size() == 2);
  for (const auto& r : results) CHECK(r.commands == 5);
  std::filesystem::remove(rec);
}

TEST_CASE("with a directory, each connection's recording is its own file, complete when its session is reported",
          "[proxy][record]") {
  proxy::ToyLmtpServer server;
  const std::string dir = temp_path("per-conn-recordings");
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  {
    RunningProxy px("127.0.0.1:" + std::to_string(server.port()), dir, "127.0.0.1:0", 2);
    asio::io_context io;
    std::string b1, b2;
    // Two connections open at once, ending one after the other.
    tcp::socket s1 = open_to_354(io, px.port(), b1);
    tcp::socket s2 = open_to_354(io, px.port(), b2);
    for (auto* s : {&s1, &s2}) {
      std::string& buf = s == &s1 ? b1 : b2;
      asio::write(*s, asio::buffer(std::string(s == &s1 ? "one\r\n.\r\nQUIT\r\n" : "two\r\nlines\r\n.\r\nQUIT\r\n")));
      read_until(*s, buf, "221 2.0.0 bye\r\n");
      s->close();
      const std::size_t want = s == &s1 ? 1 : 2;
      for (int i = 0; i < 200 && px.session_count() < want; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      REQUIRE(px.session_count() == want);
      const std::string conn = px.sessions.back().conn;
      // Reported means on file: its own file, every event of it, nothing of the other.
      const std::string file = dir + "/conn-" + conn + ".jsonl";
      const auto results = offline_results(file);
      REQUIRE(results.size() == 1);
      CHECK(results[0].conn == conn);
      CHECK(results[0].errors == 0);
      CHECK(results[0].commands == 5);
      const std::string text = slurp(file);
      CHECK(text.find(s == &s1 ? "one\\r\\n" : "two\\r\\nlines\\r\\n") != std::string::npos);
      CHECK(text.find(s == &s1 ? "two\\r\\n" : "one\\r\\n") == std::string::npos);
    }
    px.stop();
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("a single-file recording reserves its blocks ahead while open and gives back the rest when closed",
          "[proxy][record]") {
  const std::string rec = temp_path("reserve.jsonl");
  const std::string moved = rec + ".1";
  std::filesystem::remove(rec);
  std::filesystem::remove(moved);
  // Whether this file system reserves blocks at all (tmpfs and ext4 do, some cannot).
  bool can_reserve = false;
  {
    const int fd = ::open(rec.c_str(), O_WRONLY | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    can_reserve = ::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 32 << 20) == 0;  // as much as the recorder
    ::close(fd);
    std::filesystem::remove(rec);
  }
  auto allocated = [](const std::string& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return std::pair<std::uint64_t, std::uint64_t>(static_cast<std::uint64_t>(st.st_blocks) * 512,
                                                   static_cast<std::uint64_t>(st.st_size));
  };
  std::string err;
  auto r = proxy::Recorder::open(rec, err);
  REQUIRE(r);
  const std::string chunk(1000, 'x');
  auto fill = [&](int events) {
    for (int i = 0; i < events; ++i) r->data("1", i, Dir::client, chunk);
    r->flush();
  };
  fill(2000);  // about 2 MB
  auto [blocks, size] = allocated(rec);
  CHECK(size > 2000 * 1000);
  if (can_reserve) CHECK(blocks >= size + (16u << 20));  // reserved well ahead of the end
  else WARN("this file system cannot reserve blocks (fallocate): only the closed file is checked");
  // Log rotation: the file moved away gets its unused reservation back at the reopen.
  std::filesystem::rename(rec, moved);
  r->reopen();
  std::tie(blocks, size) = allocated(moved);
  CHECK(blocks < size + (1u << 20));
  fill(500);
  r->end("1");
  r.reset();  // closed: nothing reserved past the end any more
  std::tie(blocks, size) = allocated(rec);
  CHECK(size > 500 * 1000);
  CHECK(blocks < size + (1u << 20));
  // Every event is in the files, whole.
  const std::string a = slurp(moved), b = slurp(rec);
  CHECK(std::count(a.begin(), a.end(), '\n') == 2001);  // meta + 2000 events
  CHECK(std::count(b.begin(), b.end(), '\n') == 501);
  std::filesystem::remove(rec);
  std::filesystem::remove(moved);
}

TEST_CASE("a recording cut short by a rotation while written in blocks reserves its blocks once, not at every flush",
          "[proxy][record]") {
  const std::string rec = temp_path("cut.jsonl");
  std::filesystem::remove(rec);
  // The recorder appends to a file of 40 MiB (sparse), more than one reservation ahead.
  {
    const int fd = ::open(rec.c_str(), O_WRONLY | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, 40 << 20) == 0);
    ::close(fd);
  }
  std::string err;
  auto r = proxy::Recorder::open(rec, err);
  REQUIRE(r);
  if (!r->direct()) WARN("this file system takes no O_DIRECT writes: only the page-cache path is checked");
  // A copytruncate rotation, then small flushes (appends through the page cache, each
  // less than a page): the file is far shorter than where the recorder's blocks would go.
  REQUIRE(::truncate(rec.c_str(), 0) == 0);
  std::string expect;
  for (Time t = 1; t <= 60; ++t) {
    const std::string bytes(200, static_cast<char>('a' + t % 26));
    r->data("1", t, Dir::client, bytes);
    expect += jsonl_data(t, "1", Dir::client, bytes);
    r->flush();
  }
  CHECK(r->reservations() <= 2);  // at the open's first flush and after the rotation
  CHECK(r->error().empty());
  r.reset();
  // Every event after the rotation, at the file's new end (no hole where it ended before);
  // the recording's first line may have gone with the rotation.
  const std::string got = slurp(rec);
  CHECK(got.find('\0') == std::string::npos);
  REQUIRE(got.size() >= expect.size());
  CHECK(got.substr(got.size() - expect.size()) == expect);
  CHECK(got.size() <= expect.size() + jsonl_meta(0, LOCKSTEP_VERSION).size());
  std::filesystem::remove(rec);
}

TEST_CASE("a single-file recording holds every event exactly, written past the page cache in blocks",
          "[proxy][record]") {
  const std::string rec = temp_path("direct.jsonl");
  std::filesystem::remove(rec);
  // An existing file with a partial last page: the recorder appends after it.
  const std::string before = "{\"t\":1,\"ev\":\"end\",\"conn\":\"0\"}\n" + std::string(5000, ' ') + "\n";
  {
    std::ofstream f(rec, std::ios::binary);
    f << before;
  }
  std::string err;
  auto r = proxy::Recorder::open(rec, err);
  REQUIRE(r);
  if (!r->direct()) WARN("this file system takes no O_DIRECT writes: the page-cache path is checked");
  std::string expect = before + jsonl_meta(0, LOCKSTEP_VERSION);
  std::mt19937 rng(7);
  Time t = 0;
  auto event = [&](std::size_t size) {
    std::string bytes(size, 'x');
    for (auto& c : bytes) c = "ab\r\n.\"\\\x01\xff"[rng() % 9];
    const Dir d = (++t % 2) ? Dir::client : Dir::server;
    r->data("1", t, d, bytes);
    expect += jsonl_data(t, "1", d, bytes);
  };
  // Small and large events, a block's worth and more between the flushes (whole flushes
  // of less than a block go through the page cache, larger ones directly).
  for (int round = 0; round < 12; ++round) {
    const int n = static_cast<int>(rng() % 300);
    for (int i = 0; i < n; ++i) event(rng() % 2 ? rng() % 200 : rng() % 65536);
    if (round % 3 == 0) {
      r->write("1", jsonl_end(++t, "1"));
      expect += jsonl_end(t, "1");
    }
    r->flush();
    CHECK(slurp(rec) == expect);  // whole after every flush, no page of zeros
  }
  CHECK(r->error().empty());
  // A copytruncate rotation: the recorder follows the file to its new length.
  REQUIRE(::truncate(rec.c_str(), 0) == 0);
  expect.clear();
  for (int i = 0; i < 100; ++i) event(rng() % 40000);
  r->flush();
  if (r->direct()) {
    // Written past the page cache: of the megabytes just written, only pages of the
    // small flushes and the last partial ones are cached (read before slurp caches them).
    const int fd = ::open(rec.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    const auto size = static_cast<std::size_t>(::lseek(fd, 0, SEEK_END));
    REQUIRE(size > (2u << 20));
    void* const map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    REQUIRE(map != MAP_FAILED);
    std::vector<unsigned char> in((size + 4095) / 4096);
    REQUIRE(::mincore(map, size, in.data()) == 0);
    const auto cached = std::count_if(in.begin(), in.end(), [](unsigned char c) { return c & 1; });
    CHECK(cached * 4 < static_cast<std::ptrdiff_t>(in.size()));
    ::munmap(map, size);
    ::close(fd);
  }
  CHECK(slurp(rec) == expect);
  // Rotated again, and a small flush first (an append, which checks nothing): the next
  // blocks still land after it, not where the file ended before.
  REQUIRE(::truncate(rec.c_str(), 0) == 0);
  expect.clear();
  event(100);
  r->flush();
  CHECK(slurp(rec) == expect);
  for (int i = 0; i < 100; ++i) event(rng() % 40000);
  r->flush();
  CHECK(slurp(rec) == expect);
  // And once more, to an unaligned length, with events still waiting in the buffer.
  expect.clear();
  for (int i = 0; i < 10; ++i) event(300);
  const std::string waiting = expect;
  REQUIRE(::truncate(rec.c_str(), 1000) == 0);
  const std::string kept = slurp(rec);
  REQUIRE(kept.size() == 1000);
  expect.clear();
  for (int i = 0; i < 200; ++i) event(rng() % 20000);
  r.reset();  // closing writes the rest
  CHECK(slurp(rec) == kept + waiting + expect);
  std::filesystem::remove(rec);
}
