#include "engine/content.hpp"

#include "engine/jsonl_fast.hpp"
#include "engine/simd.hpp"

#include <algorithm>
#include <cstring>

namespace lockstep {

namespace {
constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
inline bool has_zero(std::uint64_t w) { return ((w - kOnes) & ~w & kHigh) != 0; }

struct Scan {
  bool nul = false, high = false;
};
// One pass over `s` for NUL and high-bit octets, a word at a time.
Scan scan_bytes(std::string_view s) {
  Scan r;
  std::size_t i = 0;
  std::uint64_t hi = 0;
  bool z = false;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    hi |= w;
    z |= has_zero(w);
  }
  for (; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    hi |= c;
    z |= c == 0;
  }
  r.high = (hi & kHigh) != 0;
  r.nul = z;
  return r;
}

struct Pattern {
  std::uint8_t t1, t2;  // tokens around the dot
  std::string_view name, bytes;
};
// RFC 5321 §2.3.8 / §4.1.1.4 and the smtpsmug list: [T1 "." T2] with a bare CR or LF.
constexpr Pattern kPatterns[] = {
    {2, 2, "lflf", "<LF>.<LF>"},       {1, 1, "crcr", "<CR>.<CR>"},
    {1, 2, "crlf", "<CR>.<LF>"},       {2, 1, "lfcr", "<LF>.<CR>"},
    {2, 0, "lfcrlf", "<LF>.<CR><LF>"}, {0, 2, "crlflf", "<CR><LF>.<LF>"},
    {1, 0, "crcrlf", "<CR>.<CR><LF>"}, {0, 1, "crlfcr", "<CR><LF>.<CR>"},
};
}  // namespace

void ContentScanner::start(std::uint64_t stream_offset) {
  rep_ = ContentReport{};
  rep_.start = stream_offset;
  off_ = stream_offset;
  indexed_ = 0;
  line_len_ = 0;
  prev_crlf_ = true;
  pending_cr_ = false;
  hist_ = {other, other, other, crlf};  // content starts as if after a CRLF
  hist_off_ = {};
}

void ContentScanner::push(Tok t, std::uint64_t off) {
  hist_[0] = hist_[1];
  hist_[1] = hist_[2];
  hist_[2] = hist_[3];
  hist_off_[0] = hist_off_[1];
  hist_off_[1] = hist_off_[2];
  hist_off_[2] = hist_off_[3];
  hist_[3] = t;
  hist_off_[3] = off;
  auto note = [&](std::string_view name, std::string_view bytes, std::uint64_t at) {
    if (rep_.smuggling.size() < ContentReport::kMaxSmuggles) rep_.smuggling.push_back({name, bytes, at});
  };
  if (hist_[2] == dot && hist_[1] <= lf && t <= lf && !(hist_[1] == crlf && t == crlf)) {
    for (const auto& p : kPatterns)
      if (p.t1 == hist_[1] && p.t2 == t) note(p.name, p.bytes, hist_off_[1]);
  }
  if (hist_[0] == crlf && hist_[1] == nul && hist_[2] == dot && t == crlf)
    note("nullbefore", "<CR><LF><NUL>.<CR><LF>", hist_off_[0]);
  if (hist_[0] == crlf && hist_[1] == dot && hist_[2] == nul && t == crlf)
    note("nullafter", "<CR><LF>.<NUL><CR><LF>", hist_off_[0]);
}

// Byte-wise tokens, used only for the rare pieces that hold a bare CR, a bare LF, a NUL
// or a dot next to a line end; ordinary text skips it.
void ContentScanner::tokens(std::string_view s, std::uint64_t off) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (pending_cr_) {
      pending_cr_ = false;
      if (c == '\n') { push(crlf, pending_cr_off_); continue; }
      push(cr, pending_cr_off_);
    }
    switch (c) {
      case '\r': pending_cr_ = true; pending_cr_off_ = off + i; break;
      case '\n': push(lf, off + i); break;
      case '\0': push(nul, off + i); break;
      case '.': push(dot, off + i); break;
      default:
        if (hist_[3] != other) push(other, off + i);
    }
  }
}

void ContentScanner::end_line(std::uint64_t len, bool crlf_end) {
  ++rep_.lines;
  rep_.size += len;
  std::uint64_t counted = len;
  const std::uint64_t line_off = off_ - len;
  if (head_[0] == '.' && len >= 2) {
    if (head_[1] == '.') {  // stuffed: the server deletes the first dot (RFC 5321 §4.5.2)
      --rep_.size;
      --counted;
    } else if (!(len == 2 && !crlf_end) && !(len == 3 && head_[1] == '\r')) {
      rep_.unstuffed_dot.add(line_off);
    }
  }
  rep_.max_line = std::max(rep_.max_line, counted);
  if (counted > 1000) rep_.long_lines.add(line_off);
  if (!crlf_end) rep_.bare_lf.add(off_ - 1);
  prev_crlf_ = crlf_end;
  line_len_ = 0;
}

// The fast path: whole CRLF lines of ordinary text, a block at a time. It gathers the
// line statistics first, then checks the block in one SIMD pass; a block holding
// anything unusual (NUL, a bare CR or LF) is left to the byte-exact path below. With a
// hint, the line ends come from its index and the octets are known to be plain text, so
// neither the search for LF nor the check pass runs.
std::size_t ContentScanner::fast_block(std::string_view rest, const TextHint* hint) {
  if (line_len_ != 0 || pending_cr_ || !prev_crlf_ || hist_[3] != crlf) return 0;
  const char* base = rest.data();
  const std::size_t limit = std::min<std::size_t>(rest.size(), 1 << 18);
  const std::uint32_t* ends = nullptr;
  const std::uint32_t* ends_end = nullptr;
  std::size_t at = 0;  // where `rest` starts in the hint's octets
  if (hint) {
    at = static_cast<std::size_t>(base - hint->base);
    ends_end = hint->ix->lf.data() + hint->ix->lf.size();
    ends = std::lower_bound(hint->ix->lf.data(), ends_end, at);
  }
  std::size_t pos = 0;
  bool eod = false;
  std::uint64_t size = 0, lines = 0, max_line = rep_.max_line;
  Occurrence long_lines = rep_.long_lines, unstuffed = rep_.unstuffed_dot;
  while (pos < limit) {
    const char* line = base + pos;
    std::size_t len;
    if (hint) {
      if (ends == ends_end || *ends - at >= limit) break;
      len = *ends++ - at - pos + 1;
    } else {
      const char* nl = static_cast<const char*>(std::memchr(line, '\n', limit - pos));
      if (!nl) break;
      len = static_cast<std::size_t>(nl - line) + 1;
    }
    std::uint64_t counted = len;
    if (line[0] == '.') {
      if (len == 3 && line[1] == '\r') {
        eod = true;
        break;
      }
      if (len >= 2 && line[1] == '.') --counted;
      else unstuffed.add(off_ + pos);
    }
    size += counted;
    ++lines;
    if (counted > max_line) max_line = counted;
    if (counted > 1000) long_lines.add(off_ + pos);
    pos += len;
  }
  if (pos == 0 && !eod) return 0;
  if (hint) indexed_ += pos;
  // Octets >= 0x80 in the block: only the first occurrence is located, the count just
  // says "some". The index knows the event's first one; if that came before this block,
  // the block may still hold others.
  bool any_high = false;
  std::size_t high = std::string_view::npos;  // the first one's position, when known
  if (hint) {
    const std::size_t fh = hint->ix->first_high;
    any_high = fh != TextIndex::npos && fh < at + pos;
    if (any_high && fh >= at) high = fh - at;
  } else {
    const simd::TextScan sc = simd::scan_text(base, pos);
    if (!sc.clean) return 0;
    any_high = sc.high;
  }
  if (any_high && high == std::string_view::npos) {
    high = static_cast<std::size_t>(
        std::find_if(base, base + pos, [](char c) { return static_cast<unsigned char>(c) >= 0x80; }) - base);
    any_high = high < pos;
  }
  if (any_high) {
    if (rep_.eight_bit.count == 0) rep_.eight_bit.add(off_ + high);
    else ++rep_.eight_bit.count;
  }
  rep_.size += size;
  rep_.lines += lines;
  rep_.max_line = max_line;
  rep_.long_lines = long_lines;
  rep_.unstuffed_dot = unstuffed;
  off_ += pos;
  hist_ = {other, other, other, crlf};
  hist_off_[3] = off_ - 2;  // the block ends with a line's CRLF (a smuggling pattern may start there)
  if (eod) {
    off_ += 3;
    rep_.wire_octets = off_ - rep_.start;
    rep_.empty = rep_.lines == 0;
    rep_.complete = true;
    return pos + 3;
  }
  return pos;
}

namespace {
// Octets whose source knows nothing of them (the proxy's reads, socat dumps, Postfix logs,
// scenarios) are indexed here in one wide pass, so whole lines come from the index as
// they do for a recording's reader. Bounded: one index per thread, at most one block.
constexpr std::size_t kIndexAtLeast = 512;
constexpr std::size_t kIndexAtMost = std::size_t{1} << 18;

const TextHint* index_raw(std::string_view in, TextHint& own) {
  thread_local TextIndex scratch;
  if (in.size() < kIndexAtLeast || in.size() > kIndexAtMost || !detail::index_text_wide(in.data(), in.size(), scratch))
    return nullptr;
  own = TextHint{in.data(), in.size(), &scratch};
  return own.covers(in.data(), in.size()) ? &own : nullptr;
}
}  // namespace

std::size_t ContentScanner::feed(std::string_view in, const TextHint* hint) {
  TextHint own;
  if (!hint || !hint->ix) hint = index_raw(in, own);
  else if (!hint->covers(in.data(), in.size())) hint = nullptr;
  std::size_t used = 0;
  while (used < in.size() && !rep_.complete) {
    if (const std::size_t n = fast_block(in.substr(used), hint); n > 0) {
      used += n;
      continue;
    }
    const std::string_view rest = in.substr(used);
    const char* nl = static_cast<const char*>(std::memchr(rest.data(), '\n', rest.size()));
    const std::size_t n = nl ? static_cast<std::size_t>(nl - rest.data()) + 1 : rest.size();
    const std::string_view piece = rest.substr(0, n);
    const std::uint64_t piece_off = off_;

    // Line start bytes for the dot and end-of-data checks.
    for (std::size_t i = 0; line_len_ + i < head_.size() && i < piece.size(); ++i)
      head_[line_len_ + i] = piece[i];

    const bool ends_line = nl != nullptr;
    const bool crlf_end = ends_line && (n >= 2 ? piece[n - 2] == '\r' : pending_cr_);
    // The end-of-data line: "." CRLF right after a CRLF (RFC 5321 §4.1.1.4).
    if (ends_line && crlf_end && prev_crlf_ && line_len_ + n == 3 && head_[0] == '.') {
      tokens(piece, piece_off);
      off_ += n;
      used += n;
      rep_.wire_octets = off_ - rep_.start;
      rep_.empty = rep_.lines == 0;
      rep_.complete = true;
      break;
    }

    const Scan sc = scan_bytes(piece);
    // The offset of the first such octet, exact whatever the reads were (as fast_block).
    auto first = [&](auto is) {
      for (std::size_t i = 0; i < piece.size(); ++i)
        if (is(static_cast<unsigned char>(piece[i]))) return piece_off + i;
      return piece_off;
    };
    if (sc.high) rep_.eight_bit.add(rep_.eight_bit.count ? piece_off : first([](unsigned char c) { return c >= 0x80; }));
    if (sc.nul) rep_.nul.add(rep_.nul.count ? piece_off : first([](unsigned char c) { return c == 0; }));
    // A CR anywhere but right before the line's LF (or at the end of an unfinished piece).
    const std::size_t body = ends_line ? (n >= 2 ? n - 2 : 0) : (n >= 1 ? n - 1 : 0);
    const char* crp = static_cast<const char*>(std::memchr(piece.data(), '\r', body));
    // A CR held from the previous piece comes first: it is the one located.
    const bool pending_bare = pending_cr_ && piece.front() != '\n';
    const bool bare_cr = pending_bare || crp != nullptr;
    if (bare_cr)
      rep_.bare_cr.add(pending_bare ? pending_cr_off_ : piece_off + static_cast<std::uint64_t>(crp - piece.data()));

    const bool clean = !pending_cr_ && (hist_[3] == crlf || hist_[3] == other);
    const bool suspicious = !clean || bare_cr || sc.nul || (ends_line && !crlf_end) || !prev_crlf_ ||
                            n < 4 || piece.front() == '.';
    if (suspicious) {
      tokens(piece, piece_off);
    } else if (ends_line) {
      hist_ = {other, other, other, crlf};  // an ordinary line that ends in CRLF
      hist_off_[3] = piece_off + n - 2;
    } else {
      // Ordinary text cut by the chunk's end: only its last bytes matter.
      hist_ = {other, other, other, other};
      const std::size_t tail = std::min<std::size_t>(3, n);
      tokens(piece.substr(n - tail), piece_off + n - tail);
    }

    off_ += n;
    used += n;
    line_len_ += n;
    if (ends_line) end_line(line_len_, crlf_end);
  }
  return used;
}

}  // namespace lockstep
