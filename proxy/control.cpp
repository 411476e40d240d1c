#include "proxy/control.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>

namespace lockstep::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;


struct ControlServer::Impl : std::enable_shared_from_this<ControlServer::Impl> {
  Impl(asio::io_context& ctx, Proxy& p, std::string t)
      : io(ctx), strand(asio::make_strand(ctx)), acceptor(strand), proxy(p), token(std::move(t)) {}
  asio::io_context& io;
  asio::strand<asio::io_context::executor_type> strand;
  asio::ip::tcp::acceptor acceptor;
  Proxy& proxy;
  std::string token;
  std::atomic<bool> stopped{false};
  std::mutex mu;
  std::set<std::shared_ptr<beast::tcp_stream>> open;  // closed by stop(), so the event loop can end

  void accept() {
    acceptor.async_accept(asio::make_strand(io),
                          [self = shared_from_this()](boost::system::error_code ec, asio::ip::tcp::socket s) {
                            if (ec || self->stopped) return;
                            auto stream = std::make_shared<beast::tcp_stream>(std::move(s));
                            {
                              std::lock_guard lock(self->mu);
                              self->open.insert(stream);
                            }
                            asio::co_spawn(stream->get_executor(), self->serve(stream), asio::detached);
                            self->accept();
                          });
  }

  asio::awaitable<void> serve(std::shared_ptr<beast::tcp_stream> sp) {
    auto self = shared_from_this();
    beast::tcp_stream& stream = *sp;
    beast::flat_buffer buf;
    for (int requests = 0; requests < 1000 && !stopped; ++requests) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(64 * 1024);
      stream.expires_after(std::chrono::seconds(30));
      auto [ec, n] = co_await http::async_read(stream, buf, parser, asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      const auto& req = parser.get();
      ControlRequest cr{std::string(req.method_string()), std::string(req.target()), req.body(),
                        std::string(req[http::field::authorization])};
      ControlResponse res = handle_control(proxy, cr, token);
      http::response<http::string_body> out{static_cast<http::status>(res.status), req.version()};
      out.set(http::field::server, "lockstep");
      if (!res.body.empty()) out.set(http::field::content_type, "application/json");
      out.body() = std::move(res.body);
      out.keep_alive(req.keep_alive());
      out.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream, out, asio::as_tuple(asio::use_awaitable));
      if (wec || !req.keep_alive()) break;
    }
    boost::system::error_code ig;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ig);
    std::lock_guard lock(mu);
    open.erase(sp);
  }
};

void listen_http(asio::ip::tcp::acceptor& acceptor, asio::io_context& io, const std::string& address, bool has_token,
                 std::string_view flag, std::string_view token_flag) {
  std::string err;
  auto a = parse_address(address, err);
  if (!a) throw std::runtime_error(fmt::format("{} {}", flag, err));
  if (a->unix_socket) throw std::runtime_error(fmt::format("{}: it listens on TCP (host:port)", flag));
  boost::system::error_code ec;
  auto addrs = asio::ip::tcp::resolver(io).resolve(a->host, std::to_string(a->port), ec);
  if (ec || addrs.empty()) throw std::runtime_error(fmt::format("{} {}: {}", flag, address, ec ? ec.message() : "no address"));
  const auto ep = addrs.begin()->endpoint();
  if (!ep.address().is_loopback() && !has_token)
    throw std::runtime_error(fmt::format("{} {}: not a loopback address, so {} is required", flag, address, token_flag));
  acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(fmt::format("{}: cannot listen on {}: {}", flag, address, ec.message()));
}

std::string tcp_address(const asio::ip::tcp::endpoint& ep) {
  return ep.address().is_v6() ? fmt::format("[{}]:{}", ep.address().to_string(), ep.port())
                              : fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

ControlServer::ControlServer(asio::io_context& io, Proxy& proxy, const std::string& address, std::string token) {
  const bool has_token = !token.empty();
  impl_ = std::make_shared<Impl>(io, proxy, std::move(token));
  listen_http(impl_->acceptor, io, address, has_token, "--control", "--control-token");
  impl_->accept();
}

ControlServer::~ControlServer() { stop(); }

std::string ControlServer::local_address() const { return tcp_address(impl_->acceptor.local_endpoint()); }

void ControlServer::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  asio::post(impl_->strand, [i = impl_] {
    boost::system::error_code ig;
    i->acceptor.close(ig);
  });
  std::lock_guard lock(impl_->mu);
  for (const auto& s : impl_->open)
    asio::post(s->get_executor(), [s] {
      boost::system::error_code ig;
      s->socket().close(ig);
    });
}

}  // namespace lockstep::proxy
