// The web view's server and documents: what each request gets (and who is refused),
// the WebSocket pushes, interception over HTTP, exports, and the session JSON the page
// draws (also embedded by `check --html`).
#include <catch2/catch.hpp>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include "tests/proxy/harness.hpp"
#include "web/store.hpp"
#include "web/ui.hpp"
#include "web/view.hpp"

namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
namespace json = boost::json;
using harness::read_until;

namespace {
// A proxy with the web view, on its own thread, in front of the toy server.
struct WebProxy {
  explicit WebProxy(const std::string& token = {}, bool redact = false) {
    std::string err;
    proxy::ProxyOptions o;
    o.listen = proxy::parse_address("127.0.0.1:0", err).value();
    o.upstream = proxy::parse_address("127.0.0.1:" + std::to_string(server.port()), err).value();
    o.intercept = true;
    o.redact = redact;
    o.drain_timeout = std::chrono::milliseconds(200);
    proxy::ProxyHooks h;
    h.session = [this](SessionResult&& r) { store.ended(std::move(r)); };
    h.tape = [this](const std::string& conn, std::string&& t, bool cut) { store.tape(conn, std::move(t), cut); };
    p = std::make_unique<proxy::Proxy>(o, h);
    p->start();
    ui = std::make_unique<web::UiServer>(p->io(), *p, store, web::UiOptions{"127.0.0.1:0", token, redact, std::chrono::milliseconds(50)});
    thread = std::thread([this] { p->run(); });
  }
  ~WebProxy() {
    ui->stop();
    p->stop();
    thread.join();
  }
  unsigned short port(const std::string& a) const { return static_cast<unsigned short>(std::stoi(a.substr(a.rfind(':') + 1))); }
  unsigned short proxy_port() const { return port(p->local_address()); }
  unsigned short ui_port() const { return port(ui->local_address()); }

  proxy::ToyLmtpServer server;
  web::Store store;
  std::unique_ptr<proxy::Proxy> p;
  std::unique_ptr<web::UiServer> ui;
  std::thread thread;
};

struct HttpReply {
  unsigned status = 0;
  std::string body, type, csp, truncated;
};
HttpReply request(unsigned short port, http::verb verb, const std::string& target, const std::string& body = {},
              std::map<std::string, std::string> headers = {}) {
  asio::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, headers.count("Host") ? headers["Host"] : "127.0.0.1:" + std::to_string(port));
  for (const auto& [k, v] : headers)
    if (k != "Host") req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  http::write(s, req);
  boost::beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(s, buf, res);
  return {res.result_int(), res.body(), std::string(res[http::field::content_type]), std::string(res["Content-Security-Policy"]),
          std::string(res["X-Lockstep-Truncated"])};
}
HttpReply get(unsigned short port, const std::string& target, std::map<std::string, std::string> headers = {}) {
  return request(port, http::verb::get, target, {}, std::move(headers));
}

// Polls `f` (up to 5 s) until it returns true.
template <class F>
bool eventually(F f) {
  for (int i = 0; i < 250; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

// An LMTP client through the proxy, up to LHLO's reply.
struct Client {
  explicit Client(unsigned short port) : s(io) {
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    read_until(s, buf, "\r\n");
    send("LHLO c.test\r\n");
    read_until(s, buf, "250 SIZE\r\n");
  }
  void send(const std::string& x) { asio::write(s, asio::buffer(x)); }
  std::string line() { return read_until(s, buf, "\r\n"); }
  asio::io_context io;
  tcp::socket s;
  std::string buf;
};
}  // namespace

TEST_CASE("the web view serves its page with a strict policy and refuses other sites and hosts", "[web]") {
  WebProxy w;
  const auto port = w.ui_port();
  const HttpReply page = get(port, "/");
  CHECK(page.status == 200);
  CHECK_THAT(page.type, Catch::StartsWith("text/html"));
  CHECK_THAT(page.body, Catch::Contains("<script src=\"app.js\"></script>"));
  CHECK_THAT(page.csp, Catch::Contains("default-src 'none'"));
  CHECK_THAT(page.csp, Catch::Contains("connect-src 'self'"));
  // Nothing is loaded from anywhere else.
  for (const char* asset : {"/", "/app.js", "/app.css"}) {
    const HttpReply a = get(port, asset);
    CHECK(a.status == 200);
    CHECK_THAT(a.body, !Catch::Contains("https://") && !Catch::Contains("src=\"http"));
  }
  CHECK(get(port, "/nothing-here").status == 404);
  CHECK(get(port, "/api/sessions").status == 200);
  // Another site's page, or a DNS name pointing here (rebinding), gets nothing.
  CHECK(get(port, "/api/sessions", {{"Origin", "http://evil.example"}}).status == 403);
  CHECK(get(port, "/api/sessions", {{"Host", "evil.example:" + std::to_string(port)}}).status == 403);
  CHECK(get(port, "/api/sessions", {{"Origin", "http://127.0.0.1:" + std::to_string(port)}}).status == 200);
  CHECK(request(port, http::verb::post, "/api/faults", R"({"spec": "drop@rcpt"})", {{"Origin", "http://evil.example"}}).status == 403);
  CHECK(w.p->faults().empty());
  // The control API under /api.
  CHECK(request(port, http::verb::post, "/api/faults", R"({"name": "d", "spec": "drop@rcpt#2"})").status == 201);
  CHECK(w.p->faults().size() == 1);
  CHECK(request(port, http::verb::delete_, "/api/faults/d").status == 204);
}

TEST_CASE("the web view wants its token when it has one, and a token off loopback", "[web]") {
  WebProxy w("s3cret");
  const auto port = w.ui_port();
  CHECK(get(port, "/").status == 200);  // the page itself holds no data
  CHECK(get(port, "/api/sessions").status == 401);
  CHECK(get(port, "/api/sessions", {{"Authorization", "Bearer wrong"}}).status == 401);
  CHECK(get(port, "/api/sessions", {{"Authorization", "Bearer s3cret"}}).status == 200);
  CHECK(get(port, "/api/sessions?token=s3cret").status == 200);
  CHECK(get(port, "/api/faults?token=s3cre").status == 401);
  {
    web::Store store;
    CHECK_THROWS_WITH(web::UiServer(w.p->io(), *w.p, store, web::UiOptions{"0.0.0.0:0", "", false, {}}),
                      Catch::Contains("--ui-token is required"));
    CHECK_THROWS_WITH(web::UiServer(w.p->io(), *w.p, store, web::UiOptions{"nonsense", "", false, {}}), Catch::Contains("--ui"));
  }
}

TEST_CASE("the web view pushes sessions and a watched ladder over its WebSocket", "[web]") {
  WebProxy w;
  asio::io_context io;
  tcp::socket sock(io);
  sock.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), w.ui_port()));
  websocket::stream<tcp::socket&> ws(sock);
  ws.handshake("127.0.0.1:" + std::to_string(w.ui_port()), "/ws");
  auto next = [&](const std::string& type) {
    for (int i = 0; i < 200; ++i) {
      boost::beast::flat_buffer b;
      ws.read(b);
      json::value v = json::parse(boost::beast::buffers_to_string(b.data()));
      if (v.as_object().at("type").as_string() == type) return v.as_object();
    }
    FAIL("no '" << type << "' message");
    return json::object{};
  };
  CHECK_THAT(json::serialize(next("presets")), Catch::Contains("cyrus-lockers"));
  Client c(w.proxy_port());
  // The open session appears, with its state and counts.
  json::object list;
  for (int i = 0; i < 50; ++i) {
    list = next("sessions");
    if (!list.at("sessions").as_array().empty()) break;
  }
  REQUIRE(list.at("sessions").as_array().size() == 1);
  const auto& s = list.at("sessions").as_array()[0].as_object();
  CHECK(s.at("open").as_bool());
  CHECK(s.at("interceptable").as_bool());
  const std::string conn(s.at("conn").as_string());
  ws.write(asio::buffer(json::serialize(json::object{{"watch", conn}})));
  json::object view = next("session").at("session").as_object();
  CHECK(view.at("conn").as_string() == conn);
  const auto& ladder = view.at("ladder").as_array();
  REQUIRE(ladder.size() >= 3);
  CHECK(ladder[1].as_object().at("text").as_string() == "LHLO c.test");
  CHECK(ladder[2].as_object().at("pair").as_string() == "LHLO c.test");
  // A new command shows up in the next push.
  c.send("NOOP\r\n");
  c.line();
  bool seen = false;
  for (int i = 0; i < 50 && !seen; ++i) {
    const auto v = next("session").at("session").as_object();
    for (const auto& e : v.at("ladder").as_array()) seen = seen || e.as_object().at("text").as_string() == "NOOP";
  }
  CHECK(seen);
  ws.close(websocket::close_code::normal);
}

TEST_CASE("a reply held over HTTP reaches the client edited, dropped or unchanged, and exports follow", "[web][hold]") {
  WebProxy w;
  const auto port = w.ui_port();
  Client c(w.proxy_port());
  std::string conn;
  REQUIRE(eventually([&] {
    const auto v = json::parse(get(port, "/api/sessions").body).as_object().at("sessions").as_array();
    if (v.empty()) return false;
    conn = std::string(v[0].as_object().at("conn").as_string());
    return true;
  }));
  auto held = [&] {
    return json::parse(get(port, "/api/sessions/" + conn).body).as_object().at("hold").as_string() == "held";
  };
  // Nothing is held yet: releasing is refused; an unknown connection is 404.
  CHECK(request(port, http::verb::post, "/api/sessions/" + conn + "/release").status == 409);
  CHECK(request(port, http::verb::post, "/api/sessions/999/hold").status == 404);

  SECTION("edit") {
    CHECK(request(port, http::verb::post, "/api/sessions/" + conn + "/hold").status == 202);
    CHECK(request(port, http::verb::post, "/api/sessions/" + conn + "/hold").status == 202);  // still armed
    c.send("MAIL FROM:<a@b.test>\r\n");
    REQUIRE(eventually(held));
    const auto info = json::parse(get(port, "/api/sessions/" + conn).body).as_object();
    CHECK(info.at("held_label").as_string() == "MAIL FROM:<a@b.test>");
    CHECK(info.at("held_reply").as_string() == "250 2.1.0 ok\r\n");
    CHECK(request(port, http::verb::post, "/api/sessions/" + conn + "/hold").status == 409);
    CHECK(request(port, http::verb::post, "/api/sessions/" + conn + "/release", R"({"action": "edit"})").status == 400);
    CHECK(request(port, http::verb::post, "/api/sessions/" + conn + "/release", R"({"action": "shred"})").status == 400);
    CHECK(request(port, http::verb::post, "/api/sessions/" + conn + "/release",
                  R"({"action": "edit", "text": "452 4.3.1 edited\n"})").status == 200);
    CHECK(c.line() == "452 4.3.1 edited\r\n");
    // The ladder marks the reply as written by lockstep, after the note of what was done.
    REQUIRE(eventually([&] { return get(port, "/api/sessions/" + conn + "/view").body.find("\"injected\":true") != std::string::npos; }));
    const auto view = json::parse(get(port, "/api/sessions/" + conn + "/view").body).as_object();
    bool fault_row = false;
    for (const auto& e : view.at("ladder").as_array())
      fault_row = fault_row || (e.as_object().contains("fault") && std::string(e.as_object().at("text").as_string()).find("replaced by '452 4.3.1 edited'") != std::string::npos);
    CHECK(fault_row);
  }
  SECTION("drop") {
    CHECK(request(port, http::verb::post, "/api/sessions/" + conn + "/hold").status == 202);
    c.send("MAIL FROM:<a@b.test>\r\n");
    REQUIRE(eventually(held));
    CHECK(request(port, http::verb::post, "/api/sessions/" + conn + "/release", R"({"action": "drop"})").status == 200);
    c.send("NOOP\r\n");
    CHECK(c.line() == "250 2.0.0 ok\r\n");  // NOOP's: MAIL's reply is gone
  }
  SECTION("release unchanged") {
    CHECK(request(port, http::verb::post, "/api/sessions/" + conn + "/hold").status == 202);
    c.send("MAIL FROM:<a@b.test>\r\n");
    REQUIRE(eventually(held));
    CHECK(request(port, http::verb::post, "/api/sessions/" + conn + "/release").status == 200);
    CHECK(c.line() == "250 2.1.0 ok\r\n");
  }
  c.send("QUIT\r\n");
  c.line();
  c.s.close();
  // Once ended, the session stays listed and exports as a recording and a scenario.
  REQUIRE(eventually([&] { return w.store.get(conn) && !w.store.get(conn)->tape.empty(); }));
  const HttpReply rec = get(port, "/api/sessions/" + conn + "/recording");
  CHECK(rec.status == 200);
  CHECK_THAT(rec.body, Catch::Contains("\"ev\":\"open\"") && Catch::Contains("MAIL FROM:<a@b.test>"));
  const HttpReply yaml = get(port, "/api/sessions/" + conn + "/scenario");
  CHECK(yaml.status == 200);
  CHECK_THAT(yaml.body, Catch::Contains("role: client") && Catch::Contains("MAIL FROM:<a@b.test>"));
  CHECK(get(port, "/api/sessions/nope/recording").status == 404);
  CHECK(rec.truncated.empty());
  // A recording cut at its cap says so.
  SessionResult cut;
  cut.conn = "cut";
  w.store.ended(cut);
  w.store.tape("cut", "{}\n", true);
  CHECK_THAT(get(port, "/api/sessions/cut/recording").truncated, Catch::Contains("cut at 16777216 octets"));
  CHECK_THAT(get(port, "/api/sessions").body, Catch::Contains("\"open\":false"));
}

TEST_CASE("a held reply is let go when the client leaves", "[web][hold]") {
  WebProxy w;
  auto c = std::make_unique<Client>(w.proxy_port());
  REQUIRE(eventually([&] { return !w.p->sessions().empty(); }));
  const std::string conn = w.p->sessions()[0].conn;
  std::string err;
  REQUIRE(w.p->hold(conn, err));
  c->send("MAIL FROM:<a@b.test>\r\n");
  REQUIRE(eventually([&] { return !w.p->sessions().empty() && w.p->sessions()[0].hold == "held"; }));
  c.reset();  // the client goes away while its reply is held
  REQUIRE(eventually([&] { return w.p->sessions().empty(); }));
  CHECK(w.store.get(conn));
}

TEST_CASE("the session JSON the page draws: pairings, faults, injected bytes, redaction; the offline page", "[web][view]") {
  SessionResult r;
  r.conn = "7";
  r.client = "127.0.0.1:1";
  r.server = "127.0.0.1:2";
  auto entry = [](Dir d, std::string text, std::uint64_t offset) {
    LadderEntry e;
    e.dir = d;
    e.text = std::move(text);
    e.offset = offset;
    return e;
  };
  LadderEntry auth = entry(Dir::client, "AUTH PLAIN c2VjcmV0", 0);
  LadderEntry chal = entry(Dir::server, "334 VXNlcm5hbWU6", 20);
  chal.client_pair = "AUTH PLAIN c2VjcmV0";
  LadderEntry fault = entry(Dir::server, "cyrus-lockers: injected '350 lockers'", 40);
  fault.fault = true;
  LadderEntry stray = entry(Dir::server, "350 lockers </script><b>", 40);
  stray.injected = true;
  stray.client_pair = "end of data (<b@x>)";
  stray.true_known = true;
  stray.findings = {1};
  r.ladder = {auth, chal, fault, stray};
  Finding f;
  f.id = 1;
  f.rule = &rule("LMTP-4.2-PER-RCPT-REPLIES");
  f.severity = Severity::error;
  f.injected = true;
  f.explanation = "one too many";
  r.findings = {f};
  r.errors = 1;  // the Checker counts every finding, also those past its findings limit
  const auto plain = web::session_json(r, false);
  const auto& l = plain.at("ladder").as_array();
  CHECK(l[0].as_object().at("text").as_string() == "AUTH PLAIN c2VjcmV0");
  CHECK(l[2].as_object().at("fault").as_bool());
  CHECK(l[3].as_object().at("injected").as_bool());
  CHECK(l[3].as_object().at("answers").as_string() == "");  // a surplus: answers nothing
  CHECK(plain.at("errors").to_number<int>() == 1);
  CHECK(plain.at("rules").as_array()[0].as_string() == "LMTP-4.2-PER-RCPT-REPLIES");
  CHECK(plain.at("findings").as_array()[0].as_object().at("injected").as_bool());
  const auto red = web::session_json(r, true);
  CHECK(red.at("ladder").as_array()[0].as_object().at("text").as_string() == "AUTH PLAIN xxxxxxxx");
  CHECK(red.at("ladder").as_array()[1].as_object().at("text").as_string() == "334 xxxxxxxxxxxx");
  // One file: the data embedded (nothing in it can end the script), style and script inline.
  const std::string page = web::static_page(json::array{plain}, "rec.jsonl");
  CHECK_THAT(page, Catch::Contains("window.LOCKSTEP_STATIC = "));
  CHECK_THAT(page, !Catch::Contains("src=\"app.js\"") && !Catch::Contains("href=\"app.css\""));
  CHECK_THAT(page, !Catch::Contains("</script><b>"));
  CHECK_THAT(page, Catch::Contains("350 lockers \\u003c/script\\u003e\\u003cb\\u003e"));
}
