#include "cli/demo.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <mutex>
#include <thread>

#include "proxy/relay.hpp"
#include "proxy/toy_server.hpp"

namespace lockstep::cli {

namespace {
namespace asio = boost::asio;
using asio::ip::tcp;

// A client that pipelines and pairs replies by counting them, as Postfix's lmtp(8) does.
class CountingClient {
 public:
  explicit CountingClient(unsigned short port) : sock_(io_) {
    sock_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    timeval tv{2, 0};  // the demo never waits long for a reply
    ::setsockopt(sock_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  void send(const std::string& s) { asio::write(sock_, asio::buffer(s)); }
  // Reads one whole reply (a multi-line reply ends at "NNN "); "" on timeout or EOF.
  std::string reply() {
    std::string all;
    for (;;) {
      boost::system::error_code ec;
      const std::size_t n = asio::read_until(sock_, asio::dynamic_buffer(buf_), "\r\n", ec);
      if (ec) return {};
      const std::string line = buf_.substr(0, n - 2);
      buf_.erase(0, n);
      all += (all.empty() ? "" : " / ") + line;
      if (line.size() < 4 || line[3] != '-') return all;
    }
  }
  std::vector<std::string> replies(std::size_t n) {
    std::vector<std::string> v;
    for (std::size_t i = 0; i < n; ++i) v.push_back(reply());
    return v;
  }

 private:
  asio::io_context io_;
  tcp::socket sock_;
  std::string buf_;
};

bool positive(const std::string& r) { return !r.empty() && r[0] == '2'; }

// One transaction as a counting client runs it: the group MAIL/RCPT.../DATA, then the
// content if DATA got 354, then one reply per recipient it counted as accepted.
void deliver(CountingClient& c, bool rset, const std::string& from, const std::vector<std::string>& to) {
  std::string group = rset ? "RSET\r\n" : "";
  group += "MAIL FROM:<" + from + ">\r\n";
  for (const auto& t : to) group += "RCPT TO:<" + t + ">\r\n";
  group += "DATA\r\n";
  c.send(group);
  const auto r = c.replies((rset ? 1 : 0) + 1 + to.size() + 1);
  std::size_t accepted = 0;
  for (std::size_t i = 0; i < to.size(); ++i) accepted += positive(r[(rset ? 1 : 0) + 1 + i]) ? 1 : 0;
  if (r.back().rfind("354", 0) != 0) return;  // no 354: no content (RFC 5321 §3.3)
  c.send("From: <" + from + ">\r\nSubject: lockstep demo\r\n\r\nHello from the lockstep demo.\r\n.\r\n");
  c.replies(accepted);
}
}  // namespace

int run_demo(bool color) {
  auto paint = [color](std::string_view code, const std::string& s) {
    return color ? fmt::format("\x1b[{}m{}\x1b[0m", code, s) : s;
  };
  fmt::print("{}\n\n",
             paint("1", "lockstep demo: a client that counts replies (like Postfix's lmtp) -> lockstep proxy -> an "
                        "LMTP server. The proxy checks every reply live and injects the Cyrus incident on the second "
                        "message: a stray '350 lockers' before the end-of-data reply (--fault cyrus-lockers,txn=2)."));
  proxy::ToyLmtpServer server;
  const std::string rec = (std::filesystem::temp_directory_path() / fmt::format("lockstep-demo-{}.jsonl", ::getpid())).string();
  std::filesystem::remove(rec);

  std::string err;
  proxy::ProxyOptions po;
  po.listen = proxy::parse_address("127.0.0.1:0", err).value();
  po.upstream = proxy::parse_address(fmt::format("127.0.0.1:{}", server.port()), err).value();
  po.record = rec;
  po.faults.push_back(proxy::parse_fault("cyrus-lockers,txn=2", err).value());
  po.seed = 1;
  std::mutex mu;
  bool ended = false;
  std::uint32_t errors = 0;
  proxy::ProxyHooks hooks;
  hooks.trace = [&](const std::string&, const Event& e) {
    std::lock_guard lock(mu);
    if (auto* c = std::get_if<CommandEvent>(&e)) fmt::print("  C: {}\n", c->command->label(70));
    else if (auto* d = std::get_if<ContentEvent>(&e)) fmt::print("  C: [content: {} octets] .\n", d->size);
    else if (auto* p = std::get_if<PairEvent>(&e); p && p->client_view)
      fmt::print("  S: {:<44} {}\n", p->reply->summary(80), paint("2", "-> " + p->slot));
    else if (auto* m = std::get_if<MispairEvent>(&e)) fmt::print("     {}\n", paint("33", "~ " + m->text));
    else if (auto* f = std::get_if<Finding>(&e); f && f->severity != Severity::note)
      fmt::print("     {}{} {}\n", paint(f->severity == Severity::error ? "1;31" : "33", fmt::format("✗ {}", f->rule->id)),
                 f->injected ? paint("36", " (injected)") : f->after_fault ? paint("36", " (after the fault)") : "",
                 f->explanation);
  };
  hooks.event = [&](const std::string&, const std::string& text) {
    std::lock_guard lock(mu);
    if (text.rfind("fault: ", 0) == 0) fmt::print("     {}\n", paint("36", "⚡ lockstep " + text.substr(7)));
  };
  hooks.session = [&](SessionResult&& r) {
    std::lock_guard lock(mu);
    errors += r.errors;
    fmt::print("\n{}\n", paint("1", fmt::format("session closed: {} commands, {} replies, {} error(s){}", r.commands,
                                              r.replies, r.errors, r.desynced ? ", lockstep broken" : "")));
    ended = true;
  };
  proxy::Proxy p(po, hooks);
  try {
    p.start();
  } catch (const std::exception& e) {
    fmt::print(stderr, "lockstep demo: {}\n", e.what());
    return 2;
  }
  std::thread runner([&] { p.run(); });
  const auto port = static_cast<unsigned short>(std::stoi(p.local_address().substr(p.local_address().rfind(':') + 1)));
  try {
    CountingClient c(port);
    c.reply();  // greeting
    c.send("LHLO demo.client\r\n");
    c.reply();
    fmt::print("{}\n", paint("1", "-- message 1: three recipients, one unknown; the server behaves"));
    deliver(c, false, "billing@example.org", {"alice@lab.test", "nobody@lab.test", "bob@lab.test"});
    fmt::print("{}\n", paint("1", "-- message 2: lockstep injects '350 lockers' before the server's real reply"));
    deliver(c, true, "news@example.org", {"carol@lab.test"});
    fmt::print("{}\n", paint("1", "-- message 3: the client pipelines on, one reply behind"));
    deliver(c, true, "news@example.org", {"dave@lab.test"});
    c.send("QUIT\r\n");
    c.reply();
  } catch (const std::exception& e) {
    fmt::print(stderr, "lockstep demo: client: {}\n", e.what());
  }
  for (int i = 0; i < 300; ++i) {
    {
      std::lock_guard lock(mu);
      if (ended) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  p.stop();
  runner.join();
  fmt::print("\nThe recording is in {}: `lockstep check {}` finds the same offline.\n", rec, rec);
  return ended && errors > 0 ? 0 : 1;
}

}  // namespace lockstep::cli
