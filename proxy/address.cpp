#include "proxy/address.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <fmt/format.h>

namespace lockstep::proxy {

std::optional<Address> parse_address(const std::string& text, std::string& error) {
  Address a;
  a.text = text;
  if (text.rfind("unix:", 0) == 0) {
    a.unix_socket = true;
    a.host = text.substr(5);
    if (a.host.empty()) {
      error = fmt::format("'{}': unix: needs a socket path", text);
      return std::nullopt;
    }
    if (a.host.size() >= 108) {
      error = fmt::format("'{}': a unix socket path has at most 107 characters", text);
      return std::nullopt;
    }
    return a;
  }
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    const auto rb = text.find(']');
    if (rb == std::string::npos || rb + 1 >= text.size() || text[rb + 1] != ':') {
      error = fmt::format("'{}': write an IPv6 address as [addr]:port", text);
      return std::nullopt;
    }
    host = text.substr(1, rb - 1);
    port = text.substr(rb + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) {
      error = fmt::format("'{}': expected host:port, [v6]:port or unix:/path", text);
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned long p = 0;
  bool ok = !port.empty() && port.size() <= 5;
  for (char c : port) {
    if (c < '0' || c > '9') ok = false;
    else p = p * 10 + static_cast<unsigned long>(c - '0');
  }
  if (!ok || p > 65535 || host.empty()) {
    error = fmt::format("'{}': the port must be a number from 0 to 65535 and the host not empty", text);
    return std::nullopt;
  }
  a.host = host;
  a.port = static_cast<unsigned short>(p);
  return a;
}

std::optional<boost::asio::generic::stream_protocol::endpoint> resolve(boost::asio::io_context& io, const Address& a,
                                                                        std::string& error) {
  using boost::asio::generic::stream_protocol;
  if (a.unix_socket) return stream_protocol::endpoint(boost::asio::local::stream_protocol::endpoint(a.host));
  boost::system::error_code ec;
  boost::asio::ip::tcp::resolver r(io);
  auto results = r.resolve(a.host, std::to_string(a.port), boost::asio::ip::tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    error = fmt::format("cannot resolve {}: {}", a.text, ec ? ec.message() : "no address");
    return std::nullopt;
  }
  return stream_protocol::endpoint(results.begin()->endpoint());
}

}  // namespace lockstep::proxy
