// Reader of Postfix `lmtp -v` / `smtp -v` logs, classic syslog or Postfix's own
// maillog_file. Lines "> host: COMMAND" and "< host: REPLY" of one process form a
// session; "smtp_connect_addr: trying" (or _unix) starts one, "smtp_session_activate"
// starts one on a cached connection (mid-way: its start is in another process's log),
// and the next start or the end of the log ends it ("connection closed" is the queue
// manager's link, not the LMTP connection); delivery status lines ("status=bounced (... in reply to DATA command)") are
// attached to the session of their process. Postfix logs the end of data as "> host: ."
// but not the content. It logs a reply when it reads it, not
// when it arrives, so the log gives no wire order: only count-based proofs apply.
#include <fmt/format.h>

#include <cstdlib>
#include <ctime>
#include <deque>
#include <unordered_map>

#include "engine/source.hpp"

namespace lockstep {

namespace {
constexpr std::string_view kMonths = "JanFebMarAprMayJunJulAugSepOctNovDec";

// "Nov 21 06:07:57" (classic; the year is not logged) or "2026-11-21T06:07:57.123456+00:00".
Time parse_stamp(std::string_view l, std::size_t& rest) {
  std::tm tm{};
  Time us = 0;
  if (l.size() > 19 && l[4] == '-' && l[10] == 'T') {
    tm.tm_year = std::atoi(std::string(l.substr(0, 4)).c_str()) - 1900;
    tm.tm_mon = std::atoi(std::string(l.substr(5, 2)).c_str()) - 1;
    tm.tm_mday = std::atoi(std::string(l.substr(8, 2)).c_str());
    tm.tm_hour = std::atoi(std::string(l.substr(11, 2)).c_str());
    tm.tm_min = std::atoi(std::string(l.substr(14, 2)).c_str());
    tm.tm_sec = std::atoi(std::string(l.substr(17, 2)).c_str());
    std::size_t i = 19;
    if (i < l.size() && l[i] == '.') {
      ++i;
      int n = 0;
      while (i < l.size() && l[i] >= '0' && l[i] <= '9') {
        if (n < 6) { us = us * 10 + (l[i] - '0'); ++n; }
        ++i;
      }
      while (n++ < 6) us *= 10;
    }
    rest = l.find(' ', i);
  } else if (l.size() > 15 && l[3] == ' ' && l[15] == ' ') {
    const auto m = kMonths.find(l.substr(0, 3));
    tm.tm_year = 70;
    tm.tm_mon = m == std::string_view::npos ? 0 : static_cast<int>(m / 3);
    tm.tm_mday = std::atoi(std::string(l.substr(4, 2)).c_str());
    tm.tm_hour = std::atoi(std::string(l.substr(7, 2)).c_str());
    tm.tm_min = std::atoi(std::string(l.substr(10, 2)).c_str());
    tm.tm_sec = std::atoi(std::string(l.substr(13, 2)).c_str());
    rest = 15;
  } else {
    rest = std::string_view::npos;
    return 0;
  }
  return static_cast<Time>(timegm(&tm)) * 1000000 + us;
}

struct Proc {
  std::string conn;      // current session, empty when none is open
  std::uint32_t sessions = 0;
};

class PostfixSource final : public Source {
 public:
  explicit PostfixSource(std::unique_ptr<LineReader> in) : in_(std::move(in)) {}

  SourceInfo info() const override {
    SourceInfo i;
    i.format = "postfix";
    i.ordered = false;
    i.content_visible = false;
    i.mid_session = false;  // per session: see the open events
    i.order_note =
        "Postfix -v log: replies are logged when Postfix reads them, not when they arrive, so only the "
        "count and impossible-code proofs apply; message content is not logged";
    return i;
  }

  bool next(SourceEvent& ev) override {
    while (queue_.empty()) {
      std::string_view line;
      if (!in_->next(line)) {
        if (in_->error()) error_ = in_->error_text();
        for (auto& [pid, p] : procs_)
          if (!p.conn.empty()) end(p, last_time_, true);
        procs_.clear();
        if (queue_.empty()) return false;
        break;
      }
      parse(line);
    }
    ev = std::move(queue_.front());
    queue_.pop_front();
    return true;
  }

 private:
  void push(SourceEvent::Kind k, const std::string& conn, Dir d, std::string bytes, Time t) {
    SourceEvent e;
    e.kind = k;
    e.conn = conn;
    e.dir = d;
    e.bytes = std::move(bytes);
    e.time = t;
    queue_.push_back(std::move(e));
  }
  void end(Proc& p, Time t, bool capture_ended) {
    // "connection closed" ends the session but does not say which side closed; at the
    // end of the file the session may simply have been cut off.
    SourceEvent e;
    e.kind = SourceEvent::Kind::end;
    e.conn = p.conn;
    e.time = t;
    e.bytes = capture_ended ? "capture-ended" : "";
    queue_.push_back(std::move(e));
    p.conn.clear();
  }
  void open(Proc& p, const std::string& pid, Time t, std::string_view peer, bool mid_session) {
    p.conn = fmt::format("{}#{}", pid, ++p.sessions);
    SourceEvent e;
    e.kind = SourceEvent::Kind::open;
    e.conn = p.conn;
    e.time = t;
    e.a = "postfix[" + pid + "]";
    e.b = std::string(peer);
    if (mid_session) e.bytes = "mid-session";
    queue_.push_back(std::move(e));
    last_conn_[pid] = p.conn;
  }

  void parse(std::string_view l) {
    std::size_t rest = 0;
    const Time t = parse_stamp(l, rest);
    if (rest == std::string_view::npos) { note_skip(); return; }
    // "<host> postfix/lmtp[123]: text" (the service may be prefixed: postfix-x/lmtp).
    const auto tag = l.find("]: ", rest);
    if (tag == std::string_view::npos) { note_skip(); return; }
    const auto lb = l.rfind('[', tag);
    const auto slash = l.rfind('/', lb);
    if (lb == std::string_view::npos || slash == std::string_view::npos || slash < rest) { note_skip(); return; }
    const std::string_view service = l.substr(slash + 1, lb - slash - 1);
    if (service != "lmtp" && service != "smtp") return;  // other Postfix daemons
    const std::string pid(l.substr(lb + 1, tag - lb - 1));
    std::string_view text = l.substr(tag + 3);
    last_time_ = t;
    Proc& p = procs_[pid];

    // A new connection ("trying:"), or a cached one taken over by this process
    // ("smtp_session_activate", then RSET): the process's previous session went to the
    // cache or was closed without a trace in the log, so it ends as a cut-off capture.
    if (text.starts_with("smtp_connect_addr: trying:") || text.starts_with("smtp_connect_unix: trying:")) {
      if (!p.conn.empty()) end(p, t, true);
      // "127.0.0.1[127.0.0.1] port 24..." -> "127.0.0.1[127.0.0.1]:24"
      std::string peer(text.substr(text.find("trying: ") + 8));
      while (!peer.empty() && peer.back() == '.') peer.pop_back();
      if (const auto port = peer.rfind(" port "); port != std::string::npos) peer.replace(port, 6, ":");
      open(p, pid, t, peer, false);
      return;
    }
    if (text.starts_with("smtp_session_activate: dest=")) {
      if (!p.conn.empty()) end(p, t, true);
      open(p, pid, t, "cached connection", true);
      return;
    }
    if ((text.starts_with("> ") || text.starts_with("< ")) && text.size() > 2) {
      const Dir d = text[0] == '>' ? Dir::client : Dir::server;
      const auto sep = text.find(": ", 2);
      if (sep == std::string_view::npos) return;
      const std::string_view peer = text.substr(2, sep - 2);
      const std::string_view payload = text.substr(sep + 2);
      if (p.conn.empty()) open(p, pid, t, peer, true);  // a log excerpt starting mid-session
      push(SourceEvent::Kind::data, p.conn, d, std::string(payload) + "\r\n", t);
      return;
    }
    if (text.find("status=") != std::string_view::npos && text.find(" to=<") != std::string_view::npos) {
      const std::string conn = p.conn.empty() ? last_conn_[pid] : p.conn;
      if (!conn.empty()) push(SourceEvent::Kind::status, conn, Dir::client, std::string(text), t);
    }
  }

  void note_skip() {
    if (skipped_lines++ == 0) first_skipped = fmt::format("line {}: not a syslog or maillog line", in_->line_number());
  }

  std::unique_ptr<LineReader> in_;
  std::unordered_map<std::string, Proc> procs_;
  std::unordered_map<std::string, std::string> last_conn_;
  std::deque<SourceEvent> queue_;
  Time last_time_ = 0;
};
}  // namespace

std::unique_ptr<Source> make_postfix_source(std::unique_ptr<LineReader> in) {
  return std::make_unique<PostfixSource>(std::move(in));
}

}  // namespace lockstep
