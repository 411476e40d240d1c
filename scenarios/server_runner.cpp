#include "scenarios/server_runner.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/session.hpp"
#include "scenarios/faulted.hpp"

extern char** environ;

namespace lockstep::scenarios {

namespace {
using Clock = std::chrono::steady_clock;

Time now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string printable(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t') c = '?';
  if (s.size() > 200) s = s.substr(0, 200) + "...";
  return s;
}

// A shell command started in the background; reaped (and killed if still running) at the end.
class Command {
 public:
  Command() = default;
  Command(const Command&) = delete;
  Command& operator=(const Command&) = delete;
  ~Command() { stop(std::chrono::seconds(0)); }
  bool start(const std::string& cmd) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);  // its own group: killed as a whole
    posix_spawnattr_setpgroup(&attr, 0);
    std::string c = cmd;
    char sh[] = "/bin/sh", dash_c[] = "-c";
    char* argv[] = {sh, dash_c, c.data(), nullptr};
    const int rc = posix_spawn(&pid_, "/bin/sh", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) pid_ = -1;
    return rc == 0;
  }
  // Waits up to `grace` for it to end, then kills its process group; returns the exit
  // status (-1 when killed or not started).
  int stop(std::chrono::milliseconds grace) {
    if (pid_ <= 0) return -1;
    const auto until = Clock::now() + grace;
    int status = 0;
    for (;;) {
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      if (Clock::now() >= until) break;
      ::usleep(20000);
    }
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return -1;
  }
  bool running() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

// One client connection, with the engine watching both directions and the case's
// faults on the replies lockstep writes.
class ClientConn {
 public:
  ClientConn(int fd, CaseResult& r, const Scenario& sc, std::uint64_t conn_no)
      : fd_(fd), r_(r), engine_(SessionOptions{true, false, true, false, false}), faults_(sc, conn_no) {
    const int one = 1;  // replies go out as written (fragment faults stay fragments)
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~ClientConn() { finish(); }

  void note(const std::string& s) {
    if (r_.transcript.size() < 400) r_.transcript.push_back(s);
  }
  // A reply of the scenario, through the case's faults. After a fault closed the
  // connection, what is left to send is dropped (true: that is the fault's effect).
  bool send(const std::string& bytes) {
    if (gone_) return true;
    if (!faults_.active()) return write_out(bytes);
    return carry_out(faults_.ours(bytes, now_us()));
  }
  // The client's next line (without its CRLF), waiting until `deadline`; false on
  // timeout or close (closed() tells which).
  bool line(std::string& out, Clock::time_point deadline, bool content = false) {
    for (;;) {
      const auto lf = buf_.find('\n');
      if (lf != std::string::npos) {
        out = buf_.substr(0, lf + 1);
        buf_.erase(0, lf + 1);
        if (!content) {
          std::string shown = out;
          while (!shown.empty() && (shown.back() == '\n' || shown.back() == '\r')) shown.pop_back();
          note("C: " + printable(shown));
        }
        return true;
      }
      if (closed_) return false;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      read_some(static_cast<int>(left));
    }
  }
  void put_back(const std::string& line) { buf_.insert(0, line); }
  bool wait_closed(Clock::time_point deadline, std::string& sent_instead) {
    std::string l;
    if (line(l, deadline)) {
      sent_instead = l;
      return false;
    }
    return closed_;
  }
  bool closed() const { return closed_; }
  void finish() {
    if (fd_ < 0) return;
    ::close(fd_);
    fd_ = -1;
    engine_.finish(now_us(), !closed_);
    while (auto ev = engine_.next())
      if (auto* f = std::get_if<Finding>(&*ev); f && f->side == Dir::client && f->severity != Severity::note)
        if (r_.findings.size() < 50) r_.findings.push_back(*f);
  }

 private:
  bool write_out(const std::string& bytes) {
    shown_ += bytes;  // the transcript shows whole lines, however the bytes are split
    for (auto lf = shown_.find('\n'); lf != std::string::npos; lf = shown_.find('\n')) {
      std::string line = shown_.substr(0, lf);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      note("S: " + printable(line));
      shown_.erase(0, lf + 1);
    }
    engine_.feed(Dir::server, bytes, now_us());
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        return false;
      }
      done += static_cast<std::size_t>(n);
    }
    return true;
  }
  bool carry_out(const std::vector<proxy::Step>& steps) {
    if (gone_) return true;
    return faults_.carry_out(
        steps, fd_, [this](const std::string& b) { return write_out(b); }, [this](const std::string& n) { note(n); },
        [this](bool) {
          finish();
          gone_ = closed_ = true;
        });
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
      engine_.close(Dir::client, now_us());
      note(n == 0 ? "C: (closed the connection)" : fmt::format("C: (connection error: {})", std::strerror(errno)));
      return;
    }
    const std::string_view data(buf, static_cast<std::size_t>(n));
    engine_.feed(Dir::client, data, now_us());
    buf_.append(data);
    if (faults_.active()) carry_out(faults_.theirs(data, now_us()));
    if (buf_.size() > (8u << 20)) {  // a "line" of 8 MiB: not LMTP
      closed_ = true;
      note("C: (over 8 MiB without a line end: lockstep stopped reading)");
    }
  }

  int fd_;
  CaseResult& r_;
  Session engine_;
  CaseFaults faults_;
  std::string buf_, shown_;
  bool closed_ = false;
  bool gone_ = false;  // a fault closed or reset the connection
};
}  // namespace

Listener::Listener(const std::string& address) {
  if (address.rfind("unix:", 0) == 0) {
    unix_path_ = address.substr(5);
    sockaddr_un sa{};
    if (unix_path_.empty() || unix_path_.size() >= sizeof sa.sun_path) throw std::runtime_error(fmt::format("--listen {}: not a usable unix socket path", address));
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, unix_path_.data(), unix_path_.size());
    ::unlink(unix_path_.c_str());
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd_, 64) != 0) {
      const std::string e = std::strerror(errno);
      ::close(fd_);
      throw std::runtime_error(fmt::format("cannot listen on {}: {}", address, e));
    }
    ::chmod(unix_path_.c_str(), 0666);
    address_ = address;
    return;
  }
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error(fmt::format("--listen {}: expected host:port or unix:/path", address));
  std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
    throw std::runtime_error(fmt::format("--listen {}: {}", address, ::gai_strerror(rc)));
  fd_ = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
  const int one = 1;
  ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const bool ok = ::bind(fd_, res->ai_addr, res->ai_addrlen) == 0 && ::listen(fd_, 64) == 0;
  ::freeaddrinfo(res);
  if (!ok) {
    const std::string e = std::strerror(errno);
    ::close(fd_);
    throw std::runtime_error(fmt::format("cannot listen on {}: {}", address, e));
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  char ip[INET6_ADDRSTRLEN] = "?";
  unsigned p = 0;
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    p = ntohs(a->sin_port);
    address_ = fmt::format("{}:{}", ip, p);
  } else {
    const auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
    p = ntohs(a->sin6_port);
    address_ = fmt::format("[{}]:{}", ip, p);
  }
}

Listener::~Listener() {
  if (fd_ >= 0) ::close(fd_);
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
}

int Listener::accept(Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return -1;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0) return c;
  }
}

void Listener::drain() {
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return;
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    ::close(c);
  }
}

CaseResult run_server(const Scenario& sc, Listener& listener, const ServeOptions& opts) {
  CaseResult r;
  r.id = sc.id;
  r.title = sc.title;
  r.file = sc.file;
  r.requirement = sc.requirement;
  r.source = sc.source;
  r.rules = sc.rules;
  const auto start = Clock::now();
  if (sc.role != "server") {
    r.verdict = Verdict::error;
    r.reason = "role: client (lockstep tests a server): run it with --target";
    return r;
  }
  const auto timeout = sc.timeout.count() > 0 ? sc.timeout : opts.timeout;
  if (!opts.reset.empty()) {
    Command reset;
    if (!reset.start(opts.reset) || reset.stop(std::chrono::seconds(60)) != 0) {
      r.verdict = Verdict::error;
      r.reason = fmt::format("the reset command failed: {}", opts.reset);
      return r;
    }
  }
  listener.drain();
  std::deque<Command> triggers;
  auto trigger = [&]() -> bool {
    if (opts.trigger_hook) opts.trigger_hook();
    if (opts.trigger.empty()) return true;
    triggers.emplace_back();
    r.transcript.push_back(fmt::format("-- trigger: {}", opts.trigger));
    return triggers.back().start(opts.trigger);
  };
  auto failed = [&](const ScenarioStep& s, std::string why) {
    r.verdict = Verdict::fail;
    r.line = s.line;
    r.reason = std::move(why);
  };
  std::unique_ptr<ClientConn> conn;
  std::uint64_t connections = 0;
  bool optional_matched = false;  // the last C? step found its command
  auto accept = [&](const ScenarioStep* s) -> bool {
    if (conn) conn->finish();
    conn.reset();
    const int fd = listener.accept(Clock::now() + timeout);
    if (fd < 0) {
      if (s) failed(*s, fmt::format("the client did not connect within {} ms", timeout.count()));
      else {
        r.verdict = Verdict::error;
        r.reason = fmt::format("the client did not connect to {} within {} ms{}", listener.address(), timeout.count(),
                               opts.trigger.empty() ? " (no --trigger given)" : "");
      }
      return false;
    }
    r.transcript.push_back("-- connection accepted");
    conn = std::make_unique<ClientConn>(fd, r, sc, ++connections);
    return true;
  };
  if (!trigger()) {
    r.verdict = Verdict::error;
    r.reason = fmt::format("cannot run the trigger: {}", opts.trigger);
    return r;
  }
  if (accept(nullptr)) {
    for (const auto& s : sc.steps) {
      if (r.verdict != Verdict::pass) break;
      switch (s.kind) {
        case ScenarioStep::Kind::send:
          if (s.if_matched && !optional_matched) break;
          if (!conn || !conn->send(s.bytes)) failed(s, "the client closed the connection before lockstep could send this reply");
          break;
        case ScenarioStep::Kind::expect_command: {
          const CommandPattern& p = s.command;
          if (!conn) {
            failed(s, "no connection");
            break;
          }
          if (p.none) {
            std::string l;
            if (conn->line(l, Clock::now() + std::chrono::seconds(1))) failed(s, fmt::format("no command was expected, got '{}'", printable(l)));
            break;
          }
          if (p.content) {
            std::string l;
            std::uint64_t octets = 0, lines = 0;
            bool ended = false;
            while (conn->line(l, Clock::now() + timeout, true)) {
              if (l == ".\r\n") {
                ended = true;
                break;
              }
              octets += l.size();
              ++lines;
            }
            conn->note(fmt::format("C: [content: {} octets, {} lines]{}", octets, lines, ended ? " ." : ""));
            if (!ended) failed(s, conn->closed() ? "the client closed the connection before the end of data" : "the end of data did not come in time");
            break;
          }
          optional_matched = p.optional;
          for (std::uint32_t i = 0; i < p.count && r.verdict == Verdict::pass; ++i) {
            std::string l;
            if (!conn->line(l, Clock::now() + timeout)) {
              optional_matched = false;
              if (p.optional) break;
              failed(s, fmt::format("expected the client's {}, but {}", p.text,
                                    conn->closed() ? "it closed the connection" : fmt::format("nothing came within {} ms", timeout.count())));
              break;
            }
            std::string cmd = l;
            while (!cmd.empty() && (cmd.back() == '\n' || cmd.back() == '\r')) cmd.pop_back();
            if (!p.matches(cmd)) {
              if (p.optional) {
                optional_matched = false;
                conn->put_back(l);
                r.transcript.pop_back();  // shown again when it is read for the next step
                break;
              }
              failed(s, fmt::format("expected the client's {}, got '{}'", p.text, printable(cmd)));
            }
          }
          break;
        }
        case ScenarioStep::Kind::expect_close: {
          std::string instead;
          if (!conn || !conn->wait_closed(Clock::now() + timeout, instead)) {
            while (!instead.empty() && (instead.back() == '\n' || instead.back() == '\r')) instead.pop_back();
            failed(s, instead.empty() ? fmt::format("the client did not close the connection within {} ms", timeout.count())
                                      : fmt::format("the client sent '{}' instead of closing the connection", printable(instead)));
          }
          break;
        }
        case ScenarioStep::Kind::wait:
          std::this_thread::sleep_for(s.wait);
          break;
        case ScenarioStep::Kind::close:  // the server goes away: the whole connection
          if (conn) conn->finish();
          conn.reset();
          r.transcript.push_back("S: (closed the connection)");
          break;
        case ScenarioStep::Kind::accept:
          accept(&s);
          break;
        case ScenarioStep::Kind::trigger:
          if (!trigger()) failed(s, "cannot run the trigger");
          break;
        case ScenarioStep::Kind::no_connection: {
          if (conn) conn->finish();
          conn.reset();
          const int fd = listener.accept(Clock::now() + s.wait);
          if (fd >= 0) {
            ::close(fd);
            failed(s, fmt::format("the client connected again within {} ms", s.wait.count()));
          }
          break;
        }
        case ScenarioStep::Kind::expect:
        case ScenarioStep::Kind::replies:
          failed(s, "a step of a client-role scenario: run it with --target");
          break;
      }
    }
  }
  if (conn) conn->finish();
  for (auto& t : triggers) t.stop(std::chrono::seconds(10));
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
