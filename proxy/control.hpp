#pragma once
// The proxy's control API: HTTP with JSON in and out, shaped like toxiproxy's where it
// fits. GET /faults, POST /faults {"name": ..., "spec": ...}, GET|DELETE /faults/NAME,
// GET /sessions, GET /presets. Changes apply to new connections. Loopback by default; a
// bearer token is required when it listens anywhere else.
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
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
