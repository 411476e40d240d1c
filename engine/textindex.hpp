#pragma once
// What a reader learnt about a data event's octets while it decoded them: where the
// lines end and whether the octets are plain text. The content check uses it instead
// of searching the octets for line ends a second time (ContentScanner::feed).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

namespace lockstep {

// The line end positions of a TextIndex: a growable array that, unlike std::vector, gives
// a writer room past its end without filling it first. The wide decoder writes a few
// positions per step unconditionally and then counts how many were real.
class Positions {
 public:
  Positions() = default;
  Positions(const Positions& o) { *this = o; }
  // A moved-from Positions is empty and usable (its size and room go with the buffer).
  Positions(Positions&& o) noexcept { *this = std::move(o); }
  Positions& operator=(Positions&& o) noexcept {
    buf_ = std::move(o.buf_);
    size_ = std::exchange(o.size_, 0);
    cap_ = std::exchange(o.cap_, 0);
    return *this;
  }
  Positions& operator=(const Positions& o) {
    if (this != &o) {
      size_ = 0;
      if (o.size_) std::memcpy(room(o.size_), o.data(), o.size_ * sizeof(std::uint32_t));
      size_ = o.size_;
    }
    return *this;
  }
  const std::uint32_t* data() const { return buf_.get(); }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }
  void push_back(std::uint32_t v) { *room(1) = v, ++size_; }
  // Room for at least n positions after the last one: write there, then commit().
  std::uint32_t* room(std::size_t n) {
    if (cap_ - size_ < n) grow(n);
    return buf_.get() + size_;
  }
  // The positions now end at `end` (within the last room()).
  void commit(const std::uint32_t* end) { size_ = static_cast<std::size_t>(end - buf_.get()); }
  std::vector<std::uint32_t> to_vector() const { return {data(), data() + size_}; }

 private:
  void grow(std::size_t n) {
    const std::size_t cap = std::max({cap_ * 2, size_ + n, std::size_t{256}});
    auto buf = std::make_unique_for_overwrite<std::uint32_t[]>(cap);
    if (size_) std::memcpy(buf.get(), buf_.get(), size_ * sizeof(std::uint32_t));
    buf_ = std::move(buf);
    cap_ = cap;
  }
  std::unique_ptr<std::uint32_t[]> buf_;
  std::size_t size_ = 0, cap_ = 0;
};

struct TextIndex {
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  bool valid = false;  // the fields below describe the event's octets
  // No NUL; every CR is directly followed by LF and every LF directly preceded by CR.
  // False means "not known to be text": the readers set it only when every line end was
  // written as the escape pair \r\n (a CR LF spelt otherwise, e.g. \u000d\u000a, gives
  // false, and the content check then reads the octets themselves).
  bool text = false;
  Positions lf;                   // the position of every LF, ascending (when text)
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
