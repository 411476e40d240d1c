#pragma once
// Where the proxy listens and connects: "host:port", "[v6]:port" or "unix:/path".
#include <optional>
#include <string>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>

namespace lockstep::proxy {

struct Address {
  std::string text;       // as given
  bool unix_socket = false;
  std::string host;       // TCP: the host (name or literal), unix: the path
  unsigned short port = 0;
};

// Parses an address; nullopt with `error` set when it is malformed. Port 0 is accepted
// (listen on any free port); the proxy refuses it for the upstream.
std::optional<Address> parse_address(const std::string& text, std::string& error);

// Resolves a TCP address (blocking) or builds a unix endpoint.
std::optional<boost::asio::generic::stream_protocol::endpoint> resolve(boost::asio::io_context& io, const Address& a,
                                                                        std::string& error);

}  // namespace lockstep::proxy
