#include "engine/reply.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace lockstep {

namespace {
bool is_digit(char c) { return c >= '0' && c <= '9'; }
}

std::string EnhancedCode::str() const { return fmt::format("{}.{}.{}", cls, subject, detail); }

ReplyLine parse_reply_line(std::string_view line) {
  ReplyLine r;
  if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2])) return r;
  r.code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
  if (line.size() == 3) return r;
  const char s = line[3];
  if (s == '-' || s == ' ') {
    r.sep = s;
    r.text = line.substr(4);
  } else {
    r.bad_sep = true;
    r.text = line.substr(3);
  }
  return r;
}

std::optional<EnhancedCode> parse_enhanced(std::string_view t) {
  // class "." subject "." detail, each sub-code 1*3digit (RFC 3463 §2)
  EnhancedCode e;
  std::size_t i = 0;
  auto number = [&](int& out, bool& lead0) {
    const std::size_t start = i;
    out = 0;
    while (i < t.size() && is_digit(t[i]) && i - start < 4) out = out * 10 + (t[i++] - '0');
    const std::size_t n = i - start;
    if (n == 0 || n > 3) return false;
    if (n > 1 && t[start] == '0') lead0 = true;
    return true;
  };
  bool lead = false;
  if (!number(e.cls, lead) || i >= t.size() || t[i] != '.') return std::nullopt;
  ++i;
  if (!number(e.subject, lead) || i >= t.size() || t[i] != '.') return std::nullopt;
  ++i;
  if (!number(e.detail, lead)) return std::nullopt;
  if (e.cls != 2 && e.cls != 4 && e.cls != 5) return std::nullopt;
  e.leading_zero = lead;
  e.followed_by_space = i < t.size() ? t[i] == ' ' : false;
  if (i < t.size() && t[i] != ' ' && t[i] != '\t') {
    // "2.1.0Ok" still starts with a code; a longer number ("2.1.0.5") does not.
    if (is_digit(t[i]) || t[i] == '.') return std::nullopt;
  }
  return e;
}

std::string_view Reply::first_text() const {
  if (lines.empty() || lines[0].size() < 4) return {};
  return std::string_view(lines[0]).substr(4);
}

std::string Reply::summary(std::size_t max) const {
  std::string s;
  if (!lines.empty()) {
    const std::string& first = lines[0];
    s.assign(first, 0, std::min(first.size(), max));
    if (first.size() > max) s += "...";
  }
  if (line_count > 1) {
    s += " (+";
    s += std::to_string(line_count - 1);
    s += " lines)";
  }
  return s;
}

bool ReplyAssembler::add(const Line& line, Time t) {
  const ReplyLine rl = parse_reply_line(line.text);
  if (!open_) {
    cur_ = Reply();
    cur_.index = next_index_;
    cur_.offset = line.offset;
    cur_.time = t;
    cur_.code = rl.code;
    open_ = true;
  }
  ++cur_.line_count;
  cur_.end = line.offset + line.length;
  if (cur_.lines.size() < kMaxLines) {
    const std::string_view kept = line.text.substr(0, kMaxText);
    cur_.lines.emplace_back(kept);
    // Passes without a branch per octet, which the compiler vectorises.
    const std::string_view text = kept.substr(std::min<std::size_t>(4, kept.size()));
    unsigned char control = 0;
    for (const char ch : text) {
      const auto c = static_cast<unsigned char>(ch);
      control |= static_cast<unsigned char>(((c < 32) & (c != '\t')) | (c == 127));
    }
    cur_.high |= has_high_octet(kept);
    cur_.control |= control != 0;
    if (line.text.size() > kMaxText || line.truncated) cur_.truncated = true;
  } else {
    cur_.truncated = true;
  }
  if (line.end == LineEnd::bare_lf) cur_.bare_lf = true;
  if (line.bare_cr) cur_.bare_cr = true;
  if (line.length > 512) cur_.long_line = true;
  if (rl.code < 0 || rl.bad_sep) cur_.malformed = true;
  if (cur_.line_count == 1) {
    if (rl.code >= 0) cur_.enhanced = parse_enhanced(rl.text);
  } else if (rl.code != cur_.code) {
    cur_.code_changed = true;
  }
  // Only a continuation line ("NNN-") keeps the reply open; anything else ends it.
  const bool more = rl.code >= 0 && rl.sep == '-';
  if (more) return false;
  if (rl.code >= 0 && rl.sep == 0 && !rl.bad_sep) cur_.bare_code = true;
  return true;
}

Reply ReplyAssembler::take() {
  open_ = false;
  ++next_index_;
  return std::move(cur_);
}

std::shared_ptr<const Reply> ReplyAssembler::take_shared() {
  open_ = false;
  ++next_index_;
  return std::make_shared<const Reply>(std::move(cur_));
}

}  // namespace lockstep
