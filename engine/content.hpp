#pragma once
// Message content after a 354: finds the end-of-data line, un-stuffs dots for the size
// (RFC 1870 §5), and notes every octet that a conforming client must not send, including
// the ambiguous end-of-data sequences used for SMTP smuggling. Constant memory whatever
// the content.
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "engine/textindex.hpp"

namespace lockstep {

// One occurrence of an anomaly: where it starts in the client stream.
struct Occurrence {
  std::uint64_t count = 0;
  std::uint64_t first_offset = 0;
  void add(std::uint64_t off) {
    if (count++ == 0) first_offset = off;
  }
};

struct Smuggle {
  std::string_view name;   // smtpsmug test name: lflf, crcr, crlf, ... nullafter
  std::string_view bytes;  // printable form, e.g. "<LF>.<LF>"
  std::uint64_t offset = 0;
};

struct ContentReport {
  std::uint64_t start = 0;           // stream offset of the first content byte
  std::uint64_t wire_octets = 0;     // every byte up to and including the end-of-data line
  std::uint64_t size = 0;            // RFC 1870 §5 size: without stuffed dots and the final ".CRLF"
  std::uint64_t lines = 0;
  std::uint64_t max_line = 0;        // longest line, CRLF included, stuffed dot excluded
  Occurrence long_lines, bare_lf, bare_cr, nul, eight_bit, unstuffed_dot;
  std::vector<Smuggle> smuggling;    // at most kMaxSmuggles
  bool empty = false;                // ".CRLF" came right after the 354
  bool complete = false;             // the end-of-data line was seen
  static constexpr std::size_t kMaxSmuggles = 16;
};

class ContentScanner {
 public:
  void start(std::uint64_t stream_offset);
  // Consumes content from the front of `in`; returns the bytes consumed. When the
  // end-of-data line was among them, report().complete is true and the bytes after it
  // are left in `in` for the command parser.
  // With a hint that covers `in`, whole lines of plain text are taken from its index (a
  // hint that does not cover `in` is ignored). Without an index from the source, octets
  // from 512 up to 256 KiB are indexed here when the CPU has the wide paths
  // (detail::index_text_wide).
  std::size_t feed(std::string_view in, const TextHint* hint = nullptr);
  const ContentReport& report() const { return rep_; }
  // Content octets consumed so far.
  std::uint64_t consumed() const { return off_ - rep_.start; }
  // Of those, the octets whose lines were taken from an index (the source's or its own).
  std::uint64_t indexed() const { return indexed_; }

 private:
  enum Tok : std::uint8_t { crlf, cr, lf, nul, dot, other };
  void end_line(std::uint64_t len_with_term, bool crlf_end);
  std::size_t fast_block(std::string_view rest, const TextHint* hint);
  void tokens(std::string_view s, std::uint64_t off);
  void push(Tok t, std::uint64_t off);

  ContentReport rep_;
  std::uint64_t off_ = 0;            // stream offset of the next byte
  std::uint64_t indexed_ = 0;        // see indexed()
  std::uint64_t line_len_ = 0;       // bytes of the current line so far
  std::array<char, 3> head_{};       // first bytes of the current line
  bool prev_crlf_ = true;            // the previous line ended in CRLF (or content start)
  bool pending_cr_ = false;          // the last byte seen was CR (pair undecided)
  std::uint64_t pending_cr_off_ = 0;
  std::array<Tok, 4> hist_{other, other, other, crlf};  // last tokens, newest last
  std::array<std::uint64_t, 4> hist_off_{};
};

}  // namespace lockstep
