#include "scenarios/runner.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <cstring>
#include <deque>
#include <thread>

#include "engine/capabilities.hpp"
#include "engine/line.hpp"
#include "engine/reply.hpp"
#include "engine/session.hpp"
#include "scenarios/faulted.hpp"

namespace lockstep::scenarios {

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::pass: return "pass";
    case Verdict::fail: return "fail";
    case Verdict::not_applicable: return "n/a";
    case Verdict::error: return "error";
  }
  return "?";
}

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

int connect_to(const std::string& target, std::chrono::milliseconds timeout, std::string& error) {
  if (target.rfind("unix:", 0) == 0) {
    const std::string path = target.substr(5);
    sockaddr_un sa{};
    if (path.empty() || path.size() >= sizeof sa.sun_path) {
      error = fmt::format("{}: not a usable unix socket path", target);
      return -1;
    }
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.data(), path.size());
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      error = fmt::format("cannot connect to {}: {}", target, std::strerror(errno));
      ::close(fd);
      return -1;
    }
    return fd;
  }
  std::string host, port;
  if (!target.empty() && target[0] == '[') {
    const auto rb = target.find(']');
    if (rb == std::string::npos || rb + 1 >= target.size() || target[rb + 1] != ':') {
      error = fmt::format("{}: expected [v6]:port", target);
      return -1;
    }
    host = target.substr(1, rb - 1);
    port = target.substr(rb + 2);
  } else {
    const auto colon = target.rfind(':');
    if (colon == std::string::npos || colon == 0) {
      error = fmt::format("{}: expected host:port, [v6]:port or unix:/path", target);
      return -1;
    }
    host = target.substr(0, colon);
    port = target.substr(colon + 1);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    error = fmt::format("{}: {}", target, ::gai_strerror(rc));
    return -1;
  }
  int fd = -1;
  std::string last = "no address";
  for (addrinfo* a = res; a && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last = std::strerror(errno);
      ::close(fd);
      fd = -1;
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
      last = soerr ? std::strerror(soerr) : "timed out";
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(res);
  if (fd < 0) {
    error = fmt::format("cannot connect to {}: {}", target, last);
    return -1;
  }
  // Commands go out as the scenario writes them, not coalesced by the kernel.
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

namespace {

Time now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One connection to the server under test, with the engine watching both directions.
class Conversation {
 public:
  Conversation(int fd, CaseResult& r, const Scenario& sc) : fd_(fd), r_(r), engine_(SessionOptions{true, false, true, false, false}), faults_(sc, 1) {}
  ~Conversation() {
    if (fd_ >= 0) ::close(fd_);
  }

  // `shown` "\x01": noted by the caller already.
  bool send(const std::string& bytes, const std::string& shown) {
    if (shown == "\x01") {
    } else if (shown.empty()) {
      std::size_t at = 0;
      while (at < bytes.size() && r_.transcript.size() < kMaxTranscript) {
        auto lf = bytes.find('\n', at);
        std::string line = bytes.substr(at, lf == std::string::npos ? std::string::npos : lf - at);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        r_.transcript.push_back("C: " + printable(line));
        at = lf == std::string::npos ? bytes.size() : lf + 1;
      }
    } else {
      note("C: " + (shown.size() > 240 ? fmt::format("{}... ({} octets)", shown.substr(0, 200), bytes.size()) : shown));
    }
    if (gone_) return true;  // a fault closed the connection: the rest is dropped
    if (faults_.active()) return carry_out(faults_.ours(bytes, now_us()));
    return write_out(bytes);
  }

  // The next whole reply, waiting until `deadline`; false on timeout or close.
  bool next_reply(Reply& out, Clock::time_point deadline) {
    while (replies_.empty()) {
      if (closed_) return false;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      read_some(static_cast<int>(left));
    }
    out = std::move(replies_.front());
    replies_.pop_front();
    return true;
  }
  void put_back(Reply r) { replies_.push_front(std::move(r)); }
  bool has_reply() const { return !replies_.empty(); }
  bool owed() const { return engine_.reply_wait_minimum() > 0; }
  bool wait_closed(Clock::time_point deadline) {
    while (!closed_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      read_some(static_cast<int>(left));
    }
    return true;
  }
  void half_close() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
    engine_.close(Dir::client, now_us());
  }
  bool closed() const { return closed_; }
  void note(const std::string& s) {
    if (r_.transcript.size() < kMaxTranscript) r_.transcript.push_back(s);
  }
  // Ends the engine's session and keeps its findings about the server.
  void finish() {
    engine_.finish(now_us());
    while (auto ev = engine_.next())
      if (auto* f = std::get_if<Finding>(&*ev); f && f->side == Dir::server && f->severity != Severity::note)
        if (r_.findings.size() < 50) r_.findings.push_back(*f);
  }
  const Capabilities* caps() const { return caps_.known ? &caps_ : nullptr; }
  void learn_capabilities(const Reply& lhlo) {
    caps_ = parse_capabilities(lhlo);
    caps_.known = true;
  }

  static constexpr std::size_t kMaxTranscript = 400;

 private:
  bool write_out(const std::string& bytes) {
    engine_.feed(Dir::client, bytes, now_us());
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, 1000);
        read_some(0);  // a server that answers while we write must not deadlock us
        continue;
      }
      return false;
    }
    return true;
  }
  bool carry_out(const std::vector<proxy::Step>& steps) {
    if (gone_) return true;
    return faults_.carry_out(
        steps, fd_, [this](const std::string& b) { return write_out(b); }, [this](const std::string& n) { note(n); },
        [this](bool) {
          ::close(fd_);
          fd_ = -1;
          engine_.close(Dir::client, now_us());
          gone_ = closed_ = true;
        });
  }

 private:
  static std::string printable(std::string s) {
    for (char& c : s)
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') c = '?';
    if (s.size() > 200) s = s.substr(0, 200) + "...";
    return s;
  }
  void read_some(int timeout_ms) {
    if (fd_ < 0) {
      closed_ = true;
      return;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return;
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      closed_ = true;
      engine_.close(Dir::server, now_us());
      note(n == 0 ? "S: (closed the connection)" : fmt::format("S: (connection error: {})", std::strerror(errno)));
      return;
    }
    const std::string_view data(buf, static_cast<std::size_t>(n));
    engine_.feed(Dir::server, data, now_us());
    if (faults_.active()) carry_out(faults_.theirs(data, now_us()));
    std::string_view rest = data;
    Line line;
    while (splitter_.next(rest, line)) {
      if (assembler_.add(line, now_us())) {
        Reply r = assembler_.take();
        for (const auto& l : r.lines) note("S: " + printable(l));
        replies_.push_back(std::move(r));
      }
    }
  }

  int fd_;
  CaseResult& r_;
  Session engine_;
  LineSplitter splitter_;
  ReplyAssembler assembler_;
  std::deque<Reply> replies_;
  CaseFaults faults_;
  bool closed_ = false;
  bool gone_ = false;  // a fault closed or reset the connection
  Capabilities caps_;
};

// The reply's text: each line after its code and separator, joined by "\n".
std::string text_of(const Reply& r) {
  std::string s;
  for (const auto& l : r.lines) {
    const bool coded = l.size() >= 3 && std::isdigit(static_cast<unsigned char>(l[0])) &&
                       std::isdigit(static_cast<unsigned char>(l[1])) && std::isdigit(static_cast<unsigned char>(l[2]));
    s += (s.empty() ? "" : "\n") + (coded ? l.substr(std::min<std::size_t>(4, l.size())) : l);
  }
  return s;
}
}  // namespace

CaseResult run_client(const Scenario& sc, const RunOptions& opts) {
  CaseResult r;
  r.id = sc.id;
  r.title = sc.title;
  r.file = sc.file;
  r.requirement = sc.requirement;
  r.source = sc.source;
  r.rules = sc.rules;
  const auto start = Clock::now();
  if (sc.role != "client") {
    r.verdict = Verdict::error;
    r.reason = "role: server (lockstep tests a client): run it with --listen";
    return r;
  }
  std::string err;
  const int fd = connect_to(opts.target, opts.connect_timeout, err);
  if (fd < 0) {
    r.verdict = Verdict::error;
    r.reason = err;
    return r;
  }
  Conversation conv(fd, r, sc);
  const auto timeout = sc.timeout.count() > 0 ? sc.timeout : opts.timeout;
  bool last_was_lhlo = false, caps_checked = sc.needs.empty();
  auto failed = [&](const ScenarioStep& s, std::string why) {
    r.verdict = Verdict::fail;
    r.line = s.line;
    r.reason = std::move(why);
  };
  for (const auto& s : sc.steps) {
    if (r.verdict != Verdict::pass) break;
    switch (s.kind) {
      case ScenarioStep::Kind::send: {
        std::string verb = s.bytes.substr(0, 4);
        std::transform(verb.begin(), verb.end(), verb.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
        last_was_lhlo = verb == "LHLO";
        bool sent = true;
        if (s.fragment == 0) {
          sent = conv.send(s.bytes, s.shown);
        } else {
          conv.note("C: " + s.shown + fmt::format("  (sent {} octet(s) per write)", s.fragment));
          for (std::size_t at = 0; at < s.bytes.size() && sent; at += s.fragment) {
            sent = conv.send(s.bytes.substr(at, s.fragment), "\x01");
            std::this_thread::sleep_for(std::chrono::milliseconds(2));  // separate reads at the server
          }
        }
        if (!sent) failed(s, "the server closed the connection before lockstep could send this step");
        break;
      }
      case ScenarioStep::Kind::expect: {
        if (s.expect.none) {
          Reply reply;
          if (conv.next_reply(reply, Clock::now() + std::chrono::seconds(1)))
            failed(s, fmt::format("no reply was expected, got '{}'", reply.summary(100)));
          break;
        }
        for (std::uint32_t i = 0; i < s.expect.count && r.verdict == Verdict::pass; ++i) {
          Reply reply;
          if (!conv.next_reply(reply, Clock::now() + timeout)) {
            if (s.expect.optional) break;  // an optional reply that did not come
            failed(s, fmt::format("expected {}{}, but {}", s.expect.text,
                                  s.expect.count > 1 ? fmt::format(" (reply {} of {})", i + 1, s.expect.count) : "",
                                  conv.closed() ? "the server closed the connection"
                                                : fmt::format("no reply came within {} ms", timeout.count())));
            break;
          }
          if (s.expect.optional && !s.expect.matches(reply.code, text_of(reply))) {
            conv.put_back(std::move(reply));  // not this optional reply: the next step's
            break;
          }
          if (!s.expect.matches(reply.code, text_of(reply))) {
            failed(s, fmt::format("expected {}, got '{}'", s.expect.text, reply.summary(120)));
            break;
          }
          if (last_was_lhlo && reply.code / 100 == 2) conv.learn_capabilities(reply);
        }
        last_was_lhlo = false;
        // The case needs capabilities the server did not advertise: it does not apply.
        if (!caps_checked && conv.caps()) {
          caps_checked = true;
          for (const auto& need : sc.needs) {
            if (!conv.caps()->has(need)) {
              r.verdict = Verdict::not_applicable;
              r.reason = fmt::format("{} is not advertised", need);
              conv.send("QUIT\r\n", "QUIT");
              break;
            }
          }
        }
        break;
      }
      case ScenarioStep::Kind::wait: {
        const auto until = Clock::now() + s.wait;
        while (Clock::now() < until) {
          Reply early;
          if (conv.closed()) break;
          if (conv.next_reply(early, until)) {
            failed(s, fmt::format("'{}' arrived while lockstep waited, before anything asked for it", early.summary(100)));
            break;
          }
        }
        break;
      }
      case ScenarioStep::Kind::replies: {  // whatever is owed; the engine judges them
        const auto until = Clock::now() + s.wait;
        Reply reply;
        while (conv.has_reply() || (conv.owed() && !conv.closed())) {
          if (!conv.next_reply(reply, until)) break;
        }
        // A surplus reply comes right after the owed ones: give it a moment.
        while (conv.next_reply(reply, std::min(until, Clock::now() + std::chrono::milliseconds(200)))) {
        }
        break;
      }
      case ScenarioStep::Kind::close:
        conv.half_close();
        conv.note("C: (closed its side)");
        break;
      case ScenarioStep::Kind::expect_close: {
        if (!conv.wait_closed(Clock::now() + timeout)) failed(s, fmt::format("the server did not close the connection within {} ms", timeout.count()));
        break;
      }
      case ScenarioStep::Kind::expect_command:
      case ScenarioStep::Kind::accept:
      case ScenarioStep::Kind::trigger:
      case ScenarioStep::Kind::no_connection:
        failed(s, "a step of a server-role scenario: run it with --listen");
        break;
    }
  }
  conv.finish();
  // The engine's verdict on the rules the case is about.
  if (r.verdict == Verdict::pass) {
    for (const auto& f : r.findings) {
      if (f.severity != Severity::error) continue;
      if (std::find(sc.rules.begin(), sc.rules.end(), std::string(f.rule->id)) == sc.rules.end()) continue;
      r.verdict = Verdict::fail;
      r.reason = fmt::format("{}: {}", f.rule->id, f.explanation);
      break;
    }
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

}  // namespace lockstep::scenarios
