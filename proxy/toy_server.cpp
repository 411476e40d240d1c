#include "proxy/toy_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace lockstep::proxy {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
asio::awaitable<void> serve(tcp::socket s, ToyLmtpServer::Options opts, std::mutex& mu, std::vector<std::string>& log,
                            std::size_t slot) {
  auto tup = asio::as_tuple(asio::use_awaitable);
  auto send = [&](std::string text) -> asio::awaitable<bool> {
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(text), tup);
    co_return !ec;
  };
  if (!co_await send("220 fake.lab.test LMTP ready\r\n")) co_return;
  std::string buf;
  std::size_t accepted = 0;
  unsigned message = 0;
  bool in_data = false;
  for (;;) {
    auto [ec, n] = co_await asio::async_read_until(s, asio::dynamic_buffer(buf), "\r\n", tup);
    if (ec) co_return;
    std::string line = buf.substr(0, n - 2);
    {
      std::lock_guard lock(mu);
      log[slot] += buf.substr(0, n);
    }
    buf.erase(0, n);
    std::string reply;
    if (in_data) {
      if (line != ".") continue;
      in_data = false;
      ++message;
      if (opts.silent_after_data) continue;
      if (!opts.stray.empty() && (opts.stray_message == 0 || opts.stray_message == message)) reply += opts.stray + "\r\n";
      for (std::size_t i = 0; i < accepted; ++i) reply += "250 2.0.0 ok\r\n";
      accepted = 0;
    } else {
      std::string verb = line.substr(0, 4);
      for (char& c : verb) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (verb == "LHLO") reply = "250-fake.lab.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250 SIZE\r\n";
      else if (verb == "MAIL") { reply = "250 2.1.0 ok\r\n"; accepted = 0; }
      else if (verb == "RCPT") {
        if (line.find("nobody@") != std::string::npos) reply = "550 5.1.1 unknown user\r\n";
        else { reply = "250 2.1.5 ok\r\n"; ++accepted; }
      } else if (verb == "DATA") {
        if (accepted == 0) reply = "503 5.5.1 no valid recipients\r\n";
        else { reply = "354 go ahead\r\n"; in_data = true; }
      } else if (verb == "RSET" || verb == "NOOP") reply = "250 2.0.0 ok\r\n";
      else if (verb == "QUIT") {
        co_await send("221 2.0.0 bye\r\n");
        co_return;
      } else reply = "500 5.5.1 unknown command\r\n";
    }
    if (!co_await send(reply)) co_return;
  }
}
}  // namespace

ToyLmtpServer::ToyLmtpServer(Options o) : opts_(std::move(o)), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(
      io_,
      [this]() -> asio::awaitable<void> {
        for (;;) {
          auto [ec, s] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
          if (ec) co_return;
          std::size_t slot;
          {
            std::lock_guard lock(mu_);
            slot = received_.size();
            received_.emplace_back();
          }
          ++sessions_;
          asio::co_spawn(io_, serve(std::move(s), opts_, mu_, received_, slot), asio::detached);
        }
      },
      asio::detached);
  thread_ = std::thread([this] { io_.run(); });
}

ToyLmtpServer::~ToyLmtpServer() {
  io_.stop();
  thread_.join();
}

std::vector<std::string> ToyLmtpServer::received() const {
  std::lock_guard lock(mu_);
  return received_;
}

}  // namespace lockstep::proxy
