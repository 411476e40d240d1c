// Importers and the recording format: round trips, formats, and bad input.
#include <catch2/catch.hpp>

#include <cstdio>
#include <sys/resource.h>
#include <filesystem>
#include <fstream>

#include "engine/checker.hpp"
#include "engine/jsonl.hpp"
#include "engine/source.hpp"

using namespace lockstep;

namespace {
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& content) {
    path = (std::filesystem::temp_directory_path() / ("lockstep-test-" + std::to_string(reinterpret_cast<std::uintptr_t>(this)) + ".txt")).string();
    std::ofstream(path, std::ios::binary) << content;
  }
  ~TempFile() { std::filesystem::remove(path); }
};

std::vector<SourceEvent> read_all(const std::string& path, std::string& err, const std::string& fmt = "auto") {
  std::vector<SourceEvent> out;
  auto src = open_source(path, fmt, err);
  if (!src) return out;
  SourceEvent ev;
  while (src->next(ev)) out.push_back(ev);
  if (!src->error().empty()) err = src->error();
  return out;
}
}  // namespace

TEST_CASE("every byte value survives a round trip through the recording format", "[import][jsonl]") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  const std::string line = jsonl_data(1795238727554167, "7", Dir::server, all);
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);  // one event, one line
  for (unsigned char c : line) CHECK(c < 0x80);  // the file is plain ASCII
  TempFile f(jsonl_meta(1, "test") + jsonl_open(2, "7", "127.0.0.1:5000", "127.0.0.1:24") + line +
             jsonl_close(3, "7", Dir::client) + jsonl_end(4, "7"));
  std::string err;
  const auto evs = read_all(f.path, err);
  INFO(err);
  REQUIRE(evs.size() == 4);
  CHECK(evs[0].kind == SourceEvent::Kind::open);
  CHECK(evs[0].a == "127.0.0.1:5000");
  CHECK(evs[1].kind == SourceEvent::Kind::data);
  CHECK(evs[1].dir == Dir::server);
  CHECK(evs[1].bytes == all);
  CHECK(evs[1].time == 1795238727554167);
  CHECK(evs[1].conn == "7");
  CHECK(evs[2].kind == SourceEvent::Kind::close);
  CHECK(evs[3].kind == SourceEvent::Kind::end);
}

TEST_CASE("a recording with broken lines is read around them and says what it skipped", "[import][jsonl][bad-input]") {
  TempFile f(jsonl_data(1, "1", Dir::server, "220 x ready\r\n") + "{\"t\":2,\"conn\":\"1\",\"ev\":\"data\",\"dir\":\"c\",\"data\":\"LHL\n" +
             "not json at all\n" + jsonl_data(3, "1", Dir::client, "QUIT\r\n"));
  std::string err;
  auto src = open_source(f.path, "auto", err);
  REQUIRE(src);
  std::vector<SourceEvent> evs;
  SourceEvent ev;
  while (src->next(ev)) evs.push_back(ev);
  CHECK(evs.size() == 2);
  CHECK(src->skipped_lines == 2);
  CHECK_FALSE(src->first_skipped.empty());
}

TEST_CASE("unknown, empty, binary and unreadable inputs give a clear error", "[import][bad-input]") {
  std::string err;
  {
    TempFile f("hello world\nthis is not a log\n");
    CHECK(read_all(f.path, err).empty());
    CHECK(err.find("unknown format") != std::string::npos);
  }
  {
    TempFile f("");
    err.clear();
    CHECK(read_all(f.path, err).empty());
    CHECK(err.find("empty") != std::string::npos);
  }
  {
    std::string garbage;
    for (int i = 0; i < 100000; ++i) garbage += static_cast<char>((i * 7919) & 0xff);
    TempFile f(garbage);
    err.clear();
    read_all(f.path, err);
    CHECK_FALSE(err.empty());
  }
  err.clear();
  CHECK(read_all("/nonexistent/file.log", err).empty());
  CHECK(err.find("cannot open") != std::string::npos);
  err.clear();
  CHECK(read_all("/tmp", err).empty());
  CHECK_FALSE(err.empty());
}

TEST_CASE("a socat -v dump is decoded to the exact bytes and split into connections", "[import][socat]") {
  TempFile f(
      "# header\n"
      "< 2026/11/21 05:25:27.000553981  length=14 from=0 to=13\n"
      "220 x ready\\r\n"
      "> 2026/11/21 05:25:27.000554167  length=11 from=0 to=10\n"
      "bare\n"
      "NOOP\\r\n"
      "< 2026/11/21 05:25:28.000000001  length=14 from=0 to=13\n"
      "220 x ready\\r\n"
      "2026/11/21 05:25:32.057033 socat[1917] W exiting on signal 15\n");
  std::string err;
  const auto evs = read_all(f.path, err);
  INFO(err);
  REQUIRE(evs.size() == 7);  // open, data, data, end, open, data, end
  CHECK(evs[1].bytes == "220 x ready\r\n");
  CHECK(evs[2].bytes == "bare\nNOOP\r\n");
  CHECK(evs[2].dir == Dir::client);
  CHECK(evs[1].time % 1000000 == 553981);
  CHECK(evs[3].kind == SourceEvent::Kind::end);
  CHECK(evs[4].conn != evs[1].conn);
}

TEST_CASE("Postfix logs: processes interleaved in one log become separate sessions with their status lines",
          "[import][postfix]") {
  TempFile f(
      "Nov 21 06:10:44 mx postfix/lmtp[1]: smtp_connect_addr: trying: 127.0.0.1[127.0.0.1] port 24...\n"
      "Nov 21 06:10:44 mx postfix/lmtp[2]: smtp_connect_addr: trying: 127.0.0.1[127.0.0.1] port 24...\n"
      "Nov 21 06:10:44 mx postfix/lmtp[1]: < 127.0.0.1[127.0.0.1]:24: 220 a ready\n"
      "Nov 21 06:10:44 mx postfix/lmtp[2]: < 127.0.0.1[127.0.0.1]:24: 220 b ready\n"
      "Nov 21 06:10:44 mx postfix/qmgr[9]: ABC: removed\n"
      "Nov 21 06:10:44 mx postfix/lmtp[1]: > 127.0.0.1[127.0.0.1]:24: LHLO x\n"
      "Nov 21 06:10:45 mx postfix/lmtp[1]: ABC: to=<a@b>, relay=127.0.0.1[127.0.0.1]:24, status=sent (250 ok)\n"
      "2026-11-21T06:10:46.123456+00:00 mx postfix/lmtp[2]: > 127.0.0.1[127.0.0.1]:24: QUIT\n");
  std::string err;
  const auto evs = read_all(f.path, err);
  INFO(err);
  std::map<std::string, std::vector<const SourceEvent*>> by_conn;
  for (const auto& e : evs) by_conn[e.conn].push_back(&e);
  REQUIRE(by_conn.size() == 2);
  CHECK(by_conn["1#1"][1]->bytes == "220 a ready\r\n");
  CHECK(by_conn["2#1"][1]->bytes == "220 b ready\r\n");
  bool status = false;
  for (auto* e : by_conn["1#1"]) status = status || (e->kind == SourceEvent::Kind::status && e->bytes.find("status=sent") != std::string::npos);
  CHECK(status);
  // The ISO timestamp of Postfix's own maillog_file keeps its microseconds.
  CHECK(by_conn["2#1"][2]->time % 1000000 == 123456);
}

TEST_CASE("a truncated Postfix log ends its sessions as cut-off captures without deficit findings",
          "[import][postfix][bad-input]") {
  TempFile f(
      "Nov 21 06:10:44 mx postfix/lmtp[1]: smtp_connect_addr: trying: 127.0.0.1[127.0.0.1] port 24...\n"
      "Nov 21 06:10:44 mx postfix/lmtp[1]: < 127.0.0.1[127.0.0.1]:24: 220 a ready\n"
      "Nov 21 06:10:44 mx postfix/lmtp[1]: > 127.0.0.1[127.0.0.1]:24: LHLO x\n"
      "Nov 21 06:10:44 mx postfix/lmtp[1]: < 127.0.0.1[127.0.0.1]:24: 250-a\n"
      "Nov 21 06:10:44 mx postfix/lmtp[1]: < 127.0.0.1[127.0.0.1]:24: 250-PIPELINING\n"
      "Nov 21 06:10:44 mx postfix/lmtp[1]: < 127.0.0.1[127.0.0.1]:24: 250 ENHANCEDSTATUSCODES\n"
      "Nov 21 06:10:44 mx postfix/lmtp[1]: > 127.0.0.1[127.0.0.1]:24: MAIL FROM:<a@b>\n"
      "Nov 21 06:10:44 mx postfix/lmtp[1]: > 127.0.0.1[127.0.0.1]:24: RCPT TO:<c@d>\n"
      "Nov 21 06:10:44 mx postfix/lm");
  std::string err;
  auto src = open_source(f.path, "auto", err);
  REQUIRE(src);
  std::vector<SessionResult> out;
  Checker c(src->info(), f.path, [&](SessionResult&& r) { out.push_back(std::move(r)); });
  SourceEvent ev;
  while (src->next(ev)) c.on(ev);
  c.finish();
  REQUIRE(out.size() == 1);
  CHECK(out[0].errors == 0);
  CHECK(out[0].commands == 3);
}

TEST_CASE("a 200 MB line without a line end in a recording is skipped in bounded memory", "[import][bad-input][limits]") {
  const std::string path = (std::filesystem::temp_directory_path() / "lockstep-test-longline.jsonl").string();
  {
    std::ofstream out(path, std::ios::binary);
    out << jsonl_data(1, "1", Dir::server, "220 x ready\r\n");
    out << "{\"t\":2,\"conn\":\"1\",\"ev\":\"data\",\"dir\":\"c\",\"data\":\"";
    const std::string block(1 << 20, 'A');
    for (int i = 0; i < 200; ++i) out << block;
  }
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  std::string err;
  const auto evs = read_all(path, err);
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  std::filesystem::remove(path);
  CHECK(evs.size() == 1);
  // The reader keeps at most its 8 MiB line cap (plus one 1 MiB block).
  CHECK(after.ru_maxrss - before.ru_maxrss < 32 * 1024);
}
