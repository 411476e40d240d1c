#pragma once
// The proxy's control API: HTTP with JSON in and out, shaped like toxiproxy's where it
// fits. GET /faults, POST /faults {"name": ..., "spec": ...}, GET|DELETE /faults/NAME,
// GET /sessions, GET /presets. Changes apply to new connections. Loopback by default; a
// bearer token is required when it listens anywhere else.
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/object.hpp>

#include "proxy/relay.hpp"

namespace lockstep::proxy {

struct ControlRequest {
  std::string method;         // "GET", "POST", "DELETE", ...
  std::string target;         // "/faults/cyrus-lockers"
  std::string body;
  std::string authorization;  // the Authorization header, if any
};
struct ControlResponse {
  unsigned status = 200;
  std::string body;           // JSON (empty for 204)
};

// A JSON error answer; the message is reduced to printable ASCII (it may quote the request).
ControlResponse control_error(unsigned status, std::string msg);
// Compares secrets without leaking the length of the common prefix through timing.
bool same_token(std::string_view a, std::string_view b);

// The HTTP listeners' set-up (the control API, the web view): opens `acceptor` on
// `address` (host:port). Throws std::runtime_error naming `flag` ("--ui") for a bad
// address, a busy port, or a non-loopback address without a token (`token_flag`).
void listen_http(boost::asio::ip::tcp::acceptor& acceptor, boost::asio::io_context& io, const std::string& address,
                 bool has_token, std::string_view flag, std::string_view token_flag);
// "127.0.0.1:8025" or "[::1]:8025".
std::string tcp_address(const boost::asio::ip::tcp::endpoint& ep);

// An open connection as the API shows it.
boost::json::object session_info_json(const SessionInfo& s);

// The API itself, without sockets: what `req` gets from `proxy`. `token` empty: none needed.
ControlResponse handle_control(Proxy& proxy, const ControlRequest& req, const std::string& token);

class ControlServer {
 public:
  // Listens on `address` (host:port; port 0 picks one). Throws std::runtime_error with a
  // clear message: bad address, busy port, or no token for a non-loopback address.
  ControlServer(boost::asio::io_context& io, Proxy& proxy, const std::string& address, std::string token);
  ~ControlServer();
  std::string local_address() const;
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace lockstep::proxy
