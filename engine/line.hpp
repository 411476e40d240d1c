#pragma once
// Incremental CRLF line splitting with bare-LF detection and a hard cap on the bytes
// kept, so a peer that never sends a line end costs constant memory.
#include <cstdint>
#include <string>
#include <string_view>

namespace lockstep {

enum class LineEnd : std::uint8_t { crlf, bare_lf };

struct Line {
  std::string_view text;   // without the terminator; at most the splitter's cap
  std::uint64_t offset = 0;  // stream offset of the first byte
  std::uint64_t length = 0;  // every byte of the line, terminator included
  LineEnd end = LineEnd::crlf;
  bool truncated = false;    // length exceeded the cap: text holds only the start
  bool bare_cr = false;      // a CR not followed by LF inside the line
};

class LineSplitter {
 public:
  explicit LineSplitter(std::size_t cap = 8192) : cap_(cap) {}

  // Takes bytes from the front of `in` until a line is complete; returns true and fills
  // `out` when one is. `out.text` stays valid until the next call. A bare LF ends a line
  // (the caller reports it); CR alone does not.
  bool next(std::string_view& in, Line& out);

  // Bytes of an unfinished line held so far (0 when at a line boundary).
  std::uint64_t pending() const { return pending_len_; }
  std::uint64_t offset() const { return offset_; }
  void set_offset(std::uint64_t o) { offset_ = o; }
  // The start of an unfinished line (at most the cap).
  std::string_view partial() const { return buf_; }

 private:
  std::size_t cap_;
  std::string buf_;
  std::uint64_t pending_len_ = 0;   // bytes of the current line seen so far
  std::uint64_t offset_ = 0;        // stream offset of the next byte
  bool prev_cr_ = false;            // last byte of the partial line was CR
  bool bare_cr_ = false;            // a bare CR was seen in the partial line
  bool clear_next_ = false;         // buf_ holds the line returned last time
};

}  // namespace lockstep
