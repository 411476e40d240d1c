#pragma once
// What a reader learnt about a data event's octets while it decoded them: where the
// lines end and whether the octets are plain text. The content check uses it instead
// of searching the octets for line ends a second time (ContentScanner::feed).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace lockstep {

struct TextIndex {
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  bool valid = false;  // the fields below describe the event's octets
  // No NUL; every CR is directly followed by LF and every LF directly preceded by CR.
  bool text = false;
  std::vector<std::uint32_t> lf;  // the position of every LF, ascending (when text)
  std::size_t first_high = npos;  // the position of the first octet >= 0x80

  void reset() {
    valid = text = false;
    lf.clear();
    first_high = npos;
  }
};

// A TextIndex and the octets it describes, as the content scanner receives it.
struct TextHint {
  const char* base = nullptr;
  std::size_t size = 0;
  const TextIndex* ix = nullptr;
  // True when `ix` holds for [p, p + n): those octets lie inside the indexed ones.
  bool covers(const char* p, std::size_t n) const {
    return ix && ix->valid && ix->text && p >= base && n <= size && static_cast<std::size_t>(p - base) <= size - n;
  }
};

}  // namespace lockstep
