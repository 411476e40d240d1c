#pragma once
// The proxy test harness: a proxy on its own thread with what it reports collected,
// and blocking LMTP client helpers.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/resource.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <atomic>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>
#include <random>
#include <thread>

#include "engine/checker.hpp"
#include "proxy/relay.hpp"
#include "proxy/toy_server.hpp"


using namespace lockstep;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace harness {
// A proxy on its own thread, with everything it reports collected.
struct RunningProxy {
  // `reports` becomes the hooks' (unset: every session is reported); `on_session` sees
  // each session as it is reported, on the connection's thread.
  explicit RunningProxy(const std::string& upstream, const std::string& record = {},
                        const std::string& listen = "127.0.0.1:0", unsigned threads = 1,
                        const std::function<void(proxy::ProxyOptions&)>& tweak = {},
                        std::function<bool(const SessionResult&)> reports = {},
                        std::function<void(const SessionResult&)> on_session = {}) {
    std::string err;
    proxy::ProxyOptions o;
    o.listen = proxy::parse_address(listen, err).value();
    o.upstream = proxy::parse_address(upstream, err).value();
    o.record = record;
    o.threads = threads;
    o.connect_timeout = std::chrono::seconds(5);
    o.drain_timeout = std::chrono::milliseconds(200);
    if (tweak) tweak(o);
    proxy::ProxyHooks h;
    h.finding = [this](const std::string& conn, const Finding& f) {
      std::lock_guard lock(mu);
      live.emplace_back(conn, f);
    };
    h.reports = std::move(reports);
    h.session = [this, on_session = std::move(on_session)](SessionResult&& r) {
      if (on_session) on_session(r);
      std::lock_guard lock(mu);
      sessions.push_back(std::move(r));
      session_threads.push_back(std::this_thread::get_id());  // the connection's thread
    };
    p = std::make_unique<proxy::Proxy>(o, h);
    p->start();
    address = p->local_address();
    thread = std::thread([this] { p->run(); });
  }
  ~RunningProxy() { stop(); }
  void stop() {
    if (!thread.joinable()) return;
    p->stop();
    thread.join();
  }
  unsigned short port() const { return static_cast<unsigned short>(std::stoi(address.substr(address.rfind(':') + 1))); }
  std::size_t session_count() {
    std::lock_guard lock(mu);
    return sessions.size();
  }

  std::unique_ptr<proxy::Proxy> p;
  std::string address;
  std::thread thread;
  std::mutex mu;
  std::vector<std::pair<std::string, Finding>> live;
  std::vector<SessionResult> sessions;
  std::vector<std::thread::id> session_threads;
};

// A raw TCP server on its own thread: each accepted connection goes to `serve`, until the
// server is destroyed (however the test ends). A connection `serve` leaves open is held,
// silent, until then.
struct RawServer {
  explicit RawServer(std::function<void(tcp::socket&)> serve)
      : acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)), thread([this, serve = std::move(serve)] {
          while (!over) {
            pollfd pfd{acc.native_handle(), POLLIN, 0};
            if (::poll(&pfd, 1, 20) <= 0) continue;
            boost::system::error_code ec;
            tcp::socket s(io);
            acc.accept(s, ec);
            if (ec) continue;
            serve(s);
            if (s.is_open()) kept.push_back(std::move(s));
          }
        }) {}
  ~RawServer() {
    over = true;
    thread.join();
  }
  std::string upstream() const { return "127.0.0.1:" + std::to_string(acc.local_endpoint().port()); }

  asio::io_context io;
  tcp::acceptor acc;
  std::vector<tcp::socket> kept;  // used by the server's thread alone
  std::atomic<bool> over{false};
  std::thread thread;
};

inline std::string read_until(tcp::socket& s, std::string& buf, const std::string& end) {
  asio::read_until(s, asio::dynamic_buffer(buf), end);
  const auto at = buf.find(end) + end.size();
  std::string out = buf.substr(0, at);
  buf.erase(0, at);
  return out;
}

// Writes `data` in random pieces.
inline void write_split(tcp::socket& s, const std::string& data, std::mt19937& rng) {
  std::size_t i = 0;
  while (i < data.size()) {
    const std::size_t n = std::min<std::size_t>(1 + rng() % 7, data.size() - i);
    asio::write(s, asio::buffer(data.data() + i, n));
    i += n;
  }
}

// Connects through the proxy and goes as far as the 354 of one transaction to
// alice@lab.test; `buf` keeps what was read beyond.
inline tcp::socket open_to_354(asio::io_context& io, unsigned short port, std::string& buf) {
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  read_until(s, buf, "\r\n");
  asio::write(s, asio::buffer(std::string("LHLO c\r\n")));
  read_until(s, buf, "250 SIZE\r\n");
  asio::write(s, asio::buffer(std::string("MAIL FROM:<a@b>\r\nRCPT TO:<alice@lab.test>\r\nDATA\r\n")));
  read_until(s, buf, "354 go ahead\r\n");
  return s;
}

inline std::vector<std::string> offline_rules(const std::string& recording) {
  std::string err;
  auto src = open_source(recording, "auto", err);
  REQUIRE(src);
  std::vector<std::string> rules;
  Checker c(src->info(), recording, [](SessionResult&&) {});
  c.on_finding([&](const std::string&, const Finding& f) { rules.push_back(std::string(f.rule->id) + "@" + std::to_string(f.offset)); });
  SourceEvent ev;
  while (src->next(ev)) c.on(ev);
  c.finish();
  return rules;
}

// The sessions `check` makes of a recording.
inline std::vector<SessionResult> offline_results(const std::string& recording) {
  std::string err;
  auto src = open_source(recording, "auto", err);
  REQUIRE(src);
  std::vector<SessionResult> out;
  Checker c(src->info(), recording, [&](SessionResult&& r) { out.push_back(std::move(r)); });
  SourceEvent ev;
  while (src->next(ev)) c.on(ev);
  c.finish();
  return out;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("lockstep-proxy-test-" + std::to_string(::getpid()) + "-" + name)).string();
}

// One client session through the proxy; returns every byte the client received.
inline std::string client_session(unsigned short port, std::mt19937& rng, std::string& sent) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  std::string buf, got;
  got += read_until(s, buf, "\r\n");
  auto say = [&](const std::string& text, const std::string& until) {
    sent += text;
    write_split(s, text, rng);
    got += read_until(s, buf, until);
  };
  say("LHLO client.test\r\n", "250 SIZE\r\n");
  say("MAIL FROM:<a@example.org>\r\nRCPT TO:<alice@lab.test>\r\nRCPT TO:<nobody@lab.test>\r\nRCPT TO:<bob@lab.test>\r\nDATA\r\n",
      "354 go ahead\r\n");
  say("Subject: test\r\n\r\n..a stuffed line\r\nhello\r\n.\r\n", "250 2.0.0 ok\r\n250 2.0.0 ok\r\n");
  say("QUIT\r\n", "221 2.0.0 bye\r\n");
  boost::system::error_code ec;
  char c;
  s.read_some(asio::buffer(&c, 1), ec);  // the server closes after 221: EOF passed on
  CHECK(ec == asio::error::eof);
  return got;
}
}  // namespace harness
using namespace harness;
