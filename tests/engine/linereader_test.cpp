// The line reader: a mapped file and a file read in blocks give the same lines; either
// way, a file that grows is read on, one that shrinks ends the reading with an error.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "engine/linereader.hpp"
#include "engine/jsonl.hpp"
#include "engine/source.hpp"

using namespace lockstep;

namespace {
struct TempPath {
  std::string path;
  explicit TempPath(const std::string& content) {
    path = (std::filesystem::temp_directory_path() /
            ("lockstep-reader-" + std::to_string(::getpid()) + "-" + std::to_string(reinterpret_cast<std::uintptr_t>(this))))
               .string();
    std::ofstream(path, std::ios::binary) << content;
  }
  ~TempPath() { std::filesystem::remove(path); }
};

struct Read {
  std::vector<std::string> lines;
  std::vector<bool> cut;
  bool mapped = false, error = false;
};

Read read_lines(const std::string& path, std::size_t cap, bool map) {
  Read r;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f);
  {
    LineReader in(f, cap, map);
    r.mapped = in.mapped();
    std::string_view l;
    while (in.next(l)) {
      r.lines.emplace_back(l);
      r.cut.push_back(in.truncated());
    }
    r.error = in.error();
  }
  std::fclose(f);
  return r;
}
}  // namespace

TEST_CASE("a mapped file and one read in blocks give the same lines", "[reader]") {
  std::mt19937 rng(7);
  for (int round = 0; round < 40; ++round) {
    // Lines of every length around the cap and the 1 MiB block, CRs, empty lines, and
    // sometimes no LF at the end.
    std::string content;
    const int lines = 1 + static_cast<int>(rng() % 30);
    for (int i = 0; i < lines; ++i) {
      std::size_t len = rng() % 4 == 0 ? (1u << 20) - 40 + rng() % 80 : rng() % 300;
      for (std::size_t k = 0; k < len; ++k) content += static_cast<char>(rng() % 3 == 0 ? '\r' : 'a' + rng() % 26);
      if (i + 1 < lines || rng() % 2) content += '\n';
    }
    TempPath f(content);
    const std::size_t cap = round % 2 ? 200 : 8u << 20;
    const Read mapped = read_lines(f.path, cap, true);
    const Read blocks = read_lines(f.path, cap, false);
    CHECK(mapped.mapped);
    CHECK_FALSE(blocks.mapped);
    CHECK_FALSE(mapped.error);
    REQUIRE(mapped.lines.size() == blocks.lines.size());
    CHECK(mapped.lines == blocks.lines);
    CHECK(mapped.cut == blocks.cut);
  }
}

TEST_CASE("an empty file and a memory stream are read in blocks", "[reader]") {
  TempPath empty("");
  const Read r = read_lines(empty.path, 1000, true);
  CHECK_FALSE(r.mapped);
  CHECK(r.lines.empty());

  std::string text = "one\ntwo\nthree";
  std::FILE* m = fmemopen(text.data(), text.size(), "rb");
  REQUIRE(m);
  {
    LineReader in(m);
    CHECK_FALSE(in.mapped());
    std::string_view l;
    std::vector<std::string> got;
    while (in.next(l)) got.emplace_back(l);
    CHECK(got == std::vector<std::string>{"one", "two", "three"});
  }
  std::fclose(m);
}

TEST_CASE("a file that grows while it is read is read to its new end, mapped or in blocks", "[reader]") {
  for (const bool map : {true, false}) {
    INFO("mapped " << map);
    TempPath f("first\nsecond");
    std::FILE* fp = std::fopen(f.path.c_str(), "rb");
    REQUIRE(fp);
    {
      LineReader in(fp, 8u << 20, map);
      REQUIRE(in.mapped() == map);
      std::string_view l;
      REQUIRE(in.next(l));
      CHECK(l == "first");
      std::ofstream(f.path, std::ios::binary | std::ios::app) << " half\nthird\n";
      REQUIRE(in.next(l));
      CHECK(l == "second half");
      REQUIRE(in.next(l));
      CHECK(l == "third");
      CHECK_FALSE(in.next(l));
      CHECK_FALSE(in.error());
    }
    std::fclose(fp);
  }
}

TEST_CASE("a recording truncated while it is checked ends with an error, not a crash", "[reader][bad-input]") {
  // Several MiB of events, so pages or blocks beyond the cut are not yet read when it
  // happens; mapped (LOCKSTEP_MMAP=1) and read in blocks (the default).
  const bool map = GENERATE(true, false);
  INFO("mapped " << map);
  std::string rec = jsonl_meta(1, "test");
  const std::string body(2000, 'x');
  int n = 0;
  while (rec.size() < (6u << 20)) rec += jsonl_data(++n, "1", Dir::client, body + "\r\n");
  TempPath f(rec);
  std::string err;
  if (map) ::setenv("LOCKSTEP_MMAP", "1", 1);
  auto src = open_source(f.path, "jsonl", err);
  ::unsetenv("LOCKSTEP_MMAP");
  REQUIRE(src);
  SourceEvent ev;
  int read = 0;
  while (read < 10 && src->next(ev)) ++read;
  REQUIRE(read == 10);
  REQUIRE(::truncate(f.path.c_str(), 1 << 20) == 0);  // as logrotate's copytruncate does
  while (src->next(ev)) {
    ++read;
    REQUIRE(ev.bytes.size() == body.size() + 2);  // no line of zeros from beyond the cut
  }
  CHECK(read < n);
  CHECK(src->skipped_lines == 0);  // nor the half line the cut left, as if the file ended there
  CHECK(src->error().find("shrank to 1048576 bytes") != std::string::npos);
}

TEST_CASE("a reader that finds its own line ends takes lines from what lies ahead", "[reader]") {
  TempPath f("one\ntwo\r\nthree\n" + std::string(100, 'x') + "\nlast");
  // From the mapping and from the block alike.
  for (const bool map : {true, false}) {
    INFO("mapped " << map);
    std::FILE* fp = std::fopen(f.path.c_str(), "rb");
    REQUIRE(fp);
    {
      LineReader in(fp, 50, map);
      REQUIRE(in.mapped() == map);
      std::string_view l;
      // The input where it lies, bounded by `max` and by the cap and one octet.
      CHECK(in.ahead(2) == "on");
      REQUIRE(in.ahead(1000).substr(0, 8) == "one\ntwo\r");
      REQUIRE(in.take(4));
      CHECK(in.line_number() == 1);
      CHECK(in.ahead(1000).substr(0, 5) == "two\r\n");
      REQUIRE(in.take(5));
      // Taken and read lines follow each other.
      REQUIRE(in.next(l));
      CHECK(l == "three");
      CHECK(in.line_number() == 3);
      CHECK(in.ahead(1000) == std::string(51, 'x'));
      REQUIRE(in.next(l));  // the overlong line is read, cut, by next()
      CHECK(in.truncated());
      CHECK(in.ahead(1000) == "last");
      REQUIRE(in.take(4));
      CHECK(in.ahead(1000).empty());
      CHECK_FALSE(in.next(l));
      CHECK_FALSE(in.error());
    }
    std::fclose(fp);
  }
}
