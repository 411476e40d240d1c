#pragma once
// The web view of a running proxy: a page (assets embedded, nothing loaded from
// elsewhere) that shows the sessions live over a WebSocket, a ladder per session, and
// controls faults and interception through the control API under /api/.
//
//   GET /, /app.js, /app.css           the page
//   GET /api/sessions                  open and ended sessions
//   GET /api/sessions/ID/view          a session in full (what the page draws)
//   GET /api/sessions/ID/recording     its recording (JSONL), for `lockstep check`
//   GET /api/sessions/ID/scenario      its client side as a scenario, for `lockstep run`
//   /api/faults..., /api/presets, /api/sessions/ID/hold|release   the control API
//   GET /ws                            WebSocket: {"type": "sessions"|"session"|"faults", ...}
//                                      pushed as they change; send {"watch": "ID"}
//
// Security: loopback by default; elsewhere a token is required (Authorization: Bearer,
// or ?token= for the page's WebSocket). Without a token, requests must name a loopback
// Host; a request whose Origin is not the page's own is refused (no cross-site use).
#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "proxy/relay.hpp"
#include "web/store.hpp"

namespace lockstep::web {

struct UiOptions {
  std::string address = "127.0.0.1:8025";
  std::string token;
  bool redact = false;                          // mask AUTH exchanges in what the page shows
  std::chrono::milliseconds tick{250};          // how often changes are pushed
};

class UiServer {
 public:
  // Throws std::runtime_error with a clear message: bad address, busy port, or no
  // token for a non-loopback address.
  UiServer(boost::asio::io_context& io, proxy::Proxy& proxy, Store& store, UiOptions opts);
  ~UiServer();
  std::string local_address() const;
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace lockstep::web
