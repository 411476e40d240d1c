#include "proxy/relay.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <algorithm>
#include <deque>
#include <random>
#include <functional>
#include <utility>
#include <fmt/format.h>

#include <cerrno>
#include <cstring>

#include "engine/jsonl.hpp"
#include "proxy/edge_read.hpp"
#include "proxy/fault_stage.hpp"

namespace lockstep::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using Socket = asio::generic::stream_protocol::socket;
constexpr auto tuple_awaitable = asio::as_tuple(use_awaitable);

namespace {
Time now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string endpoint_text(const asio::generic::stream_protocol::endpoint& ep, bool unix_socket, const std::string& fallback) {
  if (unix_socket) return fallback;
  const auto* sa = reinterpret_cast<const sockaddr*>(ep.data());
  if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
    asio::ip::tcp::endpoint t;
    // Copy only the address the family defines: the generic endpoint may report the size
    // of its whole storage.
    const std::size_t n = sa->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    std::memcpy(t.data(), ep.data(), std::min<std::size_t>(n, ep.size()));
    return t.address().is_v6() ? fmt::format("[{}]:{}", t.address().to_string(), t.port())
                               : fmt::format("{}:{}", t.address().to_string(), t.port());
  }
  return fallback;
}

// SplitMix64: a connection's seed from the run's seed and its number.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// send(2) and recv(2) without waiting, by syscall(2): the libc wrappers are cancellation
// points, and their cancellation bookkeeping cost more than the call on the relay's path.
ssize_t sys_send(int fd, const char* p, std::size_t n) {
  return ::syscall(SYS_sendto, fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL, nullptr, 0);
}
ssize_t sys_recv(int fd, char* p, std::size_t n) { return ::syscall(SYS_recvfrom, fd, p, n, MSG_DONTWAIT, nullptr, nullptr); }

// Writes what the socket takes now without waiting; the rest (or all, after an error the
// asynchronous write will then report) is left for async_write.
std::size_t send_now(Socket& s, const char* p, std::size_t n) {
  std::size_t sent = 0;
  while (sent < n) {
    const ssize_t k = sys_send(s.native_handle(), p + sent, n - sent);
    if (k > 0) {
      sent += static_cast<std::size_t>(k);
      continue;
    }
    if (k < 0 && errno == EINTR) continue;
    break;
  }
  return sent;
}

void set_nodelay(Socket& s) {
  // Replies and commands are small and latency-bound: do not wait to coalesce them.
  const int one = 1;
  ::setsockopt(s.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}
}  // namespace

// One client connection and its upstream, with the engine observing both directions.
struct Proxy::Conn {
  Conn(Proxy* owner, asio::any_io_executor ex, std::string conn_id, Socket client_sock, const ProxyOptions& o,
       Recorder* rec, const ProxyHooks& h)
      : strand(ex),
        hold(owner->io_.get_executor()),
        id(std::move(conn_id)),
        client(std::move(client_sock)),
        upstream(ex),
        proxy(owner),
        watchdog(ex),
        opts(o),
        recorder(rec),
        hooks(&h),
        checker(
            SourceInfo{"proxy", true, true, false, "live: both streams in the order the proxy read them"}, "proxy",
            [this, &h](SessionResult&& r) {
              if (ending_now) ended = std::move(r);  // end() reports it once the recording is written
              else if (h.session) h.session(std::move(r));
            },
            // No ladder unless the web view shows it: memory per connection stays small.
            CheckerLimits{o.intercept ? 2000u : 0u, o.intercept ? 500u : 100u, 60, o.redact}) {
    if (o.intercept) {
      checker.on_finding([this, &h](const std::string& conn, const Finding& f) {
        {
          std::lock_guard lock(info_mu);
          (f.severity == Severity::error ? errors : f.severity == Severity::warning ? warnings : notes) += 1;
          const std::string r(f.rule->id);
          if (rules.size() < 64 && std::find(rules.begin(), rules.end(), r) == rules.end()) rules.push_back(r);
        }
        if (h.finding) h.finding(conn, f);
      });
    } else if (h.finding) {
      checker.on_finding(h.finding);
    }
    if (h.trace) checker.on_event(h.trace);
  }

  // Records an event and hands the same event to the engine: the recording gives the
  // same findings offline as the live run.
  void emit(const SourceEvent& ev, const std::string& line) {
    if (recorder) recorder->write(id, line);
    keep(line);
    checker.on(ev);
    refresh();
  }
  // With intercept on: the recording kept in memory for export, and the engine's view.
  void keep(const std::string& line) {
    if (!opts.intercept) return;
    if (tape.size() + line.size() > kTapeCap) {
      tape_cut = true;
      return;
    }
    tape += line;
  }
  void refresh() {
    if (!opts.intercept) return;
    Session* s = checker.session(id);
    if (!s) return;
    std::lock_guard lock(info_mu);
    state = std::string(to_string(s->state()));
    commands = s->commands();
    replies = s->replies();
  }
  void observe(Dir d, std::string_view bytes) {
    if (!opts.redact && !opts.intercept) {  // the hot path: no event object, no line of its own
      const Time t = now_us();
      const TextIndex* ix = nullptr;
      if (recorder) {
        // The escape into the recording notes the line ends as it goes, so the content
        // check takes whole lines from that index and needs no pass of its own.
        thread_local TextIndex index;
        recorder->data(id, t, d, bytes, &index);
        if (index.valid) ix = &index;
      }
      checker.data(id, d, bytes, t, ix);
      return;
    }
    SourceEvent ev;
    ev.kind = SourceEvent::Kind::data;
    ev.conn = id;
    ev.dir = d;
    ev.time = now_us();
    ev.bytes.assign(bytes);
    if (!opts.redact) {
      emit(ev, jsonl_data(ev.time, id, d, bytes));
      return;
    }
    // The engine first: it knows which bytes are content or secrets.
    checker.on(ev);
    refresh();
    std::string shown(bytes);
    if (d == Dir::client) redact_client(shown);
    else redact_server(shown);
    const std::string line = jsonl_data(ev.time, id, d, shown);
    if (recorder) recorder->write(id, line);
    keep(line);
  }

  // Sizes and line structure stay: every octet but CR, LF and '.' becomes 'x'.
  static void mask(std::string& s, std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to && i < s.size(); ++i)
      if (s[i] != '\r' && s[i] != '\n' && s[i] != '.') s[i] = 'x';
  }
  void redact_client(std::string& s) {
    const std::uint64_t base = client_bytes;
    client_bytes += s.size();
    Session* session = checker.session(id);
    if (!session) return;
    for (const auto& [b, e] : session->take_redactions()) {
      if (e <= base || b >= base + s.size()) continue;  // bytes of an earlier read
      mask(s, static_cast<std::size_t>(std::max(b, base) - base), static_cast<std::size_t>(std::min<std::uint64_t>(e, base + s.size()) - base));
    }
    // Bytes the engine still holds (content waiting for DATA's reply, an unfinished
    // AUTH line) are masked when they will be secret.
    if (session->client_pending_is_secret() && session->client_parsed() < base + s.size())
      mask(s, static_cast<std::size_t>(std::max(session->client_parsed(), base) - base), s.size());
  }
  // AUTH challenges: the text of "334 " lines.
  static void redact_server(std::string& s) {
    std::size_t at = 0;
    while (at < s.size()) {
      const std::size_t eol = s.find('\n', at);
      const std::size_t end = eol == std::string::npos ? s.size() : eol;
      if (s.compare(at, 4, "334 ") == 0) mask(s, at + 4, end);
      at = end + 1;
    }
  }
  void closed(Dir d) {
    if (d == Dir::client && hold_timer) hold_timer->cancel();  // nobody waits for the held reply
    if (closed_dir[d == Dir::client ? 0 : 1]) return;
    closed_dir[d == Dir::client ? 0 : 1] = true;
    SourceEvent ev;
    ev.kind = SourceEvent::Kind::close;
    ev.conn = id;
    ev.dir = d;
    ev.time = now_us();
    emit(ev, jsonl_close(ev.time, id, d));
  }
  void end() {
    SourceEvent ev;
    ev.kind = SourceEvent::Kind::end;
    ev.conn = id;
    ev.time = now_us();
    const std::string line = jsonl_end(ev.time, id);
    if (recorder) recorder->write(id, line);
    keep(line);
    ending_now = true;
    checker.on(ev);
    ending_now = false;
    refresh();
    // The connection's events reach the file before its session is reported (and its own
    // file, per connection, is closed either way).
    if (recorder) recorder->end(id, !ended || !hooks->reports || hooks->reports(*ended));
    if (ended && hooks->session) hooks->session(std::move(*ended));
    ended.reset();
  }
  void close_sockets() {
    if (hold_timer) hold_timer->cancel();
    for (auto* t : pause)
      if (t) t->cancel();
    boost::system::error_code ig;
    client.close(ig);
    upstream.close(ig);
  }
  // A fault fired: the recording gets the event (with the stream range it wrote) before
  // the bytes, so check can tell what lockstep injected.
  void fault_note(const Step& n) {
    SourceEvent ev;
    ev.kind = SourceEvent::Kind::fault;
    ev.conn = id;
    ev.dir = n.stream;
    ev.time = now_us();
    ev.bytes = n.bytes;
    ev.offset = n.offset;
    ev.length = n.length;
    ev.located = true;
    emit(ev, jsonl_fault(ev.time, id, n.stream, n.bytes, n.offset, n.length));
  }
  void fault_info(const std::string& text) {
    SourceEvent ev;
    ev.kind = SourceEvent::Kind::fault;
    ev.conn = id;
    ev.dir = Dir::server;
    ev.time = now_us();
    ev.bytes = text;
    emit(ev, jsonl_fault(ev.time, id, Dir::server, text));
  }

  // Where the connection's handlers run, one at a time: a strand when several threads run
  // the io_context, the io_context itself when one does (a strand there would only add a
  // queue and a lock to every completion).
  // The time limit now: for the client's next command, or for a reply it is owed.
  std::chrono::steady_clock::duration limit() {
    Session* s = checker.session(id);
    const Time owed = s ? s->reply_wait_minimum() : 0;
    if (owed == 0) return opts.idle_timeout;
    if (opts.reply_timeout.count() > 0) return opts.reply_timeout;
    return std::chrono::microseconds(owed);
  }
  // Arms the watchdog for activity + limit(). Its handler keeps the connection.
  void watch() {
    watchdog.expires_at(activity + limit());
    watchdog.async_wait([this, keep = self, gen = ++watch_gen](const boost::system::error_code& ec) {
      if (ec || gen != watch_gen || !relaying) return;  // moved, or the relay is over
      if (std::chrono::steady_clock::now() < activity + limit()) {
        watch();
        return;
      }
      timed_out();
    });
  }
  // After a read: a reply that ends the wait for one can shorten the time limit (the
  // idle limit is shorter than a reply's), so the deadline may move in.
  void active() {
    if (relaying && activity + limit() < watchdog.expiry()) watch();
  }
  void timed_out() {
    Session* s = checker.session(id);
    const bool owed = s && s->reply_wait_minimum() > 0;
    SourceEvent ev;
    ev.kind = SourceEvent::Kind::timeout;
    ev.conn = id;
    ev.time = now_us();
    emit(ev, jsonl_timeout(ev.time, id));
    if (hooks->event)
      hooks->event(id, owed ? "timeout: the client waited too long for a reply; closing both sides"
                            : "timeout: the client sent nothing for too long; closing both sides");
    close_sockets();  // both directions end, and with them the relay
  }
  // A direction has ended; after the second the connection is finished, and may be
  // destroyed: the caller's last act.
  void direction_done() {
    if (--directions == 0) proxy->finish(std::move(self));
  }

  // One direction without a fault stage: read, pass on, let the engine see a copy, as a
  // chain of completion handlers (no coroutine frame or parallel group per read).
  struct Pump {
    Conn* c = nullptr;
    Socket* from = nullptr;
    Socket* to = nullptr;
    Dir d = Dir::client;
    std::size_t size = 0;                // octets read at a time
    std::unique_ptr<char[]> pending;     // the rest of a write the socket did not take
    std::optional<EdgeRead> edge;
    void start(Conn* conn, Socket& f, Socket& t, Dir dir, std::size_t bufsize);
    // Reads while there is something to read (recv(2) called directly, into the thread's
    // read buffer), then waits until the socket is readable: with an EdgeRead
    // (edge_read.hpp), on the next edge with no system call of its own; otherwise with
    // async_wait.
    void go();
    void readable(const boost::system::error_code& ec);  // a wait ended
    bool pass(const char* buf, std::size_t n);  // false: the rest is being written
    void ended(const boost::system::error_code& ec, bool writing);
    void failed(const std::exception& e);
    bool over = false;
  };

  // The connection's executor: its thread's io_context.
  asio::any_io_executor strand;
  // The first io_context runs until every connection is gone, wherever it ran: the
  // front end's output, flushed there, comes last.
  asio::executor_work_guard<asio::io_context::executor_type> hold;
  std::string id;
  Socket client, upstream;
  Proxy* proxy;
  // The relay: the time limit, the directions still running, and the reference that
  // keeps the connection while it relays.
  asio::steady_timer watchdog;
  unsigned watch_gen = 0;
  bool connecting = false, connect_timed_out = false;
  bool relaying = false;
  int directions = 0;
  std::shared_ptr<Conn> self;
  Pump pumps[2];
  asio::steady_timer* pause[2] = {nullptr, nullptr};  // a fault's pause, per direction, while it runs
  const ProxyOptions& opts;
  Recorder* recorder;
  const ProxyHooks* hooks;
  Checker checker;
  // While end() hands the end to the checker: the session's result, reported by end().
  bool ending_now = false;
  std::optional<SessionResult> ended;
  bool closed_dir[2] = {false, false};
  std::uint64_t client_bytes = 0;  // client octets seen so far (stream offset)
  std::chrono::steady_clock::time_point activity = std::chrono::steady_clock::now();
  // Faults (null: none for this connection) and the socket write locks they need: with
  // faults both directions may write to the client (lockstep's own 354).
  std::unique_ptr<FaultStage> stage;
  std::uint64_t seed = 0;
  std::vector<std::string> fault_names;
  struct WriteLock {
    bool held = false;
    std::deque<asio::steady_timer*> waiters;
  };
  WriteLock locks[2];  // [0]: the upstream socket, [1]: the client socket
  // For the control API (read from other threads).
  std::string client_text;
  Time started = now_us();
  std::atomic<std::uint64_t> octets[2] = {0, 0};
  // With intercept on (guarded by info_mu: read by the web view's threads).
  mutable std::mutex info_mu;
  std::string state;
  std::uint64_t commands = 0, replies = 0;
  std::uint32_t errors = 0, warnings = 0, notes = 0;
  std::vector<std::string> rules;
  std::string hold_state, held_label, held_reply;
  std::atomic<bool> interceptable{false};
  // On the strand: the recording kept for export, the wait for a held reply's fate.
  std::string tape;
  bool tape_cut = false;
  asio::steady_timer* hold_timer = nullptr;
  FaultStage::Release decision = FaultStage::Release::pass;
  std::string decision_text;
};

namespace {
// The relay's reads land in one buffer per thread: a read is passed on, checked and
// recorded before its handler returns, so only the rest of a write the socket did not
// take outlives it (Pump::pending). The memory a thread's connections read through stays
// in its caches, and an idle connection holds no read buffer.
char* read_buffer(std::size_t size) {
  thread_local std::unique_ptr<char[]> buf;
  thread_local std::size_t cap = 0;
  if (cap < size) {
    buf = std::make_unique_for_overwrite<char[]>(size);  // only the octets read are looked at
    cap = size;
  }
  return buf.get();
}
}  // namespace

void Proxy::Conn::Pump::start(Conn* conn, Socket& f, Socket& t, Dir dir, std::size_t bufsize) {
  c = conn;
  from = &f;
  to = &t;
  d = dir;
  size = bufsize;
  if (kEdgeRead) {
    edge.emplace(
        f, [](void* pump, const boost::system::error_code& ec) { static_cast<Pump*>(pump)->readable(ec); }, this);
  }
  go();
}

void Proxy::Conn::Pump::readable(const boost::system::error_code& ec) {
  if (!ec) {
    go();
    return;
  }
  try {
    ended(ec, false);
  } catch (const std::exception& e) {
    failed(e);
  }
}

void Proxy::Conn::Pump::go() {
  try {
    char* const buf = read_buffer(size);
    // A bounded number of full reads, then the others get their turn.
    for (int round = 0; round < 16; ++round) {
      const ssize_t n = sys_recv(from->native_handle(), buf, size);
      if (n > 0) {
        if (!pass(buf, static_cast<std::size_t>(n))) return;
        if (static_cast<std::size_t>(n) == size) continue;  // there may be more
        // A short read emptied the socket.
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        // Empty: wait.
      } else {
        ended(n == 0 ? asio::error::eof : boost::system::error_code(errno, boost::system::system_category()), false);
        return;
      }
      if (edge) {
        edge->drained(n > 0);
        edge->wait();
        return;
      }
      // The wait asks whether it is readable now (asio re-arms the descriptor), so bytes
      // that came meanwhile are not missed.
      from->async_wait(asio::socket_base::wait_read, [this](const boost::system::error_code& wait_ec) { readable(wait_ec); });
      return;
    }
    asio::post(c->strand, [this] { go(); });
  } catch (const std::exception& e) {
    failed(e);
  }
}

void Proxy::Conn::Pump::failed(const std::exception& e) {
  if (c->hooks->event) c->hooks->event(c->id, fmt::format("connection failed: {}", e.what()));
  if (!over) ended(asio::error::operation_aborted, false);
}

bool Proxy::Conn::Pump::pass(const char* buf, std::size_t n) {
  c->activity = std::chrono::steady_clock::now();
  // The bytes go on at once when the socket takes them (the usual case), then the engine
  // sees them: nothing else of this connection runs in between, so it still sees both
  // directions in the order the proxy read them, and checking and recording add no
  // latency.
  const std::size_t sent = send_now(*to, buf, n);
  c->observe(d, std::string_view(buf, n));
  c->octets[d == Dir::client ? 0 : 1] += n;
  c->active();
  if (sent == n) return true;
  // The rest waits in the pump's own buffer (the read buffer is the thread's), and no
  // more is read until it is written: backpressure.
  if (!pending) pending = std::make_unique_for_overwrite<char[]>(size);
  std::memcpy(pending.get(), buf + sent, n - sent);
  asio::async_write(*to, asio::buffer(pending.get(), n - sent),
                    [this](const boost::system::error_code& ec, std::size_t) {
                      if (ec) ended(ec, true);
                      else go();
                    });
  return false;
}

void Proxy::Conn::Pump::ended(const boost::system::error_code& ec, bool writing) {
  over = true;
  boost::system::error_code ig;
  if (writing) {
    c->closed(d == Dir::client ? Dir::server : Dir::client);
    from->close(ig);
    to->close(ig);
  } else {
    c->closed(d);
    if (ec == asio::error::eof) {
      to->shutdown(asio::socket_base::shutdown_send, ig);  // pass the half-close on
    } else {
      // A reset or a local error: close both sides, as the peer did.
      from->close(ig);
      to->close(ig);
    }
  }
  c->direction_done();  // last: it may end the connection
}

Proxy::Proxy(ProxyOptions opts, ProxyHooks hooks) : opts_(std::move(opts)), hooks_(std::move(hooks)) {
  for (unsigned i = 1; i < opts_.threads; ++i)
    more_.push_back(std::make_unique<asio::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO));
  faults_ = opts_.faults;
  if (opts_.seed == 0) opts_.seed = std::random_device{}() | (static_cast<std::uint64_t>(std::random_device{}()) << 32);
}
Proxy::~Proxy() = default;

void Proxy::start() {
  std::string err;
  if (!opts_.upstream.unix_socket && opts_.upstream.port == 0)
    throw std::runtime_error(fmt::format("upstream {}: port 0 cannot be connected to", opts_.upstream.text));
  auto up = resolve(io_, opts_.upstream, err);
  if (!up) throw std::runtime_error(err);
  upstream_ = *up;
  auto ep = resolve(io_, opts_.listen, err);
  if (!ep) throw std::runtime_error(err);
  if (opts_.listen.unix_socket) {
    // A socket file left by an earlier run would make bind fail; anything else is kept.
    struct stat st {};
    if (::lstat(opts_.listen.host.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(opts_.listen.host.c_str());
  }
  // The acceptor lives on the control strand, so stop() never races an accept.
  acceptor_ = std::make_unique<asio::basic_socket_acceptor<asio::generic::stream_protocol>>(control_);
  boost::system::error_code ec;
  acceptor_->open(ep->protocol(), ec);
  if (!ec && !opts_.listen.unix_socket) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(*ep, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot listen on {}: {}", opts_.listen.text, ec.message()));
  // Like Dovecot's LMTP socket: the MTA's delivery agent runs as another user.
  if (opts_.listen.unix_socket) ::chmod(opts_.listen.host.c_str(), static_cast<mode_t>(opts_.socket_mode));
  if (!opts_.record.empty()) {
    recorder_ = Recorder::open(opts_.record, err);
    if (!recorder_) throw std::runtime_error(err);
    recorder_->flush_on(control_, kRecordFlushDelay);
  }
  accept_loop();
}

std::string Proxy::local_address() const {
  if (opts_.listen.unix_socket) return opts_.listen.text;
  return endpoint_text(acceptor_->local_endpoint(), false, opts_.listen.text);
}

void Proxy::accept_loop() {
  // The accepted socket's executor becomes the connection's (Conn::strand): the threads'
  // io_contexts in turn.
  const unsigned k = next_io_++ % (1 + static_cast<unsigned>(more_.size()));
  asio::any_io_executor ex = k == 0 ? io_.get_executor() : more_[k - 1]->get_executor();
  // The client's address comes with the accept (no getpeername(2) later).
  acceptor_->async_accept(ex, peer_, [this](boost::system::error_code ec, Socket s) {
    if (stopping_) return;
    if (!ec) {
      const std::string id = std::to_string(++next_id_);
      accepted(s);
      auto c = std::make_shared<Conn>(this, s.get_executor(), id, std::move(s), opts_, recorder_.get(), hooks_);
      c->client_text = opts_.listen.unix_socket ? std::string("unix") : endpoint_text(peer_, false, "?");
      {
        std::lock_guard lock(mu_);
        live_.insert(c);
      }
      serve(c);
    } else if (ec != asio::error::operation_aborted && hooks_.event) {
      hooks_.event("-", fmt::format("accept failed: {}", ec.message()));
    }
    if (!stopping_ && acceptor_->is_open()) accept_loop();
  });
}

namespace {
// Relays one direction through the fault stage until EOF or an error.
awaitable<void> transfer(std::shared_ptr<Proxy::Conn> c, Socket& from, Socket& to, Dir d, std::size_t bufsize);
}  // namespace

// A connection's setup runs as completion handlers on its own executor, like its relay:
// no coroutine frame or parallel group per connection.
void Proxy::serve(std::shared_ptr<Conn> c) {
  asio::dispatch(c->strand, [this, c] {
    try {
      open(c);
    } catch (const std::exception&) {
      lost(c, std::current_exception());
    }
  });
}

void Proxy::open(const std::shared_ptr<Conn>& c) {
  {
    SourceEvent ev;
    ev.kind = SourceEvent::Kind::open;
    ev.conn = c->id;
    ev.time = now_us();
    ev.a = c->client_text;
    ev.b = opts_.upstream.text;
    c->emit(ev, jsonl_open(ev.time, c->id, ev.a, ev.b));
  }
  if (hooks_.event) hooks_.event(c->id, fmt::format("open {} -> {}", c->client_text, opts_.upstream.text));
  choose_faults(*c);
  boost::system::error_code ec;
  c->upstream.open(upstream_.protocol(), ec);
  if (ec) {
    refuse(c, ec);
    return;
  }
  // Connect upstream, with a time limit: the watchdog's timer, before the relay needs it.
  // When it expires first, closing the socket ends the connect.
  c->connecting = true;
  c->watchdog.expires_after(opts_.connect_timeout);
  c->watchdog.async_wait([c](const boost::system::error_code& wait_ec) {
    if (wait_ec || !c->connecting) return;
    c->connect_timed_out = true;
    boost::system::error_code ig;
    c->upstream.close(ig);
  });
  before_connect(c->upstream);
  c->upstream.async_connect(upstream_, [this, c](boost::system::error_code connect_ec) {
    try {
      after_connect(c->upstream);
      c->connecting = false;
      c->watchdog.cancel();
      if (c->connect_timed_out) connect_ec = asio::error::timed_out;
      if (connect_ec) refuse(c, connect_ec);
      else relay(c);
    } catch (const std::exception&) {
      lost(c, std::current_exception());
    }
  });
}

void Proxy::refuse(const std::shared_ptr<Conn>& c, const boost::system::error_code& ec) {
  // RFC 5321 §3.8: tell the client the service is not available.
  auto reply = std::make_shared<const std::string>(
      fmt::format("421 4.4.0 lockstep: upstream {} unreachable: {}\r\n", opts_.upstream.text, ec.message()));
  {
    SourceEvent ev;
    ev.kind = SourceEvent::Kind::fault;
    ev.conn = c->id;
    ev.dir = Dir::server;
    ev.time = now_us();
    ev.bytes = fmt::format("upstream unreachable ({}): lockstep answered 421 and closed", ec.message());
    c->emit(ev, jsonl_fault(ev.time, c->id, Dir::server, ev.bytes));
  }
  if (hooks_.event)
    hooks_.event(c->id, fmt::format("upstream {} unreachable: {}; the client got 421", opts_.upstream.text, ec.message()));
  c->observe(Dir::server, *reply);
  asio::async_write(c->client, asio::buffer(*reply), [this, c, reply](const boost::system::error_code&, std::size_t) {
    try {
      c->closed(Dir::server);
      boost::system::error_code ig;
      c->client.shutdown(asio::socket_base::shutdown_send, ig);
      finish(c);
    } catch (const std::exception&) {
      lost(c, std::current_exception());
    }
  });
}

// Both directions and the time limit, until both directions end (Conn::direction_done
// finishes the connection then).
void Proxy::relay(const std::shared_ptr<Conn>& c) {
  if (!opts_.upstream.unix_socket) set_nodelay(c->upstream);
  if (!opts_.listen.unix_socket) set_nodelay(c->client);
  c->self = c;
  c->relaying = true;
  c->directions = 2;
  c->watch();
  if (c->stage) {
    for (const Dir d : {Dir::client, Dir::server}) {
      Socket& from = d == Dir::client ? c->client : c->upstream;
      Socket& to = d == Dir::client ? c->upstream : c->client;
      asio::co_spawn(c->strand, transfer(c, from, to, d, opts_.buffer), [this, c](std::exception_ptr e) {
        if (e) failed(*c, e);
        c->direction_done();
      });
    }
    return;
  }
  c->pumps[0].start(c.get(), c->client, c->upstream, Dir::client, opts_.buffer);
  c->pumps[1].start(c.get(), c->upstream, c->client, Dir::server, opts_.buffer);
}

// What a connection's handler threw: reported, and the connection closed and forgotten.
void Proxy::lost(const std::shared_ptr<Conn>& c, std::exception_ptr e) {
  failed(*c, e);
  c->close_sockets();
  forget(c);
}

void Proxy::failed(Conn& c, std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    if (hooks_.event) hooks_.event(c.id, fmt::format("connection failed: {}", ex.what()));
  }
}

void Proxy::finish(std::shared_ptr<Conn> c) {
  c->relaying = false;
  c->watchdog.cancel();
  c->close_sockets();
  c->end();
  if (hooks_.tape && opts_.intercept) hooks_.tape(c->id, std::move(c->tape), c->tape_cut);
  forget(c);
}

// The faults of a new connection, fixed for its life. Each fault draws one number from
// the connection's seed, so a run with the same seed and faults chooses the same.
void Proxy::choose_faults(Conn& c) {
  const std::uint64_t n = std::stoull(c.id);
  c.seed = mix(opts_.seed ^ n);
  std::vector<FaultSpec> chosen;
  if (std::vector<FaultSpec> all = faults(); !all.empty()) {  // no generator to seed without faults
    std::mt19937_64 rng(c.seed);
    std::uniform_real_distribution<double> draw(0, 1);
    for (auto& f : all)
      if (selects(f, n, draw(rng))) chosen.push_back(std::move(f));
  }
  if (chosen.empty()) {
    // The web view can hold any reply: a stage without faults passes bytes on unchanged,
    // replies once complete.
    if (opts_.intercept) {
      c.stage = std::make_unique<FaultStage>(std::vector<FaultSpec>{}, c.seed);
      c.interceptable = true;
    }
    return;
  }
  std::string names;
  for (const auto& f : chosen) {
    names += fmt::format("{}{}", names.empty() ? "" : "; ", f.name == f.spec ? f.spec : fmt::format("{} ({})", f.name, f.spec));
    c.fault_names.push_back(f.name);
  }
  const std::string text = fmt::format("faults on this connection: {}; seed {}", names, c.seed);
  c.fault_info(text);
  if (hooks_.event) hooks_.event(c.id, text);
  c.stage = std::make_unique<FaultStage>(std::move(chosen), c.seed);
  c.interceptable = true;
}

std::vector<FaultSpec> Proxy::faults() const {
  std::lock_guard lock(faults_mu_);
  return faults_;
}

bool Proxy::add_fault(FaultSpec f, std::string& error) {
  std::lock_guard lock(faults_mu_);
  for (const auto& g : faults_)
    if (g.name == f.name) {
      error = fmt::format("a fault named '{}' exists already", f.name);
      return false;
    }
  faults_.push_back(std::move(f));
  return true;
}

bool Proxy::remove_fault(const std::string& name) {
  std::lock_guard lock(faults_mu_);
  auto it = std::find_if(faults_.begin(), faults_.end(), [&](const FaultSpec& f) { return f.name == name; });
  if (it == faults_.end()) return false;
  faults_.erase(it);
  return true;
}

SessionInfo Proxy::info_of(const Conn& c) const {
  SessionInfo s;
  s.conn = c.id;
  s.client = c.client_text;
  s.upstream = opts_.upstream.text;
  s.started_us = c.started;
  s.seed = c.seed;
  s.faults = c.fault_names;
  s.client_octets = c.octets[0].load();
  s.server_octets = c.octets[1].load();
  s.interceptable = c.interceptable.load();
  std::lock_guard info(c.info_mu);
  s.state = c.state;
  s.commands = c.commands;
  s.replies = c.replies;
  s.errors = c.errors;
  s.warnings = c.warnings;
  s.notes = c.notes;
  s.rules = c.rules;
  s.hold = c.hold_state;
  s.held_label = c.held_label;
  s.held_reply = c.held_reply;
  return s;
}

std::vector<SessionInfo> Proxy::sessions() const {
  std::vector<SessionInfo> out;
  {
    std::lock_guard lock(mu_);
    for (const auto& c : live_) out.push_back(info_of(*c));
  }
  std::sort(out.begin(), out.end(), [](const SessionInfo& a, const SessionInfo& b) {
    return a.conn.size() != b.conn.size() ? a.conn.size() < b.conn.size() : a.conn < b.conn;
  });
  return out;
}

std::optional<SessionInfo> Proxy::session(const std::string& conn) const {
  auto c = find(conn);
  if (!c) return std::nullopt;
  return info_of(*c);
}

std::shared_ptr<Proxy::Conn> Proxy::find(const std::string& conn) const {
  std::lock_guard lock(mu_);
  for (const auto& c : live_)
    if (c->id == conn) return c;
  return nullptr;
}

bool Proxy::hold(const std::string& conn, std::string& error) {
  auto c = find(conn);
  if (!c) {
    error = fmt::format("no open connection '{}'", conn);
    return false;
  }
  if (!c->interceptable) {
    error = fmt::format("connection {} cannot hold replies: start the proxy with --ui (or give it a fault)", conn);
    return false;
  }
  {
    std::lock_guard lock(c->info_mu);
    if (c->hold_state == "held") {
      error = fmt::format("connection {} holds a reply already: release it first", conn);
      return false;
    }
    c->hold_state = "armed";
  }
  asio::post(c->strand, [c] {
    if (c->stage) c->stage->hold_next();
  });
  return true;
}

bool Proxy::release(const std::string& conn, FaultStage::Release how, std::string text, std::string& error) {
  auto c = find(conn);
  if (!c) {
    error = fmt::format("no open connection '{}'", conn);
    return false;
  }
  {
    std::lock_guard lock(c->info_mu);
    if (c->hold_state != "held") {
      error = fmt::format("connection {} holds no reply", conn);
      return false;
    }
  }
  asio::post(c->strand, [c, how, text = std::move(text)] {
    if (!c->hold_timer) return;
    c->decision = how;
    c->decision_text = text;
    c->hold_timer->cancel();
  });
  return true;
}

awaitable<std::optional<Snapshot>> Proxy::snapshot(std::string conn) {
  auto c = find(conn);
  if (!c) co_return std::nullopt;
  // A plain function object posted to the strand, and a timer whose deadline it sets to
  // wake the caller. (A capturing coroutine lambda given to co_spawn here freed the
  // connection under GCC 12.)
  auto out = std::make_shared<std::optional<Snapshot>>();
  auto done = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor, std::chrono::steady_clock::time_point::max());
  asio::post(c->strand, [c, out, done] {
    if (const SessionResult* r = c->checker.current(c->id)) {
      Snapshot s;
      s.result = *r;
      s.tape = c->tape;
      s.tape_truncated = c->tape_cut;
      *out = std::move(s);
    }
    // An expired deadline wakes the waiter whether or not it is waiting yet.
    asio::post(done->get_executor(), [done] { done->expires_at(std::chrono::steady_clock::time_point::min()); });
  });
  co_await done->async_wait(tuple_awaitable);
  co_return std::move(*out);
}

void Proxy::forget(const std::shared_ptr<Conn>& c) {
  std::lock_guard lock(mu_);
  live_.erase(c);
  // The last session ended while draining: nothing is left to wait for.
  if (stopping_ && live_.empty()) asio::post(control_, [this] { drain_.cancel(); });
}

namespace {
// Write locks: with faults, both directions may write to one socket; on the connection's
// strand, a waiter is handed the lock by cancelling its timer. False when the wait was
// cancelled for another reason (the relay is ending).
awaitable<bool> lock(Proxy::Conn& c, int which) {
  auto& l = c.locks[which];
  if (!l.held) {
    l.held = true;
    co_return true;
  }
  asio::steady_timer t(c.strand, std::chrono::steady_clock::time_point::max());
  l.waiters.push_back(&t);
  co_await t.async_wait(tuple_awaitable);
  auto it = std::find(l.waiters.begin(), l.waiters.end(), &t);
  if (it == l.waiters.end()) co_return true;  // handed over
  l.waiters.erase(it);
  co_return false;
}
void unlock(Proxy::Conn& c, int which) {
  auto& l = c.locks[which];
  if (l.waiters.empty()) {
    l.held = false;
    return;
  }
  auto* t = l.waiters.front();
  l.waiters.pop_front();
  t->cancel();
}

// Carries out what the fault stage decided; false when the relay is over.
awaitable<bool> execute(std::shared_ptr<Proxy::Conn> c, std::vector<Step>& steps, Dir d) {
  boost::system::error_code ig;
  // By index: a released hold appends the steps that follow it.
  for (std::size_t i = 0; i < steps.size(); ++i) {
    Step st = std::move(steps[i]);
    switch (st.kind) {
      case Step::Kind::note:
        c->fault_note(st);
        if (c->hooks->event) c->hooks->event(c->id, fmt::format("fault: {}", st.bytes));
        break;
      case Step::Kind::wait: {
        // The proxy's own time limit counts from the end of the pause.
        c->activity = std::chrono::steady_clock::now() + st.delay;
        asio::steady_timer t(c->strand, st.delay);
        c->pause[d == Dir::client ? 0 : 1] = &t;
        auto [ec] = co_await t.async_wait(tuple_awaitable);
        c->pause[d == Dir::client ? 0 : 1] = nullptr;
        if (ec) co_return false;
        break;
      }
      case Step::Kind::write: {
        const int which = st.stream == Dir::client ? 0 : 1;
        Socket& to = which == 0 ? c->upstream : c->client;
        if (!co_await lock(*c, which)) co_return false;
        c->observe(st.stream, st.bytes);
        c->octets[which] += st.bytes.size();
        auto [ec, n] = co_await asio::async_write(to, asio::buffer(st.bytes), tuple_awaitable);
        unlock(*c, which);
        if (ec) {
          c->closed(which == 0 ? Dir::server : Dir::client);
          c->close_sockets();
          co_return false;
        }
        break;
      }
      case Step::Kind::hold: {
        // Interception: the reply waits for the web view's decision (or kMaxHold, or
        // the client leaving); the time limits do not run meanwhile.
        {
          std::lock_guard lock(c->info_mu);
          c->hold_state = "held";
          c->held_label = c->stage->held_label();
          c->held_reply = st.bytes.substr(0, 4096);
        }
        if (c->hooks->event) c->hooks->event(c->id, fmt::format("holding the reply to {}", c->stage->held_label()));
        c->activity = std::chrono::steady_clock::now() + Proxy::kMaxHold;
        c->decision = FaultStage::Release::pass;
        c->decision_text.clear();
        asio::steady_timer t(c->strand, Proxy::kMaxHold);
        c->hold_timer = &t;
        co_await t.async_wait(tuple_awaitable);
        c->hold_timer = nullptr;
        c->activity = std::chrono::steady_clock::now();
        {
          std::lock_guard lock(c->info_mu);
          c->hold_state.clear();
          c->held_label.clear();
          c->held_reply.clear();
        }
        std::vector<Step> more;
        c->stage->release(c->decision, c->decision_text, now_us(), more);
        for (auto& m : more) steps.push_back(std::move(m));
        break;
      }
      case Step::Kind::close:
        c->closed(Dir::server);
        c->client.shutdown(asio::socket_base::shutdown_both, ig);
        c->upstream.shutdown(asio::socket_base::shutdown_both, ig);
        c->close_sockets();
        co_return false;
      case Step::Kind::reset: {
        c->closed(Dir::server);
        const ::linger lg{1, 0};  // close with RST
        ::setsockopt(c->client.native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        c->close_sockets();
        co_return false;
      }
    }
  }
  steps.clear();
  co_return true;
}

awaitable<void> transfer(std::shared_ptr<Proxy::Conn> c, Socket& from, Socket& to, Dir d, std::size_t bufsize) {
  const auto buf = std::make_unique_for_overwrite<char[]>(bufsize);
  std::vector<Step> steps;
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buf.get(), bufsize), tuple_awaitable);
    if (ec) {
      // What the fault stage still holds goes out before the close is passed on.
      if (ec == asio::error::eof) {
        c->stage->eof(d, steps);
        if (!co_await execute(c, steps, d)) co_return;
      }
      c->closed(d);
      boost::system::error_code ig;
      if (ec == asio::error::eof) {
        to.shutdown(asio::socket_base::shutdown_send, ig);  // pass the half-close on
      } else {
        from.close(ig);
        to.close(ig);
      }
      co_return;
    }
    c->activity = std::chrono::steady_clock::now();
    c->stage->from(d, std::string_view(buf.get(), n), now_us(), steps);
    if (!co_await execute(c, steps, d)) co_return;
    c->active();
  }
}
}  // namespace

void Proxy::run() {
  // The other threads run until the first io_context has run out of work, which it does
  // only after the last connection is gone (Conn::hold).
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep;
  std::vector<std::thread> pool;
  for (auto& io : more_) {
    keep.push_back(asio::make_work_guard(*io));
    pool.emplace_back([&io = *io] { io.run(); });
  }
  io_.run();
  keep.clear();
  for (auto& t : pool) t.join();
}

void Proxy::stop() {
  stopping_ = true;
  asio::post(control_, [this] {
    boost::system::error_code ig;
    if (acceptor_) acceptor_->close(ig);
    if (draining_) return;
    draining_ = true;
    {
      std::lock_guard lock(mu_);
      if (live_.empty()) {
        if (hooks_.stopped) hooks_.stopped();
        return;
      }
    }
    drain_.expires_after(opts_.drain_timeout);
    drain_.async_wait([this](const boost::system::error_code&) {
      {
        std::lock_guard lock(mu_);
        for (const auto& c : live_) asio::post(c->strand, [c] { c->close_sockets(); });
      }
      if (hooks_.stopped) hooks_.stopped();
    });
  });
}

void Proxy::stop_now() {
  asio::post(control_, [this] { drain_.cancel(); });  // the drain handler closes them all
}

void Proxy::reopen() {
  if (recorder_) recorder_->reopen();
}

}  // namespace lockstep::proxy
