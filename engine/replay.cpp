#include "engine/replay.hpp"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>

#include "engine/linereader.hpp"

namespace lockstep {

LadderReplay::LadderReplay(const Source& src, SourceInfo info, std::string name, CheckerLimits traced,
                           std::size_t max_spans)
    : src_(src), info_(std::move(info)), name_(std::move(name)), limits_(traced), max_spans_(max_spans) {}

void LadderReplay::on(Checker& checker, const SourceEvent& ev) {
  using K = SourceEvent::Kind;
  note(ev);
  current_ = &ev;
  ended_current_ = false;
  checker.on(ev);
  // An open that ended the session before it on the same connection starts the next
  // one; an end leaves nothing open (also when no session was open to end).
  if (ev.kind == K::open && ended_current_) note(ev);
  else if (ev.kind == K::end) forget(ev.conn);
  current_ = nullptr;
  // Past 64 sessions, when more than one in four needs its ladder (a server whose every
  // session breaks a rule), reading them twice costs more than tracing them all.
  if (!tracing_ && (full_ || (sessions_ >= 64 && replayed_ * 4 > sessions_))) {
    checker.trace_new_sessions(limits_.ladder);
    tracing_ = true;
  }
}

void LadderReplay::note(const SourceEvent& ev) {
  if (noted_ >= max_spans_ && !full_) {
    full_ = true;  // the sessions open now lose their chance of a ladder
    spans_.clear();
    noted_ = 0;
  }
  std::uint64_t begin = 0, end = 0;
  if (!full_ && src_.span(begin, end)) {
    spans_[ev.conn].emplace_back(begin, end);
    ++noted_;
  }
}

namespace {
// The lines of one session, read again from the file span by span as a stream (no copy
// of the whole session in memory), each ending with a LF (the file's last line may
// lack one).
struct Spans {
  const Source* src;
  const std::vector<std::pair<std::uint64_t, std::uint64_t>>* spans;
  std::size_t at = 0;        // the span being read
  std::uint64_t done = 0;    // octets of it read
  bool lf_owed = false;      // the span ended without a LF: one is owed
  bool failed = false;       // the file no longer held a span

  static ssize_t read(void* cookie, char* buf, std::size_t size) {
    auto& s = *static_cast<Spans*>(cookie);
    std::size_t n = 0;
    while (n < size && !s.failed) {
      if (s.lf_owed) {
        buf[n++] = '\n';
        s.lf_owed = false;
        continue;
      }
      if (s.at == s.spans->size()) break;
      const auto [begin, end] = (*s.spans)[s.at];
      const std::uint64_t left = end - begin - s.done;
      const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(left, size - n));
      if (take > 0 && !s.src->reread(begin + s.done, buf + n, take)) {
        s.failed = true;
        break;
      }
      n += take;
      s.done += take;
      if (s.done == end - begin) {
        s.lf_owed = end == begin || buf[n - 1] != '\n';
        ++s.at;
        s.done = 0;
      }
    }
    return static_cast<ssize_t>(n);
  }
};
}  // namespace

void LadderReplay::forget(const std::string& conn) {
  if (auto it = spans_.find(conn); it != spans_.end()) {
    noted_ -= it->second.size();
    spans_.erase(it);
  }
}

LadderReplay::Outcome LadderReplay::complete(SessionResult& r) {
  if (r.traced) {  // its ladder was kept from the start
    forget(r.conn);
    return Outcome::as_is;
  }
  ++sessions_;
  auto it = spans_.find(r.conn);
  if (it == spans_.end()) {
    if (!r.has_problems()) return Outcome::as_is;
    ++unnoted_;
    return Outcome::unnoted;
  }
  const auto spans = std::move(it->second);
  noted_ -= spans.size();
  spans_.erase(it);
  if (current_ && current_->conn == r.conn) ended_current_ = true;
  if (!r.has_problems()) return Outcome::as_is;  // the report shows no ladder for it
  ++replayed_;
  const Outcome o = replay(r, spans);
  if (o == Outcome::changed) ++failed_;
  return o;
}

// The session's lines (the event that ended it included: an end, or the open that
// started the next session on its connection), read again and checked with the ladder.
LadderReplay::Outcome LadderReplay::replay(SessionResult& r,
                                           const std::vector<std::pair<std::uint64_t, std::uint64_t>>& spans) {
  Spans stream{&src_, &spans};
  cookie_io_functions_t io{};
  io.read = &Spans::read;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(::fopencookie(&stream, "r", io), std::fclose);
  if (!f) return Outcome::changed;
  auto source = make_jsonl_source(std::make_unique<LineReader>(f.get()));
  std::optional<SessionResult> traced;
  Checker again(info_, name_, [&](SessionResult&& x) {
    if (!traced) traced = std::move(x);  // the first: a session after it is not this one
  }, limits_);
  SourceEvent ev;
  while (source->next(ev)) again.on(ev);
  again.finish();
  // The same session, or the file changed under the reader.
  if (stream.failed || !traced || traced->conn != r.conn || traced->commands != r.commands ||
      traced->replies != r.replies || traced->errors != r.errors || traced->warnings != r.warnings ||
      traced->notes != r.notes || traced->findings.size() != r.findings.size() || traced->desynced != r.desynced ||
      traced->final_state != r.final_state)
    return Outcome::changed;
  r = std::move(*traced);
  return Outcome::replayed;
}

}  // namespace lockstep
