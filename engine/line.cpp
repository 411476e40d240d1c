#include "engine/line.hpp"

#include <algorithm>
#include <cstring>

namespace lockstep {

namespace {
// True when `s` (which does not contain the final LF) holds a CR that is not its last
// byte; the last one pairs with the LF that follows.
bool has_inner_cr(std::string_view s) {
  if (s.size() < 2) return false;
  return std::memchr(s.data(), '\r', s.size() - 1) != nullptr;
}
}  // namespace

bool LineSplitter::next(std::string_view& in, Line& out) {
  if (clear_next_) {
    buf_.clear();
    clear_next_ = false;
  }
  if (in.empty()) return false;
  const char* nl = static_cast<const char*>(std::memchr(in.data(), '\n', in.size()));
  const std::size_t take = nl ? static_cast<std::size_t>(nl - in.data()) + 1 : in.size();
  const std::string_view piece = in.substr(0, take);
  in.remove_prefix(take);

  // A CR that ended the previous piece is bare unless this piece starts with LF.
  if (prev_cr_ && piece.front() != '\n') bare_cr_ = true;

  if (!nl) {  // no line end yet: keep what fits under the cap, count the rest
    if (buf_.size() < cap_) buf_.append(piece.substr(0, cap_ - buf_.size()));
    if (has_inner_cr(piece)) bare_cr_ = true;
    pending_len_ += piece.size();
    prev_cr_ = piece.back() == '\r';
    return false;
  }

  const std::uint64_t total = pending_len_ + piece.size();
  out.offset = offset_;
  out.length = total;
  offset_ += total;

  const bool crlf = piece.size() >= 2 ? piece[piece.size() - 2] == '\r' : prev_cr_;
  out.end = crlf ? LineEnd::crlf : LineEnd::bare_lf;
  const std::uint64_t text_len = total - (crlf ? 2 : 1);
  out.truncated = text_len > cap_;
  const std::string_view body = piece.substr(0, piece.size() - 1);  // without the LF

  if (pending_len_ == 0) {  // fast path: the whole line is inside this chunk
    out.bare_cr = has_inner_cr(body);
    out.text = body.substr(0, std::min<std::uint64_t>(text_len, cap_));
  } else {
    if (buf_.size() < cap_) buf_.append(piece.substr(0, cap_ - buf_.size()));
    out.bare_cr = bare_cr_ || has_inner_cr(body);
    buf_.resize(static_cast<std::size_t>(std::min<std::uint64_t>(text_len, buf_.size())));
    out.text = buf_;
    clear_next_ = true;
  }
  pending_len_ = 0;
  prev_cr_ = false;
  bare_cr_ = false;
  return true;
}

}  // namespace lockstep
