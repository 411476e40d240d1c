#pragma once
// The session engine: fed the bytes of both directions in the order they were seen,
// it pairs every reply with its command twice — strictly by count, as the client does,
// and realigned after a desync (DESYNC-7) — and reports what broke the rules.
// Sans-I/O: no sockets, clocks or files; the caller feeds bytes and pulls events.
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/container/deque.hpp>

#include "engine/capabilities.hpp"
#include "engine/command.hpp"
#include "engine/content.hpp"
#include "engine/event.hpp"
#include "engine/fit.hpp"
#include "engine/line.hpp"
#include "engine/reply.hpp"
#include "engine/state.hpp"

namespace lockstep {

// A deque in blocks of N elements. std::deque's blocks are 512 octets: three events or
// four slots, so a session queueing and dropping them allocated every few. Like any deque
// it keeps references to its elements valid while more are added at the ends (a finding
// is filled in after it is queued).
template <class T, std::size_t N = 32>
using BlockDeque = boost::container::deque<T, void, boost::container::deque_options_t<boost::container::block_size<N>>>;

// The events a session has not handed out yet.
using EventQueue = BlockDeque<Event>;

struct SessionOptions {
  // The caller feeds both directions interleaved as they happened on the wire (a proxy,
  // a relay dump). Without it the order proofs (DESYNC-1, pipelining groups) are off.
  bool ordered = true;
  // The source may start after the greeting and LHLO (a log excerpt): nothing before
  // the first command is assumed, and replies with no command yet are ignored.
  bool mid_session = false;
  // The source holds no message content (Postfix logs): content rules are skipped and
  // the client's "." is fed as a bare end-of-data line.
  bool content_visible = true;
  // Emit the trace events (commands, replies, content, pairings, states) besides the
  // findings and the desync story. Off when only findings are wanted: it saves the
  // copies the trace needs.
  bool trace = true;
  // Note which client bytes are message content or authentication secrets, for
  // recordings shared outside (take_redactions()).
  bool redaction = false;
};

// One expected reply: a command, the greeting, or one per-recipient reply.
struct Slot {
  std::uint64_t index = 0;
  SlotKind kind = SlotKind::command;
  std::shared_ptr<const Command> cmd;  // null for the greeting and per-recipient slots
  std::uint32_t k = 0, n = 0;          // per-recipient slot k of n
  bool last = true;                    // last slot of its block
  // The RCPT command of the recipient a per-recipient slot reports on (shared, not copied).
  std::shared_ptr<const Command> rcpt_cmd;
  std::uint64_t eod_offset = 0;        // client offset of the end-of-data line
  std::uint64_t content_size = 0;      // RFC 1870 size of the content it closes
  bool content_bare = false;           // that content held a bare CR or LF
  Time time = 0;                       // when the end of data was sent
  Verb verb() const { return cmd ? cmd->verb : Verb::unknown; }
  std::string_view rcpt() const { return rcpt_cmd ? std::string_view(rcpt_cmd->path) : std::string_view(); }
  // How findings and the ladder name it: "greeting", the command line, or "end of data
  // (reply 2/3, <rcpt>)". Built when first asked for (most slots are never named) and kept:
  // a traced session names each slot once for the client's pairing and once for the true one.
  const std::string& label() const;

 private:
  mutable std::string label_;
  std::string make_label() const;
};

class Session {
 public:
  explicit Session(SessionOptions opts = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Feeds bytes seen travelling in direction `dir` at time `t`. `ix`, when the source
  // has one, describes `bytes` and spares the content check a search for line ends; the
  // findings are the same with it and without it.
  void feed(Dir dir, std::string_view bytes, Time t, const TextIndex* ix = nullptr);
  // The addresses of the two peers ("host:port", "[v6]:port", "unix:/path" or Postfix's
  // "host[addr]:port"), for the deployment rules of RFC 2033 §5.
  void set_peers(std::string_view client, std::string_view server);
  // What the connection waits for now: the RFC 5321 §4.5.3.2 minimum a client waits for
  // the oldest reply it is owed, in microseconds, or 0 when no reply is owed (the server
  // waits for the client).
  Time reply_wait_minimum() const;
  // The recorder gave up waiting at time `t` (an idle timeout). With replies owed, the
  // server kept them back although the client had stopped (PIPE-3.2-FLUSH-WHEN-IDLE).
  void timeout(Time t);
  // The peer sending in `dir` closed its side of the connection.
  void close(Dir dir, Time t);
  // No more input. `capture_ended` when the source simply stops (a log excerpt, a cut
  // capture): replies still owed are then not counted as missing.
  void finish(Time t, bool capture_ended = false);

  // Returns the next event, or nullopt when the engine needs more data.
  std::optional<Event> next();
  // Hands every pending event to `f` in order, in place (an event may be moved from),
  // then forgets them: what a loop of next() does, without moving each event out.
  // `f` must not feed this session.
  template <class F>
  void take_events(F&& f) {
    for (Event& e : pending_events()) f(e);
    clear_events();
  }

  // With SessionOptions::redaction: the client-stream ranges [begin, end) parsed since
  // the last call that hold message content or authentication secrets.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> take_redactions();
  // Client bytes up to this offset are parsed; those after it are held (an unfinished
  // line, or bytes waiting for DATA's reply), and client_pending_is_secret() says
  // whether they will be content or secrets.
  std::uint64_t client_parsed() const;
  bool client_pending_is_secret() const;

  State state() const;
  std::uint64_t commands() const;
  std::uint64_t replies() const;
  std::uint32_t errors() const;
  bool desynced() const;

 private:
  EventQueue& pending_events();
  void clear_events();

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep
