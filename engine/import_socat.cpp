// Reader of `socat -v` dumps: a header line "> 2026/11/21 05:25:27.000554167  length=23
// from=0 to=22" ("<" for server to client) opens a block; inside it CR is printed as
// the two characters \r and each LF ends a printed line. The relay saw both directions,
// so the order of blocks is the order on the wire.
#include <fmt/format.h>

#include <cstdlib>
#include <ctime>
#include <deque>

#include "engine/source.hpp"

namespace lockstep {

namespace {
bool digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// "2026/11/21 05:25:27.000554167" -> microseconds. socat 1.7.4 prints the microseconds
// zero-padded to nine digits, so the fraction's value is the microsecond count.
Time parse_time(std::string_view date, std::string_view clock) {
  if (date.size() != 10 || clock.size() < 8) return 0;
  std::tm tm{};
  tm.tm_year = std::atoi(std::string(date.substr(0, 4)).c_str()) - 1900;
  tm.tm_mon = std::atoi(std::string(date.substr(5, 2)).c_str()) - 1;
  tm.tm_mday = std::atoi(std::string(date.substr(8, 2)).c_str());
  tm.tm_hour = std::atoi(std::string(clock.substr(0, 2)).c_str());
  tm.tm_min = std::atoi(std::string(clock.substr(3, 2)).c_str());
  tm.tm_sec = std::atoi(std::string(clock.substr(6, 2)).c_str());
  Time us = 0;
  if (clock.size() > 9 && clock[8] == '.') us = std::atoll(std::string(clock.substr(9)).c_str());
  if (us >= 1000000) us /= 1000;  // nanoseconds, from a socat that prints them properly
  return static_cast<Time>(timegm(&tm)) * 1000000 + us;
}

struct Header {
  Dir dir;
  Time time;
  std::uint64_t length = 0, from = 0;
};

bool parse_header(std::string_view l, Header& h) {
  if (l.size() < 30 || (l[0] != '>' && l[0] != '<') || l[1] != ' ') return false;
  h.dir = l[0] == '>' ? Dir::client : Dir::server;
  const std::string_view date = l.substr(2, 10);
  const auto sp = l.find(' ', 13);
  const std::string_view clock = l.substr(13, sp == std::string_view::npos ? sp : sp - 13);
  const auto len = l.find("length=");
  const auto from = l.find("from=");
  if (len == std::string_view::npos || from == std::string_view::npos || date[4] != '/') return false;
  auto num = [&](std::size_t at) {
    std::size_t e = at;
    while (e < l.size() && l[e] >= '0' && l[e] <= '9') ++e;
    return l.substr(at, e - at);
  };
  const auto ls = num(len + 7), fs = num(from + 5);
  if (!digits(ls) || !digits(fs)) return false;
  h.length = std::strtoull(std::string(ls).c_str(), nullptr, 10);
  h.from = std::strtoull(std::string(fs).c_str(), nullptr, 10);
  h.time = parse_time(date, clock);
  return true;
}

class SocatSource final : public Source {
 public:
  explicit SocatSource(std::unique_ptr<LineReader> in) : in_(std::move(in)) {}

  SourceInfo info() const override {
    SourceInfo i;
    i.format = "socat";
    i.ordered = true;
    i.content_visible = true;
    i.order_note = "socat -v relay dump: blocks in the order the relay read them";
    return i;
  }

  bool next(SourceEvent& ev) override {
    while (queue_.empty()) {
      if (!pump()) break;
    }
    if (queue_.empty()) {
      if (in_->error()) error_ = in_->error_text();
      if (!ended_ && conn_ > 0) {
        ended_ = true;
        ev = SourceEvent{};
        ev.kind = SourceEvent::Kind::end;
        ev.conn = std::to_string(conn_);
        ev.time = last_time_;
        return true;
      }
      return false;
    }
    ev = std::move(queue_.front());
    queue_.pop_front();
    return true;
  }

 private:
  // Reads one block (or skips one line); false at the end of input.
  bool pump() {
    std::string_view line;
    if (!have_pending_) {
      if (!in_->next(line)) return false;
      pending_.assign(line);
    }
    have_pending_ = false;
    Header h;
    if (!parse_header(pending_, h)) {
      if (!pending_.empty() && pending_[0] != '#' && pending_.find(" socat[") == std::string::npos) {
        if (skipped_lines++ == 0) first_skipped = fmt::format("line {}: not a socat -v block", in_->line_number());
      }
      return true;
    }
    std::string bytes;
    while (in_->next(line)) {
      Header h2;
      if (parse_header(line, h2) || (!line.empty() && line[0] == '#') ||
          (line.size() > 20 && line.find(" socat[") != std::string_view::npos && bytes.size() >= h.length)) {
        pending_.assign(line);
        have_pending_ = true;
        break;
      }
      decode(line, bytes);
      bytes += '\n';
      if (bytes.size() > (16u << 20)) break;  // a block is at most what one read() returns: stop at 16 MiB
    }
    // socat ends the printout with a newline even when the data did not end in LF.
    if (bytes.size() == h.length + 1 && !bytes.empty() && bytes.back() == '\n') bytes.pop_back();
    if (bytes.size() != h.length && skipped_lines++ == 0)
      first_skipped = fmt::format("line {}: block of {} bytes decoded to {}", in_->line_number(), h.length, bytes.size());
    // A block starting at offset 0 in a direction that already carried bytes is a new
    // connection (socat fork).
    const std::size_t d = h.dir == Dir::client ? 0 : 1;
    if (conn_ == 0 || (h.from == 0 && seen_[d])) {
      if (conn_ > 0) {
        SourceEvent e;
        e.kind = SourceEvent::Kind::end;
        e.conn = std::to_string(conn_);
        e.time = last_time_;
        queue_.push_back(std::move(e));
      }
      ++conn_;
      seen_[0] = seen_[1] = false;
      SourceEvent o;
      o.kind = SourceEvent::Kind::open;
      o.conn = std::to_string(conn_);
      o.time = h.time;
      queue_.push_back(std::move(o));
    }
    seen_[d] = true;
    last_time_ = h.time;
    SourceEvent e;
    e.kind = SourceEvent::Kind::data;
    e.conn = std::to_string(conn_);
    e.dir = h.dir;
    e.time = h.time;
    e.bytes = std::move(bytes);
    queue_.push_back(std::move(e));
    return true;
  }

  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  static void decode(std::string_view l, std::string& out) {
    for (std::size_t i = 0; i < l.size(); ++i) {
      if (l[i] == '\\' && i + 1 < l.size()) {
        const char n = l[i + 1];
        if (n == 'r') { out += '\r'; ++i; continue; }
        if (n == 'n') { out += '\n'; ++i; continue; }
        if (n == 't') { out += '\t'; ++i; continue; }
        if (n == '\\') { out += '\\'; ++i; continue; }
        if (n == 'x' && i + 3 < l.size() && hex(l[i + 2]) >= 0 && hex(l[i + 3]) >= 0) {
          out += static_cast<char>(hex(l[i + 2]) * 16 + hex(l[i + 3]));
          i += 3;
          continue;
        }
      }
      out += l[i];
    }
  }

  std::unique_ptr<LineReader> in_;
  std::string pending_;
  bool have_pending_ = false, ended_ = false;
  std::deque<SourceEvent> queue_;
  std::uint64_t conn_ = 0;
  bool seen_[2] = {false, false};
  Time last_time_ = 0;
};
}  // namespace

std::unique_ptr<Source> make_socat_source(std::unique_ptr<LineReader> in) {
  return std::make_unique<SocatSource>(std::move(in));
}

}  // namespace lockstep
