#pragma once
// Server replies: one line at a time, assembled into whole (possibly multi-line)
// replies as RFC 5321 §4.2.1 defines them.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "engine/line.hpp"
#include "engine/types.hpp"

namespace lockstep {

// An enhanced status code (RFC 3463 §2) found at the start of a reply text.
struct EnhancedCode {
  int cls = 0, subject = 0, detail = 0;
  bool leading_zero = false;   // "5.01.1": breaks ESCODE-2-SYNTAX
  bool followed_by_space = true;
  std::string str() const;
};

struct ReplyLine {
  int code = -1;         // -1 when the line does not start with three digits
  char sep = 0;          // '-', ' ' or 0 (bare code ends the line)
  std::string_view text; // after the separator
  bool bad_sep = false;  // three digits followed by something other than '-', ' ', CRLF
};

ReplyLine parse_reply_line(std::string_view line);

// Parses an enhanced status code at the start of `text`; nullopt when there is none.
std::optional<EnhancedCode> parse_enhanced(std::string_view text);

struct Reply {
  // User-provided: a fresh reply is not zero-filled whole before its members are set.
  Reply() noexcept {}
  std::uint64_t index = 0;      // 0-based position among the session's replies
  int code = -1;                // the first line's code; -1 when malformed
  // Each line without CRLF (capped; see line_count); most replies have one, kept inline.
  boost::container::small_vector<std::string, 1> lines;
  std::uint32_t line_count = 0;
  std::uint64_t offset = 0, end = 0;  // stream offsets of the first byte and one past the last
  Time time = 0;
  bool malformed = false;       // a line without a valid code
  bool code_changed = false;    // a continuation line carried another code (DESYNC-4)
  bool bare_lf = false;         // a line ended in bare LF
  bool bare_cr = false;
  bool bare_code = false;       // last line was "NNN" with no SP
  bool long_line = false;       // a line over 512 octets with its CRLF
  bool truncated = false;       // lines or their text were cut to the caps
  // Of the kept lines (`lines`): an octet from 0x80 up anywhere, and a control octet
  // other than HT (or DEL) after the first four octets (the code and its separator).
  bool high = false;
  bool control = false;
  std::optional<EnhancedCode> enhanced;  // of the first line

  int cls() const { return code < 0 ? 0 : code / 100; }
  std::string_view first_text() const;  // text of the first line after the code
  // "250 2.1.5 ok" (first line, and "(+2 lines)" when multi-line), at most `max` chars.
  std::string summary(std::size_t max = 100) const;
};

// Collects reply lines into whole replies. A line whose code differs from the reply it
// continues still belongs to it (that is how clients count, PIPE-3.1); the change is
// flagged for DESYNC-4.
class ReplyAssembler {
 public:
  // Adds a line; returns true when it completed a reply, which `take()` then yields.
  bool add(const Line& line, Time t);
  Reply take();
  // The same, already shared (as the session keeps its replies).
  std::shared_ptr<const Reply> take_shared();
  bool in_progress() const { return open_; }
  const Reply& current() const { return cur_; }

  static constexpr std::size_t kMaxLines = 200;
  static constexpr std::size_t kMaxText = 1024;

 private:
  Reply cur_;
  bool open_ = false;
  std::uint64_t next_index_ = 0;
};

}  // namespace lockstep
