#include "web/ui.hpp"

#include <cstdio>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>

#include "engine/linereader.hpp"
#include "engine/source.hpp"
#include "proxy/control.hpp"
#include "scenarios/convert.hpp"
#include "web/view.hpp"

namespace lockstep::web {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using asio::awaitable;
using asio::use_awaitable;
using namespace asio::experimental::awaitable_operators;
constexpr auto tuple_awaitable = asio::as_tuple(use_awaitable);

namespace {
constexpr std::size_t kMaxListed = 200;  // sessions in the list

// "127.0.0.1:8025" / "[::1]:8025" / "localhost" -> the host part.
std::string host_of(std::string_view hostport) {
  if (!hostport.empty() && hostport.front() == '[') {
    const auto end = hostport.find(']');
    return std::string(hostport.substr(1, end == std::string_view::npos ? std::string_view::npos : end - 1));
  }
  const auto colon = hostport.rfind(':');
  return std::string(hostport.substr(0, colon));
}
bool loopback_host(std::string_view hostport) {
  const std::string h = host_of(hostport);
  return h == "localhost" || h == "::1" || h.rfind("127.", 0) == 0;
}
std::string query_param(std::string_view target, std::string_view key) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view kv = rest.substr(0, amp);
    if (kv.size() > key.size() && kv.substr(0, key.size()) == key && kv[key.size()] == '=')
      return std::string(kv.substr(key.size() + 1));
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return {};
}
struct Response {
  Response(unsigned s, std::string b, std::string t = "application/json") : status(s), body(std::move(b)), type(std::move(t)) {}
  unsigned status = 200;
  std::string body, type;
  std::string filename;  // a download
  bool truncated = false;  // a recording cut at kTapeCap
};
Response json_response(unsigned status, const json::value& v) { return {status, json::serialize(v) + "\n"}; }
Response error_response(unsigned status, std::string msg) {
  proxy::ControlResponse r = proxy::control_error(status, std::move(msg));
  return {r.status, std::move(r.body)};
}

// The client side of a recording as a scenario (`lockstep run` replays it).
std::string scenario_of(std::string tape, const std::string& conn, std::string& error) {
  if (tape.empty()) {
    error = "nothing recorded";
    return {};
  }
  std::FILE* f = fmemopen(tape.data(), tape.size(), "r");
  if (!f) {
    error = "cannot read the recording";
    return {};
  }
  auto src = make_jsonl_source(std::make_unique<LineReader>(f));
  auto sessions = scenarios::recording_to_scenarios(*src, "web", conn);
  std::fclose(f);
  if (sessions.empty()) {
    error = "the recording holds no session";
    return {};
  }
  return sessions.front().yaml;
}
}  // namespace

struct UiServer::Impl : std::enable_shared_from_this<UiServer::Impl> {
  Impl(asio::io_context& ctx, proxy::Proxy& p, Store& s, UiOptions o)
      : io(ctx), strand(asio::make_strand(ctx)), acceptor(strand), proxy(p), store(s), opts(std::move(o)) {}
  asio::io_context& io;
  asio::strand<asio::io_context::executor_type> strand;
  asio::ip::tcp::acceptor acceptor;
  proxy::Proxy& proxy;
  Store& store;
  UiOptions opts;
  std::atomic<bool> stopped{false};
  std::mutex mu;
  std::uint64_t next_closer = 0;
  std::map<std::uint64_t, std::function<void()>> closers;  // open connections, closed by stop()

  std::uint64_t track(std::function<void()> close) {
    std::lock_guard lock(mu);
    closers[++next_closer] = std::move(close);
    return next_closer;
  }
  void untrack(std::uint64_t id) {
    std::lock_guard lock(mu);
    closers.erase(id);
  }

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [self = shared_from_this()](boost::system::error_code ec, asio::ip::tcp::socket s) {
      if (ec || self->stopped) return;
      auto stream = std::make_shared<beast::tcp_stream>(std::move(s));
      asio::co_spawn(stream->get_executor(), self->serve(stream), asio::detached);
      self->accept();
    });
  }

  // Whether a request may see or change anything; `why` says why not.
  template <class Req>
  bool allowed(const Req& req, unsigned& status, std::string& why) const {
    const std::string host(req[http::field::host]);
    const std::string origin(req[http::field::origin]);
    if (!opts.token.empty()) {
      const std::string auth(req[http::field::authorization]);
      const bool ok = proxy::same_token(auth, "Bearer " + opts.token) || proxy::same_token(query_param(req.target(), "token"), opts.token);
      if (!ok) {
        status = 401;
        why = "a token is required: Authorization: Bearer TOKEN, or ?token=TOKEN";
        return false;
      }
    } else if (!loopback_host(host)) {
      status = 403;
      why = "without a token the web view answers only requests for a loopback host";
      return false;
    }
    if (!origin.empty() && origin != "null") {
      const auto p = origin.find("://");
      if (p == std::string::npos || origin.substr(p + 3) != host) {
        status = 403;
        why = "a request from another site's page is refused";
        return false;
      }
    }
    return true;
  }

  json::array session_list() {
    json::array a;
    std::set<std::string> live;
    for (const auto& s : proxy.sessions()) {
      if (a.size() >= kMaxListed) break;
      json::object o = proxy::session_info_json(s);
      o["open"] = true;
      live.insert(s.conn);
      a.push_back(std::move(o));
    }
    for (const auto& e : store.list()) {
      if (a.size() >= kMaxListed) break;
      if (live.count(e->result.conn)) continue;
      a.push_back(summary_json(e->result));
    }
    return a;
  }

  // A session in full: an open one from its connection's strand, else the store's.
  awaitable<std::optional<json::object>> session_view(std::string conn) {
    if (auto snap = co_await proxy.snapshot(conn)) {
      json::object o = session_json(snap->result, opts.redact);
      if (auto s = proxy.session(conn)) {
        const json::object info = proxy::session_info_json(*s);
        for (const char* k : {"hold", "held_label", "held_reply", "interceptable", "state", "commands", "replies"})
          if (const auto* v = info.if_contains(k)) o[k] = *v;
      }
      o["open"] = true;
      co_return o;
    }
    if (auto e = store.get(conn)) co_return session_json(e->result, opts.redact);
    co_return std::nullopt;
  }

  awaitable<std::optional<std::pair<std::string, bool>>> tape_of(const std::string& conn) {
    if (auto snap = co_await proxy.snapshot(conn)) co_return std::make_pair(std::move(snap->tape), snap->tape_truncated);
    if (auto e = store.get(conn)) co_return std::make_pair(e->tape, e->tape_truncated);
    co_return std::nullopt;
  }

  awaitable<Response> handle(const http::request<http::string_body>& req) {
    const std::string target(req.target());
    std::string path = target.substr(0, target.find('?'));
    const bool get = req.method() == http::verb::get;
    if (get && (path == "/" || path == "/index.html" || path == "/app.js" || path == "/app.css")) {
      const Asset a = asset(path == "/" ? "index.html" : path.substr(1));
      co_return Response{200, std::string(a.content), std::string(a.type)};
    }
    if (path.rfind("/api/", 0) != 0 && path != "/api") co_return error_response(404, fmt::format("no page {}", path.substr(0, 200)));
    unsigned status = 0;
    std::string why;
    if (!allowed(req, status, why)) co_return error_response(status, why);
    path = path.substr(4);
    if (path.empty()) path = "/";
    if (path == "/sessions" && get) co_return json_response(200, json::object{{"sessions", session_list()}});
    if (path.rfind("/sessions/", 0) == 0 && get) {
      const std::string rest = path.substr(10);
      const auto slash = rest.find('/');
      const std::string conn = rest.substr(0, slash);
      const std::string what = slash == std::string::npos ? "" : rest.substr(slash + 1);
      if (what == "view") {
        auto v = co_await session_view(conn);
        if (!v) co_return error_response(404, fmt::format("no session '{}'", conn.substr(0, 100)));
        co_return json_response(200, *v);
      }
      if (what == "recording" || what == "scenario") {
        auto t = co_await tape_of(conn);
        if (!t) co_return error_response(404, fmt::format("no session '{}'", conn.substr(0, 100)));
        if (what == "recording") {
          Response r{200, std::move(t->first), "application/x-ndjson"};
          r.filename = fmt::format("lockstep-conn-{}.jsonl", conn);
          r.truncated = t->second;
          co_return r;
        }
        std::string err;
        std::string yaml = scenario_of(std::move(t->first), conn, err);
        if (yaml.empty()) co_return error_response(409, fmt::format("session '{}': {}", conn.substr(0, 100), err));
        Response r{200, std::move(yaml), "application/yaml"};
        r.filename = fmt::format("lockstep-conn-{}.yaml", conn);
        co_return r;
      }
    }
    // The rest is the control API (the token was checked above).
    proxy::ControlRequest cr{std::string(req.method_string()), path + (target.find('?') == std::string::npos ? "" : target.substr(target.find('?'))),
                             req.body(), ""};
    proxy::ControlResponse res = proxy::handle_control(proxy, cr, "");
    std::string type = res.body.empty() ? "" : "application/json";
    co_return Response{res.status, std::move(res.body), std::move(type)};
  }

  awaitable<void> serve(std::shared_ptr<beast::tcp_stream> sp) {
    auto self = shared_from_this();
    const auto me = track([sp] {
      asio::post(sp->get_executor(), [sp] {
        boost::system::error_code ig;
        sp->socket().close(ig);
      });
    });
    beast::flat_buffer buf;
    for (int requests = 0; requests < 10000 && !stopped; ++requests) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(256 * 1024);
      parser.header_limit(16 * 1024);
      sp->expires_after(std::chrono::seconds(60));
      auto [ec, n] = co_await http::async_read(*sp, buf, parser, tuple_awaitable);
      if (ec) break;
      http::request<http::string_body> req = parser.release();
      if (websocket::is_upgrade(req)) {
        untrack(me);
        co_await websocket_session(std::move(sp), std::move(req));
        co_return;
      }
      Response res = co_await handle(req);
      http::response<http::string_body> out{static_cast<http::status>(res.status), req.version()};
      out.set(http::field::server, "lockstep");
      if (!res.type.empty()) out.set(http::field::content_type, res.type);
      if (!res.filename.empty()) out.set(http::field::content_disposition, fmt::format("attachment; filename=\"{}\"", res.filename));
      if (res.truncated) out.set("X-Lockstep-Truncated", fmt::format("the recording was cut at {} octets", proxy::kTapeCap));
      // Nothing from elsewhere, no framing, no sniffing, nothing cached.
      out.set("Content-Security-Policy",
              "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
              "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
      out.set("X-Content-Type-Options", "nosniff");
      out.set("Referrer-Policy", "no-referrer");
      out.set(http::field::cache_control, "no-store");
      out.body() = std::move(res.body);
      out.keep_alive(req.keep_alive());
      out.prepare_payload();
      auto [wec, wn] = co_await http::async_write(*sp, out, tuple_awaitable);
      if (wec || !req.keep_alive()) break;
    }
    boost::system::error_code ig;
    sp->socket().shutdown(asio::ip::tcp::socket::shutdown_both, ig);
    untrack(me);
  }

  awaitable<void> websocket_session(std::shared_ptr<beast::tcp_stream> sp, http::request<http::string_body> req) {
    auto self = shared_from_this();
    unsigned status = 0;
    std::string why;
    if (std::string(req.target()).substr(0, std::string(req.target()).find('?')) != "/ws" || !allowed(req, status, why)) {
      http::response<http::string_body> out{status ? static_cast<http::status>(status) : http::status::not_found, req.version()};
      out.set(http::field::content_type, "application/json");
      out.body() = json::serialize(json::object{{"error", status ? why : "the WebSocket is at /ws"}});
      out.prepare_payload();
      co_await http::async_write(*sp, out, tuple_awaitable);
      co_return;
    }
    sp->expires_never();
    auto ws = std::make_shared<websocket::stream<beast::tcp_stream>>(std::move(*sp));
    ws->set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws->read_message_max(64 * 1024);
    const auto me = track([ws] {
      asio::post(ws->get_executor(), [ws] {
        boost::system::error_code ig;
        beast::get_lowest_layer(*ws).socket().close(ig);
      });
    });
    auto [aec] = co_await ws->async_accept(req, tuple_awaitable);
    if (aec) {
      untrack(me);
      co_return;
    }
    ws->text(true);
    std::string watched;
    bool rewatch = false;
    auto reader = [&]() -> awaitable<void> {
      for (;;) {
        beast::flat_buffer b;
        auto [ec, n] = co_await ws->async_read(b, tuple_awaitable);
        if (ec) co_return;
        boost::system::error_code pec;
        json::value v = json::parse(beast::buffers_to_string(b.data()), pec);
        if (pec || !v.is_object()) continue;
        if (const auto* w = v.as_object().if_contains("watch"); w && w->is_string()) {
          watched = std::string(w->as_string()).substr(0, 64);
          rewatch = true;
        }
      }
    };
    auto writer = [&]() -> awaitable<void> {
      std::string last_list, last_faults, last_session;
      asio::steady_timer t(ws->get_executor());
      auto send = [&](std::string text) -> awaitable<bool> {
        auto [ec, n] = co_await ws->async_write(asio::buffer(text), tuple_awaitable);
        co_return !ec;
      };
      {
        const proxy::ControlResponse presets = proxy::handle_control(proxy, {"GET", "/presets", "", ""}, "");
        if (!co_await send(fmt::format("{{\"type\":\"presets\",\"data\":{}}}", presets.body))) co_return;
      }
      while (!stopped) {
        std::string list = json::serialize(json::object{{"type", "sessions"}, {"sessions", session_list()}});
        if (list != last_list) {
          if (!co_await send(list)) co_return;
          last_list = std::move(list);
        }
        const proxy::ControlResponse faults = proxy::handle_control(proxy, {"GET", "/faults", "", ""}, "");
        if (faults.body != last_faults) {
          if (!co_await send(fmt::format("{{\"type\":\"faults\",\"data\":{}}}", faults.body))) co_return;
          last_faults = faults.body;
        }
        if (std::exchange(rewatch, false)) last_session.clear();
        if (!watched.empty()) {
          const std::string conn = watched;
          auto v = co_await session_view(conn);
          std::string text = v ? json::serialize(json::object{{"type", "session"}, {"session", std::move(*v)}})
                               : json::serialize(json::object{{"type", "gone"}, {"conn", conn}});
          if (text != last_session && conn == watched) {
            if (!co_await send(text)) co_return;
            last_session = std::move(text);
          }
        }
        t.expires_after(opts.tick);
        auto [ec] = co_await t.async_wait(tuple_awaitable);
        if (ec) co_return;
      }
    };
    co_await (reader() || writer());
    boost::system::error_code ig;
    beast::get_lowest_layer(*ws).socket().close(ig);
    untrack(me);
  }
};

UiServer::UiServer(asio::io_context& io, proxy::Proxy& proxy, Store& store, UiOptions opts) {
  const bool has_token = !opts.token.empty();
  const std::string address = opts.address;
  impl_ = std::make_shared<Impl>(io, proxy, store, std::move(opts));
  proxy::listen_http(impl_->acceptor, io, address, has_token, "--ui", "--ui-token");
  impl_->accept();
}

UiServer::~UiServer() { stop(); }

std::string UiServer::local_address() const { return proxy::tcp_address(impl_->acceptor.local_endpoint()); }

void UiServer::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  asio::post(impl_->strand, [i = impl_] {
    boost::system::error_code ig;
    i->acceptor.close(ig);
  });
  std::lock_guard lock(impl_->mu);
  for (const auto& [id, close] : impl_->closers) close();
}

}  // namespace lockstep::web
