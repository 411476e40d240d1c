#pragma once
// Reads a file line by line, with a cap on the length of a line, so a file of any size
// or shape is read in constant memory.
//
// A file is read in 1 MiB blocks, and a line that lies whole in its block is handed out
// where it lies. A regular file may instead be mapped into memory (`map`): no copy, and
// pages already read are let go as the reading moves on. Which is faster depends on the
// machine: a copy into a block that stays in the CPU's cache costs less than a page fault
// on a virtual machine whose page faults are dear (bench/README.md), so blocks are the
// default. Either way, a regular file that shrinks while it is read (a log rotated by
// truncation) ends the reading with an error instead of a crash, and one that grows is
// read on.
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace lockstep {

class LineReader {
 public:
  // `f` stays owned by the caller. Lines longer than `cap` are returned cut, with
  // truncated() set. `map`: map a regular file (off: read in blocks).
  explicit LineReader(std::FILE* f, std::size_t cap = 8u << 20, bool map = false);
  ~LineReader();
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line without its LF (a CR before it is kept). False at the end of the file
  // or on an error. The line stays valid until the next call.
  bool next(std::string_view& line);
  bool truncated() const { return truncated_; }
  std::uint64_t line_number() const { return lineno_; }
  // The start of the unread input (up to one block), for format detection.
  std::string_view peek();
  bool error() const { return error_ || shrank_; }
  // What went wrong, for the user ("" when nothing did).
  std::string error_text() const;
  bool mapped() const { return map_ != nullptr; }

  // For a reader that finds the end of its line itself (a parser that stops at the LF,
  // sparing a search of the line before it is parsed): the unread input where it lies (in
  // the mapping, or the rest of the block), at most `max` octets (and at most the cap and
  // one more); empty when nothing is left to read without next(). A reader that
  // found a line in it hands its length, LF included, to take(); one that did not reads
  // that line with next(). `max` bounds what a reader may hold of a line that turns out
  // longer (it falls back to next(), which skips what is beyond the cap unread).
  std::string_view ahead(std::size_t max);
  // The first n octets of ahead() were the next line. False when the file shrank under
  // the reader (whatever was read from ahead() must then be dropped; error() tells).
  bool take(std::size_t n);

  // Where the reading is in the file: the octets before the next unread one.
  std::uint64_t offset() const { return map_ ? pos_ : read_ - end_ + pos_; }
  // Whether the file is a regular one, whose octets can be read again (read_at).
  bool regular_file() const { return regular_; }
  // Reads the file's octets [at, at + n) into `out`, without moving the reading; false
  // when they are not all there any more.
  bool read_at(std::uint64_t at, char* out, std::size_t n) const;

 private:
  bool fill();
  bool next_mapped(std::string_view& line);
  const char* find_lf(const char* start);
  bool map_file();
  bool remap();  // the mapped file grew: map it whole again
  bool map_whole(std::size_t n);
  void release_behind();
  bool check_intact();  // false when the mapped file shrank under the reader

  std::FILE* f_;
  std::size_t cap_;
  std::string buf_;
  const char* data_ = nullptr;  // buf_ or the mapping
  std::size_t pos_ = 0, end_ = 0;
  std::string long_;  // a line that spans blocks
  bool eof_ = false, truncated_ = false, error_ = false, shrank_ = false;
  // Read in blocks: the octets read so far, and the size of a regular file when opened
  // (a file found shorter than either at the end was cut under the reader).
  std::uint64_t read_ = 0, size_seen_ = 0;
  bool regular_ = false;
  std::uint64_t lineno_ = 0;
  // The mapping: its start, length, the guard slot that catches a shrink, and how far
  // the pages behind the reading have been let go.
  char* map_ = nullptr;
  std::size_t map_len_ = 0, released_ = 0;
  int guard_ = -1;
  std::uint64_t shrank_at_ = 0;
};

}  // namespace lockstep
