#pragma once
// The proxy: accepts LMTP clients, connects each to the upstream server, relays bytes
// unchanged in both directions, and lets the engine observe a copy of every read in the
// order the proxy saw it. Each of the --threads threads runs an io_context of its own (its
// own epoll set, as haproxy's threads have their own pollers); a connection lives on one of
// them, given round-robin as it is accepted, so its handlers run one at a time on that
// thread with no strand or lock. A connection with faults relays through two C++20 coroutines, one
// per direction, that carry out the fault stage's steps (pauses, holds, writes to either
// side). A connection without faults, the common case, is relayed by plain completion
// handlers, which cost less CPU per read and per connection than coroutines raced against
// an idle timer (measured in bench/README.md, "Proxy throughput").
#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "engine/checker.hpp"
#include "proxy/address.hpp"
#include "proxy/fault.hpp"
#include "proxy/fault_stage.hpp"
#include "proxy/recorder.hpp"

namespace lockstep::proxy {

struct ProxyOptions {
  Address listen, upstream;
  std::string record;                       // recording path (file or directory), empty: none
  unsigned threads = 1;                     // threads, each with an io_context of its own
  // Waiting for the client's next command (RFC 5321 §4.5.3.2.7: at least 5 minutes).
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(5)};
  // Waiting for a reply the client is owed; 0: the RFC 5321 §4.5.3.2 minimum for the
  // command (5 minutes, 2 for DATA, 10 after end of data).
  std::chrono::milliseconds reply_timeout{0};
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};
  std::size_t buffer = 64 * 1024;           // bytes read at a time per direction
  unsigned socket_mode = 0666;              // permissions of a listening unix socket
  bool redact = false;                      // mask message content and AUTH secrets in the recording
  std::chrono::milliseconds drain_timeout{std::chrono::seconds(10)};  // on stop, for open sessions to end
  std::vector<FaultSpec> faults;            // for new connections; changed at runtime by add/remove_fault
  std::uint64_t seed = 0;                   // of the faults' choices and jitter; 0: drawn at start
  // The web view: every connection gets a fault stage (so any reply can be held), keeps
  // its ladder, and keeps its recording in memory (up to kTapeCap) for export.
  bool intercept = false;
};

inline constexpr std::size_t kTapeCap = 16u << 20;
// The recording is written in blocks: an event reaches the file at most this long after
// it happened (sooner when 64 KiB are waiting or its connection ends).
inline constexpr std::chrono::milliseconds kRecordFlushDelay{50};

// What the control API shows of an open connection.
struct SessionInfo {
  std::string conn, client, upstream;
  std::int64_t started_us = 0;
  std::uint64_t seed = 0;
  std::vector<std::string> faults;
  std::uint64_t client_octets = 0, server_octets = 0;
  // With ProxyOptions::intercept: the engine's view so far, and interception.
  std::string state;
  std::uint64_t commands = 0, replies = 0;
  std::uint32_t errors = 0, warnings = 0, notes = 0;
  std::vector<std::string> rules;            // distinct rule IDs of its findings (at most 64)
  bool interceptable = false;                // replies can be held
  std::string hold;                          // "", "armed" (the next reply will be held) or "held"
  std::string held_label, held_reply;        // what is held: the command it answers, the reply
};

// A copy of an open connection's state, taken on its strand.
struct Snapshot {
  SessionResult result;
  std::string tape;            // its recording so far (JSONL), with intercept on
  bool tape_truncated = false;
};

// What the proxy tells its front end; called from the connection's strand.
struct ProxyHooks {
  std::function<void(const std::string& conn, const Finding&)> finding;
  std::function<void(SessionResult&&)> session;     // a connection ended
  // Whether `session` shows this session anywhere (prints it, say). A connection's end
  // writes its recording before the session is reported; one reported nowhere leaves it
  // to the recorder's next flush (within the flush delay), which spares a write per
  // connection. Unset: every session counts as reported.
  std::function<bool(const SessionResult&)> reports;
  std::function<void(const std::string& conn, const std::string& text)> event;  // opened, upstream errors
  std::function<void(const std::string& conn, const Event&)> trace;  // every engine event (live ladder)
  std::function<void()> stopped;  // after stop(): the open sessions are ending or closed
  // With intercept on: a connection ended; its recording (JSONL), cut at kTapeCap.
  std::function<void(const std::string& conn, std::string&& tape, bool truncated)> tape;
};

class Proxy {
 public:
  Proxy(ProxyOptions opts, ProxyHooks hooks);
  ~Proxy();

  // Binds the listening socket; throws std::runtime_error with a clear message when it
  // cannot (busy port, bad address, unwritable recording).
  void start();
  // Runs the proxy on `threads` threads until stop() and the connections have drained.
  void run();
  // Stops accepting; open sessions get drain_timeout to end by themselves, then are
  // closed (their recordings are completed either way). Safe from any thread.
  void stop();
  // After stop(): close the open sessions now instead of waiting for them.
  void stop_now();
  // Reopens the recording files (SIGHUP).
  void reopen();
  // The address actually bound (with the real port when 0 was asked).
  std::string local_address() const;
  boost::asio::io_context& io() { return io_; }

  // The faults new connections get. add_fault fails (false, `error` set) when the name is
  // taken; remove_fault returns whether it was there. Safe from any thread; open
  // connections keep the faults they started with.
  std::vector<FaultSpec> faults() const;
  bool add_fault(FaultSpec f, std::string& error);
  bool remove_fault(const std::string& name);
  std::vector<SessionInfo> sessions() const;
  std::optional<SessionInfo> session(const std::string& conn) const;  // an open one

  // Interception (needs intercept, or a fault on the connection). hold: the connection's
  // next complete reply is held until release(). False with `error` set when there is no
  // such open connection or it cannot hold. Safe from any thread.
  bool hold(const std::string& conn, std::string& error);
  bool release(const std::string& conn, FaultStage::Release how, std::string text, std::string& error);
  // How long a reply stays held at most before it is passed on unchanged.
  static constexpr std::chrono::minutes kMaxHold{10};
  // A copy of an open connection's result so far (its ladder needs intercept), taken on
  // its strand; nothing when it is not open.
  boost::asio::awaitable<std::optional<Snapshot>> snapshot(std::string conn);
  std::uint64_t seed() const { return opts_.seed; }
  std::uint64_t connections() const { return next_id_.load(); }

  struct Conn;  // one relayed connection (relay.cpp)

 private:
  void accept_loop();
  void serve(std::shared_ptr<Conn> c);
  void open(const std::shared_ptr<Conn>& c);
  void refuse(const std::shared_ptr<Conn>& c, const boost::system::error_code& ec);  // upstream unreachable: 421
  void relay(const std::shared_ptr<Conn>& c);
  void lost(const std::shared_ptr<Conn>& c, std::exception_ptr e);

  ProxyOptions opts_;
  ProxyHooks hooks_;
  // The first io_context: the acceptor, the control strand and the front end's servers,
  // and a share of the connections. Every io_context is run by one thread, so each socket
  // is used by that thread alone and the reactor's per-socket locks are left out (posting
  // from other threads stays safe).
  boost::asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  // The other threads' io_contexts (--threads above 1), and the next one a connection gets.
  std::vector<std::unique_ptr<boost::asio::io_context>> more_;
  unsigned next_io_ = 0;
  std::unique_ptr<boost::asio::basic_socket_acceptor<boost::asio::generic::stream_protocol>> acceptor_;
  boost::asio::generic::stream_protocol::endpoint peer_;  // the address of the connection being accepted
  boost::asio::generic::stream_protocol::endpoint upstream_;
  std::unique_ptr<Recorder> recorder_;
  std::atomic<std::uint64_t> next_id_{0};
  mutable std::mutex mu_;
  std::set<std::shared_ptr<Conn>> live_;
  mutable std::mutex faults_mu_;
  std::vector<FaultSpec> faults_;
  std::atomic<bool> stopping_{false};
  // Stopping runs on its own strand: the drain timer is touched only there.
  boost::asio::strand<boost::asio::io_context::executor_type> control_{boost::asio::make_strand(io_)};
  boost::asio::steady_timer drain_{control_};
  bool draining_ = false;
  void forget(const std::shared_ptr<Conn>& c);
  // A connection's relay is over: close, record its end, report it, forget it.
  void finish(std::shared_ptr<Conn> c);
  void failed(Conn& c, std::exception_ptr e);  // reports what a connection's handler threw
  std::shared_ptr<Conn> find(const std::string& conn) const;
  SessionInfo info_of(const Conn& c) const;
  void choose_faults(Conn& c);
};

}  // namespace lockstep::proxy
