#pragma once
// A small LMTP server for the demo and the tests (Asio coroutines, loopback): greeting,
// LHLO with the usual extensions, 550 for the user "nobody", one reply per accepted
// recipient after the end of data, 221 to QUIT. `stray` is written before the
// per-recipient replies (of every message, or of message `stray_message` of each
// connection, counting from 1), to reproduce a server that sends one reply too many —
// Cyrus's "350 lockers".
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace lockstep::proxy {

class ToyLmtpServer {
 public:
  struct Options {
    std::string stray;           // e.g. "350 lockers"; empty: none
    unsigned stray_message = 0;  // 0: every message
    bool silent_after_data = false;  // never answer the end of data (a hung delivery)
  };
  ToyLmtpServer() : ToyLmtpServer(Options{}) {}
  explicit ToyLmtpServer(Options o);
  ~ToyLmtpServer();
  unsigned short port() const { return port_; }
  // Every byte the server received, per connection, in order.
  std::vector<std::string> received() const;
  std::uint64_t sessions() const { return sessions_.load(); }

 private:
  Options opts_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<std::string> received_;
  std::atomic<std::uint64_t> sessions_{0};
};

}  // namespace lockstep::proxy
