#pragma once
// Reads a file line by line in large blocks, with a cap on the length of a line, so a
// file of any size or shape is read in constant memory.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace lockstep {

class LineReader {
 public:
  // `f` stays owned by the caller. Lines longer than `cap` are returned cut, with
  // truncated() set.
  explicit LineReader(std::FILE* f, std::size_t cap = 8u << 20);

  // The next line without its LF (a CR before it is kept). False at the end of the file.
  bool next(std::string_view& line);
  bool truncated() const { return truncated_; }
  std::uint64_t line_number() const { return lineno_; }
  // The start of the unread input (up to one block), for format detection.
  std::string_view peek();
  bool error() const { return error_; }

 private:
  bool fill();
  std::FILE* f_;
  std::size_t cap_;
  std::string buf_;
  std::size_t pos_ = 0, end_ = 0;
  std::string long_;  // a line that spans blocks
  bool eof_ = false, truncated_ = false, error_ = false;
  std::uint64_t lineno_ = 0;
};

}  // namespace lockstep
