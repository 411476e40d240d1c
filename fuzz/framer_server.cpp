// The server-direction framer: reply lines (LineSplitter) assembled into replies
// (ReplyAssembler). Input: one byte saying how to cut, the cut sizes, then the stream.
// Invariants: fed whole, byte by byte and in the chosen pieces, the same replies (code,
// lines, offsets, flags); replies follow each other without gaps or overlaps; the round
// trip: a reply that was not truncated and has only CRLF line ends is exactly its
// lines joined with CRLF, at its offsets; every reply's code is three digits (0..999) or -1.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/line.hpp"
#include "engine/reply.hpp"
#include "fuzz/framer.hpp"

namespace {
struct R {
  int code;
  std::vector<std::string> lines;
  std::uint32_t line_count;
  std::uint64_t offset, end;
  bool malformed, code_changed, bare_lf, bare_cr, bare_code, long_line, truncated;
  bool operator==(const R&) const = default;
};

std::vector<R> run(const std::vector<std::string_view>& parts) {
  lockstep::LineSplitter split;
  lockstep::ReplyAssembler a;
  std::vector<R> out;
  for (std::string_view part : parts) {
    lockstep::Line l;
    while (split.next(part, l)) {
      if (!a.add(l, 0)) continue;
      lockstep::Reply r = a.take();
      out.push_back({r.code, {r.lines.begin(), r.lines.end()}, r.line_count, r.offset, r.end, r.malformed, r.code_changed, r.bare_lf, r.bare_cr,
                     r.bare_code, r.long_line, r.truncated});
    }
  }
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in;
  const auto result = lockstep::fuzz::same_in_pieces(data, size, run, in);
  if (!result) return 0;
  const auto& whole = *result;

  std::uint64_t next = 0;
  for (const auto& r : whole) {
    if (r.offset != next || r.end < r.offset || r.end > in.size()) std::abort();
    next = r.end;
    if (r.code < -1 || r.code > 999) std::abort();  // three digits or none
    if (r.line_count < r.lines.size() || r.lines.empty()) std::abort();
    if (!r.truncated && !r.bare_lf && !r.bare_cr) {
      std::string back;
      for (const auto& l : r.lines) back += l + "\r\n";
      if (in.substr(r.offset, r.end - r.offset) != back) std::abort();
    }
  }
  return 0;
}
