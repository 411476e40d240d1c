#include "engine/checker.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <set>

namespace lockstep {

namespace {
// Reply index -> ladder entry, for the replies that may still be paired: the most recent
// ones in index order (reply indices only grow, so adding is an append), searched by
// bisection. No allocation per reply, unlike a map.
class ReplyEntries {
 public:
  void add(std::uint64_t reply, std::size_t entry) {
    if (v_.empty() || v_.back().first < reply) v_.emplace_back(reply, entry);
  }
  void trim() {
    while (v_.size() > 512) v_.pop_front();
  }
  const std::size_t* find(std::uint64_t reply) const {
    // Pairings come for the latest replies: look at the last few before bisecting.
    for (std::size_t i = v_.size(), n = 0; i-- > 0 && n < 8; ++n) {
      if (v_[i].first == reply) return &v_[i].second;
      if (v_[i].first < reply) return nullptr;
    }
    auto it = std::lower_bound(v_.begin(), v_.end(), reply, [](const auto& e, std::uint64_t r) { return e.first < r; });
    return it != v_.end() && it->first == reply ? &it->second : nullptr;
  }

 private:
  std::deque<std::pair<std::uint64_t, std::size_t>> v_;
};
}  // namespace

struct Checker::Run {
  Run(const SourceInfo& i, bool mid, bool trace, bool redaction)
      : session(SessionOptions{i.ordered, i.mid_session || mid, i.content_visible, trace, redaction}) {}
  Session session;
  SessionResult result;
  ReplyEntries reply_entry;
  // What lockstep injected (proxy faults): stream ranges, and the findings about them.
  struct Injected { Dir dir; std::uint64_t begin, end; };
  std::deque<Injected> injected;
  std::set<std::uint32_t> injected_ids;
  bool faulted = false;  // a fault changed this session's bytes
  bool is_injected(const Finding& f) const {
    if (f.cause != 0 && injected_ids.count(f.cause)) return true;
    if (!f.located) return false;
    for (const auto& r : injected) {
      if (r.dir != f.stream) continue;
      // A removal (empty range) marks the bytes that took the removed ones' place.
      if (r.begin == r.end ? f.offset == r.begin : f.offset < r.end && f.offset + std::max<std::uint64_t>(f.length, 1) > r.begin)
        return true;
    }
    return false;
  }
  bool is_injected(Dir d, std::uint64_t offset) const {
    for (const auto& r : injected)
      if (r.dir == d && offset >= r.begin && offset < r.end) return true;
    return false;
  }
};

Checker::Checker(SourceInfo info, std::string name, Sink sink, CheckerLimits limits)
    : info_(std::move(info)), name_(std::move(name)), sink_(std::move(sink)), limits_(limits) {}

Checker::~Checker() = default;

Checker::Run& Checker::run(const std::string& conn, Time t, bool mid_session) {
  if (last_run_ && last_conn_ == conn) return *last_run_;  // consecutive events of one connection
  auto& slot = runs_[conn];
  if (!slot) {
    const bool trace = limits_.ladder > 0 || static_cast<bool>(on_event_);
    slot = std::make_unique<Run>(info_, mid_session, trace, limits_.redaction);
    slot->result.traced = limits_.ladder > 0;
    slot->result.source = name_;
    slot->result.conn = conn;
    slot->result.info = info_;
    slot->result.start = t;
  }
  last_conn_ = conn;
  last_run_ = slot.get();
  return *slot;
}

void Checker::on(const SourceEvent& ev) {
  using K = SourceEvent::Kind;
  switch (ev.kind) {
    case K::open: {
      if (runs_.count(ev.conn)) done(ev.conn, ev.time, false);
      Run& r = run(ev.conn, ev.time, ev.bytes == "mid-session");
      r.result.client = ev.a;
      r.result.server = ev.b;
      r.session.set_peers(ev.a, ev.b);
      drain(r);
      break;
    }
    case K::data:
      data(ev.conn, ev.dir, ev.bytes, ev.time, ev.index.valid ? &ev.index : nullptr);
      break;
    case K::close: {
      Run& r = run(ev.conn, ev.time);
      r.session.close(ev.dir, ev.time);
      drain(r);
      break;
    }
    case K::end:
      if (runs_.count(ev.conn)) done(ev.conn, ev.time, ev.bytes == "capture-ended");
      break;
    case K::status: {
      Run& r = run(ev.conn, ev.time);
      r.result.statuses.push_back(ev.bytes);
      break;
    }
    case K::timeout: {
      Run& r = run(ev.conn, ev.time);
      r.session.timeout(ev.time);
      drain(r);
      break;
    }
    case K::fault: {
      Run& r = run(ev.conn, ev.time);
      r.result.faults.push_back(ev.bytes);
      if (ev.located) {
        r.faulted = true;
        r.injected.push_back({ev.dir, ev.offset, ev.offset + ev.length});
        if (r.injected.size() > 256) r.injected.pop_front();
        if (limits_.ladder > 0) {
          if (r.result.ladder.size() < limits_.ladder) {
            LadderEntry l;
            l.dir = ev.dir;
            l.fault = true;
            l.text = ev.bytes.substr(0, 300);
            l.offset = ev.offset;
            l.time = ev.time;
            r.result.ladder.push_back(std::move(l));
          } else {
            ++r.result.ladder_dropped;
          }
        }
      }
      break;
    }
  }
}

void Checker::data(const std::string& conn, Dir dir, std::string_view bytes, Time t, const TextIndex* ix) {
  Run& r = run(conn, t);
  r.session.feed(dir, bytes, t, ix);
  drain(r);
}

void Checker::drain(Run& run) {
  SessionResult& res = run.result;
  // A new entry at the end of the ladder, or none when the ladder is full (then nothing
  // about it is formatted).
  auto add = [&](Dir dir, std::uint64_t offset, Time time, bool content = false) -> LadderEntry* {
    if (res.ladder.size() >= limits_.ladder) {
      ++res.ladder_dropped;
      return nullptr;
    }
    LadderEntry& l = res.ladder.emplace_back();
    l.dir = dir;
    l.offset = offset;
    l.time = time;
    l.content = content;
    if (run.faulted && !content) l.injected = run.is_injected(dir, offset);
    return &l;
  };
  run.session.take_events([&](Event& ev) {
    if (auto* f = std::get_if<Finding>(&ev); f && run.faulted) {
      if (run.is_injected(*f)) {
        f->injected = true;
        if (run.injected_ids.size() < 4096) run.injected_ids.insert(f->id);
      } else {
        f->after_fault = true;  // the peers' reaction to it, or their own: the reader decides
      }
    }
    if (on_event_) on_event_(res.conn, ev);
    std::visit(
        [&](auto& e) {
          using T = std::decay_t<decltype(e)>;
          if constexpr (std::is_same_v<T, CommandEvent>) {
            if (LadderEntry* l = add(Dir::client, e.command->offset, e.command->time)) l->text = e.command->label(100);
          } else if constexpr (std::is_same_v<T, ReplyEvent>) {
            if (LadderEntry* l = add(Dir::server, e.reply->offset, e.reply->time)) {
              l->text = e.reply->summary(100);
              l->reply_index = e.reply->index;
              run.reply_entry.add(e.reply->index, res.ladder.size() - 1);
            }
          } else if constexpr (std::is_same_v<T, ContentEvent>) {
            if (LadderEntry* l = add(Dir::client, e.offset, e.time, true))
              l->text = e.visible ? fmt::format("[content: {} octets, {} lines] .", e.size, e.lines)
                                  : std::string("[content not in the source] .");
          } else if constexpr (std::is_same_v<T, PairEvent>) {
            if (const std::size_t* at = run.reply_entry.find(e.reply_index)) {
              LadderEntry& l = res.ladder[*at];
              if (e.client_view) l.client_pair = std::move(e.slot);
              else {
                l.true_pair = std::move(e.slot);
                l.true_known = true;
              }
            }
          } else if constexpr (std::is_same_v<T, MispairEvent>) {
            if (res.narrative.size() < limits_.narrative) res.narrative.push_back(e.text);
            else if (res.narrative.size() == limits_.narrative) res.narrative.push_back("... (more replies out of step)");
            if (const std::size_t* at = run.reply_entry.find(e.reply_index)) res.ladder[*at].mispair = e.text;
          } else if constexpr (std::is_same_v<T, Finding>) {
            switch (e.severity) {
              case Severity::error: ++res.errors; break;
              case Severity::warning: ++res.warnings; break;
              case Severity::note: ++res.notes; break;
            }
            // Attach to the ladder entry whose bytes it is about.
            for (std::size_t i = res.ladder.size(); e.located && i-- > 0 && res.ladder.size() - i <= 256;) {
              LadderEntry& l = res.ladder[i];
              if (l.fault) continue;
              if (l.dir == e.stream && l.offset <= e.offset &&
                  (l.offset == e.offset || (l.content && e.stream == Dir::client))) {
                l.findings.push_back(e.id);
                break;
              }
            }
            if (on_finding_) on_finding_(res.conn, e);
            if (res.findings.size() < limits_.findings) res.findings.push_back(e);
            else ++res.findings_dropped;
          }
        },
        ev);
  });
  run.reply_entry.trim();  // only recent replies can still be paired
}

void Checker::done(const std::string& conn, Time t, bool capture_ended) {
  auto it = runs_.find(conn);
  if (it == runs_.end()) return;
  Run& r = *it->second;
  r.session.finish(t, capture_ended);
  drain(r);
  r.result.commands = r.session.commands();
  r.result.replies = r.session.replies();
  r.result.final_state = std::string(to_string(r.session.state()));
  r.result.desynced = r.session.desynced();
  r.result.end = t;
  SessionResult out = std::move(r.result);
  if (last_run_ == &r) last_run_ = nullptr;
  runs_.erase(it);
  sink_(std::move(out));
}

const SessionResult* Checker::current(const std::string& conn) {
  auto it = runs_.find(conn);
  if (it == runs_.end()) return nullptr;
  Run& r = *it->second;
  r.result.commands = r.session.commands();
  r.result.replies = r.session.replies();
  r.result.final_state = std::string(to_string(r.session.state()));
  r.result.desynced = r.session.desynced();
  return &r.result;
}

Session* Checker::session(const std::string& conn) {
  if (last_run_ && last_conn_ == conn) return &last_run_->session;
  auto it = runs_.find(conn);
  return it == runs_.end() ? nullptr : &it->second->session;
}

void Checker::finish() {
  while (!runs_.empty()) done(runs_.begin()->first, runs_.begin()->second->result.start, true);
}

}  // namespace lockstep
