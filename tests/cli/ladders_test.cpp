// When `lockstep check` takes ladders on demand (engine/replay.hpp) and when it traces
// them from each session's start.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "cli/check.hpp"
#include "engine/jsonl.hpp"
#include "engine/source.hpp"

using namespace lockstep;

namespace {
struct TempFile {
  std::string path;
  TempFile(const std::string& name, const std::string& content)
      : path((std::filesystem::temp_directory_path() / name).string()) {
    std::ofstream(path, std::ios::binary) << content;
  }
  ~TempFile() { std::filesystem::remove(path); }
};
}  // namespace

TEST_CASE("ladders come on demand for a text report of a recording file, and only then", "[cli][replay]") {
  const TempFile rec("lockstep-ladders-test.jsonl", jsonl_open(1, "1", "127.0.0.1:1", "127.0.0.1:24") +
                                                        jsonl_data(2, "1", Dir::server, "220 ready\r\n"));
  const TempFile log("lockstep-ladders-test.log",
                     "Jan  1 00:00:00 mx postfix/lmtp[42]: > 10.0.0.25[10.0.0.25]:24: LHLO mx\n");
  std::string err;
  const auto jsonl = open_source(rec.path, "auto", err);
  const auto postfix = open_source(log.path, "auto", err);
  REQUIRE(jsonl);
  REQUIRE(postfix);
  cli::CheckOptions o;  // the defaults: text, ladders of the sessions with problems
  CHECK(cli::ladders_on_demand(o, rec.path, *jsonl));
  CHECK_FALSE(cli::ladders_on_demand(o, "-", *jsonl));          // standard input: not read again
  CHECK_FALSE(cli::ladders_on_demand(o, log.path, *postfix));   // a log: its events are not lines of their own
  for (const char* format : {"json", "junit"}) {
    cli::CheckOptions f = o;
    f.format = format;
    CHECK_FALSE(cli::ladders_on_demand(f, rec.path, *jsonl));  // every ladder is in the report
  }
  for (const char* ladder : {"all", "none"}) {
    cli::CheckOptions l = o;
    l.ladder = ladder;
    CHECK_FALSE(cli::ladders_on_demand(l, rec.path, *jsonl));
  }
  cli::CheckOptions h = o;
  h.html = "/tmp/x.html";
  CHECK_FALSE(cli::ladders_on_demand(h, rec.path, *jsonl));  // the page shows every ladder
}
