#include "engine/linereader.hpp"

#include <algorithm>
#include <cstring>

namespace lockstep {

namespace {
constexpr std::size_t kBlock = 1 << 20;
}

LineReader::LineReader(std::FILE* f, std::size_t cap) : f_(f), cap_(cap) { buf_.resize(kBlock); }

bool LineReader::fill() {
  if (eof_) return false;
  end_ = std::fread(buf_.data(), 1, buf_.size(), f_);
  pos_ = 0;
  if (end_ == 0) {
    eof_ = true;
    if (std::ferror(f_)) error_ = true;
    return false;
  }
  return true;
}

std::string_view LineReader::peek() {
  if (pos_ >= end_) fill();
  return std::string_view(buf_.data() + pos_, end_ - pos_);
}

bool LineReader::next(std::string_view& line) {
  long_.clear();
  truncated_ = false;
  bool spanning = false;
  std::uint64_t total = 0;
  for (;;) {
    if (pos_ >= end_ && !fill()) {
      if (!spanning) return false;
      ++lineno_;
      line = long_;
      return true;  // the last line had no LF
    }
    const char* start = buf_.data() + pos_;
    const char* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - pos_));
    const std::size_t n = nl ? static_cast<std::size_t>(nl - start) : end_ - pos_;
    if (!spanning && nl) {  // the common case: the whole line is in the block
      pos_ += n + 1;
      ++lineno_;
      line = std::string_view(start, n > cap_ ? cap_ : n);
      truncated_ = n > cap_;
      return true;
    }
    spanning = true;
    if (long_.size() < cap_) long_.append(start, std::min(n, cap_ - long_.size()));
    total += n;
    truncated_ = total > cap_;
    pos_ += n;
    if (nl) {
      ++pos_;
      ++lineno_;
      line = long_;
      return true;
    }
  }
}

}  // namespace lockstep
