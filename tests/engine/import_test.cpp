// Importers and the recording format: round trips, formats, and bad input.
#include <catch2/catch.hpp>
#include <algorithm>

#include <cstdio>
#include <sys/resource.h>
#include <filesystem>
#include <functional>
#include <fstream>
#include <random>

#include <fmt/format.h>

#include "engine/checker.hpp"
#include "engine/jsonl.hpp"
#include "engine/jsonl_fast.hpp"
#include "engine/replay.hpp"
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
  // The memory a read takes, in KiB: the growth of the process's high-water mark.
  const auto growth = [&](int mib) {
    {
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out << jsonl_data(1, "1", Dir::server, "220 x ready\r\n");
      out << "{\"t\":2,\"conn\":\"1\",\"ev\":\"data\",\"dir\":\"c\",\"data\":\"";
      const std::string block(1 << 20, 'A');
      for (int i = 0; i < mib; ++i) out << block;
    }
    rusage before{};
    getrusage(RUSAGE_SELF, &before);
    std::string err;
    const auto evs = read_all(path, err);
    rusage after{};
    getrusage(RUSAGE_SELF, &after);
    std::filesystem::remove(path);
    CHECK(evs.size() == 1);
    return after.ru_maxrss - before.ru_maxrss;
  };
  // The reader keeps its 8 MiB line cap and a window of the search; how much of a file
  // mapping the kernel keeps resident besides varies, hence the room.
  const long first = growth(50);
  CHECK(first < 48 * 1024);
  // A line four times as long takes no more room. (An allocator that holds freed memory
  // back, as ASan's does, gives each read a working set of its own; a read that kept the
  // line would take 150 MB more.)
  const long second = growth(200);
  CHECK(second < 48 * 1024);
}

namespace {
// What a TextIndex must say of `b`, computed the slow way.
void check_index(const TextIndex& ix, std::string_view b) {
  REQUIRE(ix.valid);
  std::size_t first_high = TextIndex::npos;
  for (std::size_t i = 0; i < b.size(); ++i)
    if (static_cast<unsigned char>(b[i]) >= 0x80) {
      first_high = i;
      break;
    }
  CHECK(ix.first_high == first_high);
  bool text = b.find('\0') == std::string_view::npos;
  std::vector<std::uint32_t> lf;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (b[i] == '\r' && (i + 1 == b.size() || b[i + 1] != '\n')) text = false;
    if (b[i] == '\n') {
      if (i == 0 || b[i - 1] != '\r') text = false;
      lf.push_back(static_cast<std::uint32_t>(i));
    }
  }
  // The reader may decline to call octets text (an escape it does not follow), never
  // the other way round; when it does, every LF is listed.
  if (!text) CHECK_FALSE(ix.text);
  if (ix.text) CHECK(ix.lf.to_vector() == lf);
}

std::string parse_data(std::string_view line, TextIndex& ix) {
  std::vector<JsonField> fields;
  std::size_t n = 0;
  std::string err;
  REQUIRE(parse_json_object(line, fields, n, err, &ix));
  for (std::size_t i = 0; i < n; ++i)
    if (fields[i].key == "data") return fields[i].value.str;
  FAIL("no data field");
  return {};
}
}  // namespace

TEST_CASE("the reader's text index lists every line end and tells text from other octets", "[import][jsonl][index]") {
  std::mt19937 rng(7);
  const std::string alphabet = std::string("abc .\"\\\t", 8) + std::string("\r\n\r\n\r\n\0\xe9\x7f\x01", 11);
  for (int round = 0; round < 3000; ++round) {
    std::string b;
    const std::size_t len = rng() % (round < 2000 ? 40 : 300);
    const bool texty = round % 3 != 0;
    for (std::size_t i = 0; i < len; ++i) {
      if (texty && rng() % 6 == 0) b += "\r\n";
      else if (texty) b += "ab .\"\\\t\xe9"[rng() % (rng() % 20 == 0 ? 8 : 7)];
      else b += alphabet[rng() % alphabet.size()];
    }
    TextIndex ix;
    const std::string line = jsonl_data(1, "1", Dir::client, b);
    INFO(line);
    CHECK(parse_data(std::string_view(line).substr(0, line.size() - 1), ix) == b);
    check_index(ix, b);
    if (texty && b.find('\xe9') == std::string::npos) CHECK(ix.text);
  }
  // Octets written another way than lockstep's recorder writes them: raw control and
  // high octets, a CR and an LF as \u escapes, a lone \r or \n, a CR ending the string.
  const std::pair<std::string_view, bool> cases[] = {
      {R"({"data":"a\r\nb\r\n"})", true},        {"{\"data\":\"a\t\xc3\xa9\\r\\n\"}", true},
      {R"({"data":"a\u000d\u000a"})", false},    {R"({"data":"a\rb\r\n"})", false},
      {R"({"data":"a\nb"})", false},             {R"({"data":"ab\r"})", false},
      {"{\"data\":\"a\rb\"}", false},           {R"({"data":"\u0000\r\n"})", false},
      {R"({"data":"\u00ff.\r\n","x":1})", true}, {R"({"text":"x","data":"\r\n"})", true},
  };
  for (const auto& [line, text] : cases) {
    INFO(line);
    TextIndex ix;
    const std::string b = parse_data(line, ix);
    check_index(ix, b);
    CHECK(ix.text == text);
  }
  // The index describes "data" only: a later "text" takes the event's bytes, and the
  // event then carries no index.
  TempFile f(R"({"ev":"data","conn":"1","dir":"c","data":"a\r\n","text":"b\nc"})" "\n");
  std::string err;
  const auto evs = read_all(f.path, err, "jsonl");
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].bytes == "b\nc");
  CHECK_FALSE(evs[0].index.valid);
}

namespace {
// Everything parse_json_object says of one line, with the text index of "data".
struct Parsed {
  bool ok = false;
  std::string error, data;
  bool above_ff = false;  // a \u escape above U+00FF
  bool valid = false, text = false;
  std::vector<std::uint32_t> lf;
  std::size_t first_high = 0;
  bool operator==(const Parsed&) const = default;
};
Parsed parse_line(std::string_view line, bool wide) {
  const bool was = detail::wide_decode_enabled();
  detail::enable_wide_decode(wide);
  std::vector<JsonField> fields;
  std::size_t n = 0;
  Parsed r;
  TextIndex ix;
  r.ok = parse_json_object(line, fields, n, r.error, &ix);
  detail::enable_wide_decode(was);
  for (std::size_t i = 0; i < n; ++i)
    if (fields[i].key == "data") {
      r.data = fields[i].value.str;
      r.above_ff = fields[i].value.wide;
    }
  // The index means something only when valid, and its line ends only for text.
  r.valid = ix.valid;
  r.text = ix.valid && ix.text;
  if (r.text) r.lf = ix.lf.to_vector();
  r.first_high = ix.first_high;
  return r;
}
}  // namespace

TEST_CASE("the wide escaper writes what the byte-wise one writes, within the room it is given", "[import][jsonl][escape]") {
  detail::enable_wide_escape(true);
  if (!detail::wide_escape_enabled()) WARN("this CPU has no AVX-512 VBMI2: both runs take the byte-wise escaper");
  auto escaped = [](std::string_view b, bool wide) {
    detail::enable_wide_escape(wide);
    std::string out;
    json_escape_bytes(out, b);
    detail::enable_wide_escape(true);
    return out;
  };
  // Pieces: every octet value (the two-octet escapes, the \u00XX ones, plain ASCII), line
  // ends, and runs long enough to cross the 32- and 64-octet halves of a step.
  std::vector<std::string> pieces = {"\r\n", "\r\n", "\r\n.", "\"\"", "\\\\", "\t", std::string(40, 'a'),
                                     std::string(70, '\n'), std::string(33, '"'), "Subject: caf\xe9\r\n"};
  for (int c = 0; c < 256; ++c) pieces.emplace_back(1, static_cast<char>(c));
  std::mt19937 rng(20261122);
  std::size_t compared = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string b;
    const std::size_t parts = rng() % 40;
    for (std::size_t k = 0; k < parts; ++k) b += pieces[rng() % pieces.size()];
    const std::string wide = escaped(b, true), bytewise = escaped(b, false);
    REQUIRE(wide == bytewise);
    ++compared;
    // Into exactly the room the callers give (kMaxEscape per octet plus 16): nothing is
    // written past it, and the bytes past the room keep their guard.
    const std::size_t room = kMaxEscape * b.size() + 16;
    std::vector<char> buf(room + 64, '\x5a');
    char* end = json_escape_to(buf.data(), b);
    REQUIRE(std::string_view(buf.data(), static_cast<std::size_t>(end - buf.data())) == wide);
    REQUIRE(std::all_of(buf.begin() + static_cast<std::ptrdiff_t>(room), buf.end(), [](char c) { return c == '\x5a'; }));
  }
  // Every offset of every octet value around the step's halves, in a plain run.
  for (std::size_t len : {31u, 32u, 33u, 63u, 64u, 65u, 127u, 128u, 129u})
    for (std::size_t at = 0; at < len; ++at)
      for (int c : {0, 9, 10, 13, 31, 34, 92, 126, 127, 128, 255}) {
        std::string b(len, 'x');
        b[at] = static_cast<char>(c);
        REQUIRE(escaped(b, true) == escaped(b, false));
        ++compared;
      }
  CHECK(compared == 20000 + (31 + 32 + 33 + 63 + 64 + 65 + 127 + 128 + 129) * 11);
  // A known text, to hold both to the format rather than to each other.
  CHECK(escaped("a\"b\\c\r\nd\te\x01\x7f\xe9", true) == R"(a\"b\\c\r\nd\te\u0001\u007f\u00e9)");
}

TEST_CASE("the raw-octet index says exactly what the octets are", "[import][jsonl][index]") {
  detail::enable_wide_escape(true);
  if (!detail::wide_escape_enabled()) {
    WARN("this CPU has no AVX-512 VBMI2: the proxy checks content without an index");
    TextIndex ix;
    CHECK_FALSE(detail::index_text_wide("a\r\n", 3, ix));
    return;
  }
  const std::vector<std::string> pieces = {"\r\n", "\r\n", "line of text", std::string(70, 'x'), "\r", "\n",
                                           std::string(1, '\0'), "\xe9", "\x80", "\x7f", "\t"};
  std::mt19937 rng(7);
  std::size_t text = 0, not_text = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string b;
    const std::size_t parts = rng() % 30;
    // Half the rounds plain text, the rest with bare CR, bare LF or NUL somewhere.
    for (std::size_t k = 0; k < parts; ++k) b += pieces[rng() % (round % 2 ? pieces.size() : 4)];
    if (round % 7 == 3) b += '\r';  // a CR as the very last octet
    TextIndex ix;
    REQUIRE(detail::index_text_wide(b.data(), b.size(), ix));
    check_index(ix, b);
    // Exact, unlike a reader, which may decline: text whenever the octets are.
    bool is_text = b.find('\0') == std::string::npos;
    for (std::size_t i = 0; i < b.size(); ++i)
      if ((b[i] == '\r' && (i + 1 == b.size() || b[i + 1] != '\n')) || (b[i] == '\n' && (i == 0 || b[i - 1] != '\r')))
        is_text = false;
    REQUIRE(ix.text == is_text);
    ++(is_text ? text : not_text);
  }
  CHECK(text > 5000);
  CHECK(not_text > 5000);
}

TEST_CASE("the escape into a recording indexes the octets it escapes, as the raw-octet index does",
          "[import][jsonl][index]") {
  detail::enable_wide_escape(true);
  const std::vector<std::string> pieces = {"\r\n", "\r\n", "line of text", std::string(70, 'x'), "\r", "\n",
                                           "\t\"\\", std::string(1, '\0'), "\xe9", "\x7f"};
  std::mt19937 rng(11);
  std::size_t valid = 0, text = 0, declined = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string b;
    const std::size_t parts = rng() % 40;
    // Half the rounds plain text, a quarter with bare CR and LF, a quarter with octets
    // that want \u00XX (which the escaper leaves to the byte-wise one: no index then).
    const std::size_t kinds = round % 2 ? 4 : round % 4 == 2 ? pieces.size() - 3 : pieces.size();
    for (std::size_t k = 0; k < parts; ++k) b += pieces[rng() % kinds];
    if (round % 7 == 3) b += '\r';  // a CR as the very last octet
    std::string plain(kMaxEscape * b.size() + 16, '\0'), indexed(plain.size(), '\0');
    plain.resize(static_cast<std::size_t>(json_escape_to(plain.data(), b) - plain.data()));
    TextIndex ix;
    ix.valid = true;  // whatever it held before, it says only what this escape learnt
    indexed.resize(static_cast<std::size_t>(json_escape_to(indexed.data(), b, &ix) - indexed.data()));
    REQUIRE(indexed == plain);  // the index changes nothing in the recording
    const bool escapable = std::none_of(b.begin(), b.end(), [](char c) {
      const auto u = static_cast<unsigned char>(c);
      return (u < 0x20 && c != '\t' && c != '\r' && c != '\n') || u >= 0x7f;
    });
    if (!detail::wide_escape_enabled()) {
      REQUIRE_FALSE(ix.valid);
      continue;
    }
    REQUIRE(ix.valid == escapable);
    if (!ix.valid) {
      ++declined;
      continue;
    }
    ++valid;
    TextIndex raw;
    REQUIRE(detail::index_text_wide(b.data(), b.size(), raw));
    REQUIRE(ix.text == raw.text);  // exact, as the raw index
    check_index(ix, b);
    text += ix.text;
  }
  if (!detail::wide_escape_enabled()) {
    WARN("this CPU has no AVX-512 VBMI2: the escape builds no index");
    return;
  }
  CHECK(valid > 10000);
  CHECK(text > 3000);
  CHECK(valid - text > 3000);
  CHECK(declined > 1000);
}

TEST_CASE("line end positions grow, copy and move without losing any", "[import][jsonl][index]") {
  Positions a;
  for (std::uint32_t k = 0; k < 1000; ++k) a.push_back(k * 3);
  std::uint32_t* room = a.room(20);  // written past the end, then committed
  for (std::uint32_t k = 0; k < 5; ++k) room[k] = 3000 + k;
  a.commit(room + 5);
  REQUIRE(a.size() == 1005);
  CHECK(a.data()[999] == 2997);
  CHECK(a.data()[1004] == 3004);
  Positions b = a;  // a copy
  CHECK(b.to_vector() == a.to_vector());
  Positions c = std::move(a);  // the moved-from one is empty and still usable
  CHECK(c.to_vector() == b.to_vector());
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the state after a move is specified
  a.push_back(7);
  a.push_back(8);
  CHECK(a.to_vector() == std::vector<std::uint32_t>{7, 8});
  b = std::move(c);
  CHECK(b.size() == 1005);
  c.push_back(1);
  CHECK(c.size() == 1);
}

TEST_CASE("the wide decoder gives the octets, index and errors of the byte-wise one", "[import][jsonl][index]") {
  detail::enable_wide_decode(true);
  if (!detail::wide_decode_enabled()) WARN("this CPU has no AVX-512 VBMI2: both runs take the byte-wise decoder");
  // Pieces of a JSON string's inside: every escape, in the forms lockstep writes and
  // others (upper-case hex, \/, \b), escapes it leaves to the byte-wise decoder (\u0100
  // and up, NUL/CR/LF as \u, unknown and cut-off escapes), runs of backslashes, raw
  // control, high and UTF-8 octets, and the closing quote.
  const std::vector<std::string> pieces = {
      "a", "bc", "plain text ", ".", R"(\r\n)", R"(\r\n)", R"(\r\n)", R"(\r\n.)", R"(\r)", R"(\n)", R"(\\)", R"(\")",
      R"(\t)", R"(\/)", R"(\b)", R"(\f)", R"(\u00e9)", R"(\u00E9)", R"(\u00ff)", R"(\u0080)", R"(\u007f)", R"(\u0001)",
      R"(\u0000)", R"(\u000d)", R"(\u000a)", R"(\u000D\u000A)", R"(\u0100)", R"(\u20ac)", R"(\u00g1)", R"(\u0)",
      R"(\x)", R"(\\\r\n)", R"(\\\\)", "\\", "\"", std::string("\x01", 1), std::string("\0", 1), "\t", "\r", "\n",
      "\xc3\xa9", "\xe9", "\x7f", std::string(70, 'x'), std::string(61, 'y')};
  std::mt19937 rng(2033);
  std::size_t differ = 0, with_lf = 0, texts = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string inside;
    const std::size_t target = rng() % (round % 4 == 0 ? 400 : 140);
    // Mostly the common pieces, so that long stretches stay on the wide path.
    while (inside.size() < target) {
      const std::size_t k = rng() % 8 < 6 ? rng() % 9 : rng() % pieces.size();
      inside += pieces[k];
    }
    const std::string tail = round % 10 == 0 ? "" : "\"}";  // some strings never end
    const std::string line = "{\"t\":1,\"data\":\"" + inside + tail;
    const Parsed wide = parse_line(line, true), bytewise = parse_line(line, false);
    if (!(wide == bytewise)) {
      ++differ;
      if (differ <= 3) {
        INFO(line);
        CHECK(wide.data == bytewise.data);
        CHECK(wide.error == bytewise.error);
        CHECK(wide.text == bytewise.text);
        CHECK(wide.lf == bytewise.lf);
        CHECK(wide.first_high == bytewise.first_high);
      }
    }
    with_lf += !bytewise.lf.empty();
    texts += bytewise.text;
  }
  CHECK(differ == 0);
  // The generator reaches both sides of every ruling.
  CHECK(with_lf > 2000);
  CHECK(texts > 2000);
  CHECK(texts < 19000);
  // Strings with thousands of line ends (the decoder refills its room for positions
  // several times in one string), with the byte-wise decoder taking over now and then.
  for (const std::string& every : {std::string(""), std::string(R"(\u00e9)"), std::string("\xe9"), std::string(R"(\r)")}) {
    std::string inside;
    for (int k = 0; k < 9000; ++k) {
      inside += R"(line \"q\" \\ \t)" + std::to_string(k) + R"(\r\n)";
      if (k % 997 == 0) inside += every;
    }
    const std::string line = "{\"data\":\"" + inside + "\"}";
    const Parsed wide = parse_line(line, true), bytewise = parse_line(line, false);
    CHECK(wide == bytewise);
    CHECK(bytewise.lf.size() == (every == R"(\r)" ? 0u : 9000u));
  }
  // Each escape on its own at every position around a 64-octet step.
  for (const std::string& piece : pieces) {
    for (std::size_t at = 0; at < 140; ++at) {
      const std::string line = "{\"data\":\"" + std::string(at, 'z') + piece + R"(\r\n)" + std::string(at % 7, 'q') + "\"}";
      INFO(line);
      CHECK(parse_line(line, true) == parse_line(line, false));
    }
  }
}

TEST_CASE("content checked through the text index gives the same findings as without it", "[import][jsonl][index]") {
  // Sessions whose content holds everything the content check looks at: dot-stuffing,
  // 8-bit octets (first in a command, then in content), long lines, bare LF and CR, NUL,
  // smuggling sequences, the end of data inside a write and split across writes.
  std::mt19937 rng(11);
  const std::vector<std::string> pieces = {
      "\xe9t\xe9\r\n", "Subject: x\r\n", "plain text line\r\n", "..stuffed\r\n", ".unstuffed\r\n", "caf\xe9\r\n",
      std::string(1100, 'L') + "\r\n", "bare\nlf\r\n", "bare\rcr\r\n", std::string("nul\0x\r\n", 7),
      "\r\n.\n", "\n.\r\n", "\r\n", "\t\"q\" \\ b\r\n"};
  for (int round = 0; round < 300; ++round) {
    std::string rec = jsonl_open(1, "1", "127.0.0.1:1", "127.0.0.1:2");
    Time t = 2;
    auto add = [&](Dir d, std::string_view b) { rec += jsonl_data(t++, "1", d, b); };
    add(Dir::server, "220 x LMTP ready\r\n");
    add(Dir::client, "LHLO c\r\n");
    add(Dir::server, "250-x\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n");
    for (int txn = 0; txn < 3; ++txn) {
      add(Dir::client, round % 4 == 0 ? "MAIL FROM:<caf\xe9@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n"
                                      : "MAIL FROM:<a@x>\r\nRCPT TO:<a@x>\r\nDATA\r\n");
      add(Dir::server, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n");
      std::string content;
      const int n = static_cast<int>(rng() % 12);
      for (int i = 0; i < n; ++i) content += pieces[rng() % (round % 2 ? pieces.size() : 6)];
      // Now and then a write longer than the scanner's 256 KiB block, 8-bit octets and
      // stuffed dots on both sides of the block's end.
      const bool huge = round % 25 == 7;
      if (huge)
        for (int i = 0; i < 20000; ++i) content += pieces[i % 50 == 0 ? 0 : i % 7 == 0 ? 3 : 2];
      content += ".\r\n";
      for (std::size_t at = 0; at < content.size();) {  // the content in writes of any size
        const std::size_t len = huge ? content.size() : 1 + rng() % (round % 3 == 0 ? 7 : 400);
        add(Dir::client, std::string_view(content).substr(at, len));
        at += len;
      }
      add(Dir::server, "250 2.0.0 <a@x> saved\r\n");
    }
    rec += jsonl_end(t, "1");
    TempFile f(rec);
    // The index as the reader built it, none at all (the wide paths off, so the content
    // scanner builds none either), or none from the source, so the scanner indexes the raw
    // octets itself (detail::index_text_wide, when this CPU has it).
    enum class Index { reader, none, raw };
    auto findings = [&](Index how) {
      detail::enable_wide_escape(how != Index::none);
      std::string err;
      auto src = open_source(f.path, "jsonl", err);
      REQUIRE(src);
      std::vector<std::string> got;
      Checker c(src->info(), "t", [&](SessionResult&& r) {
        for (const auto& x : r.findings) got.push_back(fmt::format("{} {} {} {}", x.rule->id, x.offset, x.bytes, x.explanation));
      });
      SourceEvent ev;
      std::size_t indexed_events = 0;
      while (src->next(ev)) {
        if (how != Index::reader) ev.index.valid = false;
        indexed_events += ev.index.valid && ev.index.text;
        c.on(ev);
      }
      c.finish();
      detail::enable_wide_escape(true);
      if (how == Index::reader) CHECK(indexed_events > 0);
      return got;
    };
    const auto with = findings(Index::reader);
    const auto without = findings(Index::none);
    INFO("round " << round);
    CHECK(with == without);
    CHECK(findings(Index::raw) == without);
    if (round % 2 == 1 && round < 40) CHECK_FALSE(without.empty());
  }
}

TEST_CASE("the content scanner indexes content its source did not, with the same report", "[import][jsonl][index]") {
  detail::enable_wide_escape(true);
  const bool wide = detail::wide_escape_enabled();
  if (!wide) WARN("this CPU has no AVX-512 VBMI2: the content scanner searches every line itself");
  auto scan = [](const std::string& content, bool wide_on) {
    detail::enable_wide_escape(wide_on);
    ContentScanner sc;
    sc.start(500);
    const std::size_t used = sc.feed(content);
    detail::enable_wide_escape(true);
    return std::pair{sc, used};
  };
  auto same = [](const ContentReport& a, const ContentReport& b) {
    auto occ = [](const Occurrence& o) { return std::pair{o.count, o.first_offset}; };
    CHECK(a.wire_octets == b.wire_octets);
    CHECK(a.size == b.size);
    CHECK(a.lines == b.lines);
    CHECK(a.max_line == b.max_line);
    CHECK(occ(a.long_lines) == occ(b.long_lines));
    CHECK(occ(a.bare_lf) == occ(b.bare_lf));
    CHECK(occ(a.bare_cr) == occ(b.bare_cr));
    CHECK(occ(a.nul) == occ(b.nul));
    CHECK(occ(a.eight_bit) == occ(b.eight_bit));
    CHECK(occ(a.unstuffed_dot) == occ(b.unstuffed_dot));
    CHECK(a.smuggling.size() == b.smuggling.size());
    CHECK(a.complete == b.complete);
  };
  // Plain text (stuffed and unstuffed dots, 8-bit octets, a long line), then the same with
  // a bare LF, which is not text: the scanner must not take it from an index.
  std::string text;
  for (int i = 0; i < 60; ++i) text += i % 9 == 0 ? "..stuffed\r\n" : i % 13 == 0 ? ".unstuffed caf\xe9\r\n" : "a line of text\r\n";
  text += std::string(1200, 'L') + "\r\n";
  const std::string plain = text + ".\r\nQUIT\r\n";
  const std::string bare = text + "bare\nlf\r\n.\r\nQUIT\r\n";
  for (const bool is_text : {true, false}) {
    const std::string& content = is_text ? plain : bare;
    const auto [on, used_on] = scan(content, true);
    const auto [off, used_off] = scan(content, false);
    INFO((is_text ? "plain" : "bare LF"));
    CHECK(used_on == used_off);
    CHECK(used_on == content.size() - 6);  // QUIT is left for the command parser
    CHECK(on.report().complete);
    same(on.report(), off.report());
    CHECK(off.indexed() == 0);
    if (is_text) CHECK(on.indexed() == (wide ? content.size() - 6 - 3 : 0));  // all but ".CRLF"
    else CHECK(on.indexed() == 0);
  }
}

TEST_CASE("the content scanner with an index whose first 8-bit octet lies before the content", "[import][jsonl][index]") {
  // One event of commands and content (a source without order may join them): the
  // index's first octet >= 0x80 is in the command, so the content is searched itself.
  for (const std::string content : {"plain\r\nd\xe9j\xe0\r\n.\r\n", "plain\r\nonly\r\n.\r\n"}) {
    const std::string event = "MAIL FROM:<caf\xe9@x>\r\n" + content;
    TextIndex ix;
    CHECK(parse_data(jsonl_data(1, "1", Dir::client, event), ix) == event);
    REQUIRE(ix.text);
    REQUIRE(ix.first_high == 14);
    const std::size_t at = event.size() - content.size();
    const TextHint hint{event.data(), event.size(), &ix};
    ContentScanner with, without;
    with.start(1000);
    without.start(1000);
    CHECK(with.feed(std::string_view(event).substr(at), &hint) == content.size());
    CHECK(without.feed(std::string_view(event).substr(at)) == content.size());
    INFO(content);
    CHECK(with.report().complete);
    CHECK(with.report().eight_bit.count == without.report().eight_bit.count);
    CHECK(with.report().eight_bit.first_offset == without.report().eight_bit.first_offset);
    CHECK((with.report().eight_bit.count > 0) == (content.find('\xe9') != std::string::npos));
    if (with.report().eight_bit.count) CHECK(with.report().eight_bit.first_offset == 1000 + 8);
  }
}

namespace {
// What a reader made of a recording: every event's fields, the index of its data, the
// lines it skipped and the first reason, and its error.
std::string read_summary(const std::string& path, bool mapped) {
  if (mapped) ::setenv("LOCKSTEP_MMAP", "1", 1);
  std::string err;
  auto src = open_source(path, "jsonl", err);
  ::unsetenv("LOCKSTEP_MMAP");
  if (!src) return "open: " + err;
  std::string out;
  SourceEvent ev;
  while (src->next(ev)) {
    out += fmt::format("{}|{}|{}|{}|{}|{}|{}|", static_cast<int>(ev.kind), ev.conn, static_cast<int>(ev.dir), ev.time,
                       ev.a, ev.b, ev.bytes);
    if (ev.index.valid) out += fmt::format("ix {} {} {}", ev.index.text, ev.index.first_high, fmt::join(ev.index.lf.to_vector(), ","));
    out += '\n';
  }
  return out + fmt::format("skipped {} ({}) error '{}'", src->skipped_lines, src->first_skipped, src->error());
}
}  // namespace

TEST_CASE("a mapped recording, whose parser finds its line ends, reads as one read line by line", "[import][jsonl]") {
  // Lines the parser takes whole and lines it leaves to the line reader: blank ones, CRLF
  // ends, white space around the object, raw line ends inside strings (data, text and a
  // key), an object over two lines, an unterminated string, garbage, a second object on
  // the line, and a last line without its LF.
  std::string body = R"(220 ready\r\nline\r\n.\r\n)";
  const std::vector<std::string> lines = {
      jsonl_meta(1, "t"),
      jsonl_open(2, "1", "127.0.0.1:1", "127.0.0.1:24"),
      "",
      "   ",
      R"({"t":3,"conn":"1","ev":"data","dir":"s","data":")" + body + "\"}\r",
      R"(  {"t":4,"conn":"1","ev":"data","dir":"c","data":"LHLO x\r\n"}  )",
      R"({"t":5,"conn":"1","ev":"data","dir":"c","data":"RAW)" "\n" R"(LF"})",
      R"({"t":6,"conn":"1","ev":"data","dir":"c","text":"RAW)" "\n" R"(LF","data":"x\r\n"})",
      R"({"t":7,"conn":"1","ev":"data","dir":"c","da)" "\n" R"(ta":"x\r\n"})",
      R"({"t":8,"conn":"1","ev":"data",)",
      R"("dir":"c","data":"NOOP\r\n"})",
      R"({"t":9,"conn":"1","ev":"data","dir":"c","data":"unterminated)",
      "\x01\x02garbage{",
      R"({"t":10,"conn":"1","ev":"data","dir":"s","data":"250 ok\r\n"}{"t":11})",
      R"({"t":12,"conn":"1","ev":"data","dir":"s","data":"250 fine\r\n"})",
      jsonl_data(13, "1", Dir::client, std::string(20000, 'x') + "\r\n" + std::string(5000, 'y') + "\xe9\r\n"),
      jsonl_data(13, "1", Dir::client, std::string(1500000, 'z') + "\r\n"),  // beyond what is parsed ahead
      R"({"t":14,"conn":"1","ev":"close","dir":"c"})",
  };
  std::string content;
  for (const auto& l : lines) content += l.ends_with('\n') ? l : l + "\n";
  for (const bool final_lf : {true, false}) {
    TempFile f(final_lf ? content : content.substr(0, content.size() - 1));
    const std::string mapped = read_summary(f.path, true), blocks = read_summary(f.path, false);
    CHECK(mapped == blocks);
    CHECK(mapped.find("|12|") != std::string::npos);
    CHECK(mapped.find("|14|") != std::string::npos);
    CHECK(mapped.find("RAW") == std::string::npos);
    INFO(mapped.substr(mapped.rfind("skipped")));
    CHECK(mapped.find("skipped 11 (line 7: ") != std::string::npos);
  }
}

TEST_CASE("a recording read in blocks, with lines across their edges, reads as the mapped one", "[import][jsonl]") {
  // Events of up to 300 KB (plain text, 8-bit octets, quotes and backslashes, bare line
  // ends) over several 1 MiB blocks: the parser takes the lines that lie whole in a block
  // and the reader joins the rest.
  std::mt19937 rng(2033);
  std::string content = jsonl_meta(1, "t") + "\n";
  int events = 0;
  while (content.size() < (5u << 20)) {
    std::string data;
    const std::size_t len = rng() % 4 == 0 ? 100000 + rng() % 200000 : rng() % 3000;
    while (data.size() < len) {
      switch (rng() % 6) {
        case 0: data += "\r\n"; break;
        case 1: data += '\xe9'; break;
        case 2: data += "\"\\"; break;
        case 3: data += '\n'; break;
        default: data += std::string(1 + rng() % 80, static_cast<char>('a' + rng() % 26)); break;
      }
    }
    content += jsonl_data(++events, "1", rng() % 2 ? Dir::client : Dir::server, data);
  }
  TempFile f(content);
  const std::string mapped = read_summary(f.path, true), blocks = read_summary(f.path, false);
  CHECK(blocks.find(fmt::format("|{}|", events)) != std::string::npos);
  CHECK(mapped == blocks);
  CHECK(blocks.ends_with("skipped 0 () error ''"));
}

TEST_CASE("a line parsed in a longer input is the line parsed alone", "[import][jsonl]") {
  std::mt19937 rng(5321);
  const std::vector<std::string> pieces = {"{", "}", "\"", ":", ",", "\"data\"", "\"t\"", "1", "\"x\"", R"(\r\n)", R"(\")",
                                           "\n", "\r", " ", "\\", "[1,{\"a\":2}]", "true", R"(\u00e9)", "\t"};
  std::size_t taken = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string line = round % 2 ? R"({"t":1,"data":")" : "{";
    const std::size_t n = rng() % 12;
    for (std::size_t k = 0; k < n; ++k) line += pieces[rng() % pieces.size()];
    if (round % 3) line += round % 2 ? "\"}" : "}";
    const std::string input = line + "\n" + R"({"t":2,"data":"next\r\n"})" + "\n";
    std::vector<JsonField> f1, f2;
    std::size_t n1 = 0, n2 = 0, used = 0;
    std::string e1, e2;
    TextIndex i1, i2;
    INFO(line);
    if (!parse_json_line(input, f2, n2, e2, &i2, used)) continue;
    ++taken;
    // Taken whole, it is exactly the first line, and parsed alone it gives the same.
    const std::string_view first = std::string_view(input).substr(0, input.find('\n'));
    REQUIRE(used == first.size() + 1);
    REQUIRE(parse_json_object(first, f1, n1, e1, &i1));
    REQUIRE(n1 == n2);
    for (std::size_t k = 0; k < n1; ++k) {
      CHECK(f1[k].key == f2[k].key);
      CHECK(f1[k].value.str == f2[k].value.str);
      CHECK(f1[k].value.kind == f2[k].value.kind);
      CHECK(f1[k].value.num == f2[k].value.num);
    }
    CHECK(i1.valid == i2.valid);
    CHECK(i1.text == i2.text);
    CHECK(i1.lf.to_vector() == i2.lf.to_vector());
  }
  CHECK(taken > 1000);
}

TEST_CASE("the recorder's data events are read by their own path as the general parser reads them",
          "[import][jsonl]") {
  std::mt19937 rng(2033);
  const std::vector<std::string> pieces = {"\"", "\\", "\n", " ", ".5", "-", "7", "}", "{", ",", ":", "\r",
                                           R"(\u00e9)", R"(\u0100)", R"(\r\n)", "\x01", "\xe9", "x"};
  std::size_t canonical = 0, fast = 0, perturbed_fast = 0;
  for (int round = 0; round < 30000; ++round) {
    std::string data;
    for (std::size_t k = rng() % 6; k > 0; --k) {
      switch (rng() % 5) {
        case 0: data += "\r\n"; break;
        case 1: data += static_cast<char>(rng() % 256); break;
        case 2: data += ".\r\n"; break;
        default: data += std::string(1 + rng() % 40, static_cast<char>('a' + rng() % 26)); break;
      }
    }
    const std::string conn = rng() % 4 ? std::to_string(rng() % 100000) : "c-" + std::to_string(rng() % 100);
    std::string line = jsonl_data(static_cast<Time>(rng() % 4000000000000000ull), conn,
                                  rng() % 2 ? Dir::client : Dir::server, data);
    const bool perturbed = round % 2;
    if (perturbed) {
      const std::size_t at = rng() % line.size();
      switch (rng() % 3) {
        case 0: line.insert(at, pieces[rng() % pieces.size()]); break;
        case 1: line.erase(at, 1); break;
        default: line[at] = pieces[rng() % pieces.size()][0]; break;
      }
    } else {
      ++canonical;
    }
    const std::string input = line + R"({"t":2,"conn":"9","ev":"data","dir":"c","data":"next\r\n"})" + "\n";
    RecordedData d;
    std::string bytes = "left over";
    TextIndex ix;
    INFO(line);
    if (!parse_recorded_data(input, d, bytes, &ix)) {
      CHECK(perturbed);  // the recorder's own lines all take the fast path
      continue;
    }
    ++fast;
    if (perturbed) ++perturbed_fast;
    // The general parser reads the same line to the same event.
    std::vector<JsonField> f;
    std::size_t n = 0, used = 0;
    std::string err;
    TextIndex gix;
    REQUIRE(parse_json_line(input, f, n, err, &gix, used));
    CHECK(used == d.used);
    REQUIRE(n == 5);
    CHECK(f[0].key == "t");
    CHECK(f[0].value.kind == JsonValue::number);
    CHECK_FALSE(f[0].value.has_frac);
    CHECK(f[0].value.num == d.time);
    CHECK(f[1].key == "conn");
    CHECK(f[1].value.str == d.conn);
    CHECK(f[2].key == "ev");
    CHECK(f[2].value.str == "data");
    CHECK(f[3].key == "dir");
    CHECK(f[3].value.str == (d.dir == Dir::server ? "s" : "c"));
    CHECK(f[4].key == "data");
    CHECK(f[4].value.str == bytes);
    CHECK(gix.valid == ix.valid);
    CHECK(gix.text == ix.text);
    CHECK(gix.first_high == ix.first_high);
    CHECK(gix.lf.to_vector() == ix.lf.to_vector());
  }
  CHECK(canonical == 15000);
  CHECK(fast >= canonical);
  // Times of 18 digits are read whole; 19 go to the general parser (no overflow here).
  RecordedData d;
  std::string bytes;
  TextIndex ix;
  CHECK(parse_recorded_data(R"({"t":999999999999999999,"conn":"1","ev":"data","dir":"s","data":"a"})" "\n", d, bytes, &ix));
  CHECK(d.time == 999999999999999999);
  CHECK(d.dir == Dir::server);
  CHECK_FALSE(parse_recorded_data(R"({"t":9999999999999999999,"conn":"1","ev":"data","dir":"c","data":"a"})" "\n", d, bytes, &ix));
  CHECK(perturbed_fast > 100);  // changes inside "data" keep the layout: both paths read them
}

TEST_CASE("the decoder's room grows across line ends split at its edges", "[import][jsonl][index]") {
  detail::enable_wide_decode(true);
  // The room starts at 4096 octets of input and doubles: a CR LF escape pair split at each
  // offset around 4096 and 8192 keeps the index whole, wide and byte-wise alike.
  for (std::size_t at = 4060; at < 4110; ++at) {
    for (const std::size_t second : {std::size_t{0}, 8192 - at}) {
      std::string inside(at, 'a');
      inside += R"(\r\n)";
      if (second) inside += std::string(second, 'b') + R"(\r\n)";
      inside += std::string(5000, 'c') + R"(\r\n)";
      const std::string line = "{\"data\":\"" + inside + "\"}";
      INFO(at << " " << second);
      const Parsed wide = parse_line(line, true), bytewise = parse_line(line, false);
      CHECK(wide == bytewise);
      CHECK(wide.text);
      CHECK(wide.lf.size() == (second ? 3u : 2u));
    }
  }
}

namespace {
// A clean session on connection "a" and one on "b" whose server sends a stray 350
// after the end of data, interleaved; `written` the server's stray line.
std::string two_sessions(std::string_view stray) {
  std::string r;
  Time t = 1;
  auto data = [&](const char* conn, Dir d, std::string_view b) { r += jsonl_data(++t, conn, d, b); };
  for (const char* conn : {"a", "b"}) r += jsonl_open(++t, conn, "127.0.0.1:1", "127.0.0.1:24");
  for (const char* conn : {"a", "b"}) {
    data(conn, Dir::server, "220 ready\r\n");
    data(conn, Dir::client, "LHLO x\r\n");
    data(conn, Dir::server, "250-x\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n");
    data(conn, Dir::client, "MAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\n");
    data(conn, Dir::server, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n");
    data(conn, Dir::client, "Subject: s\r\n\r\nb\r\n.\r\n");
  }
  data("a", Dir::server, "250 2.0.0 ok\r\n");
  data("b", Dir::server, std::string(stray) + "250 2.0.0 ok\r\n");
  for (const char* conn : {"a", "b"}) r += jsonl_end(++t, conn);
  return r;
}

struct Replayed {
  std::vector<SessionResult> results;
  std::vector<LadderReplay::Outcome> outcomes;  // in the order the sessions ended
  std::uint64_t replayed = 0, failed = 0, unnoted = 0;
  bool traced_from_now = false;
};

// The session of connection `conn` among the two of two_sessions().
const SessionResult& of_conn(const std::vector<SessionResult>& two, std::string_view conn) {
  REQUIRE(two.size() == 2);
  return two[0].conn == conn ? two[0] : two[1];
}

// Session b, the one with the stray reply, came out as `b`; the clean session a as it was.
void check_outcomes(const Replayed& r, LadderReplay::Outcome b) {
  REQUIRE(r.results.size() == 2);
  REQUIRE(r.outcomes.size() == 2);
  for (std::size_t i = 0; i < 2; ++i)
    CHECK(r.outcomes[i] == (r.results[i].conn == "b" ? b : LadderReplay::Outcome::as_is));
}

// Checks `path` without ladders, with LadderReplay; `change` runs after the first event
// (the source has the small file in its block by then).
Replayed check_replayed(const std::string& path, const std::function<void()>& change = {},
                        std::size_t max_spans = LadderReplay::kMaxSpans) {
  std::string err;
  auto src = open_source(path, "jsonl", err);
  REQUIRE(src);
  REQUIRE(src->rereadable());
  Replayed out;
  LadderReplay ladders(*src, src->info(), path, CheckerLimits{}, max_spans);
  CheckerLimits none;
  none.ladder = 0;
  Checker checker(src->info(), path, [&](SessionResult&& r) {
    out.outcomes.push_back(ladders.complete(r));
    out.results.push_back(std::move(r));
  }, none);
  SourceEvent ev;
  bool first = true;
  while (src->next(ev)) {
    ladders.on(checker, ev);
    if (first && change) change();
    first = false;
  }
  checker.finish();
  out.replayed = ladders.replayed();
  out.failed = ladders.failed();
  out.unnoted = ladders.unnoted();
  out.traced_from_now = ladders.tracing_from_start();
  return out;
}
}  // namespace

TEST_CASE("a session with problems gets its ladder from its lines read again, the others none", "[import][replay]") {
  TempFile f(two_sessions("350 lockers\r\n"));
  const Replayed r = check_replayed(f.path);
  check_outcomes(r, LadderReplay::Outcome::replayed);
  CHECK(r.replayed == 1);
  CHECK(r.failed == 0);
  const SessionResult& clean = of_conn(r.results, "a");
  const SessionResult& stray = of_conn(r.results, "b");
  CHECK(clean.errors == 0);
  CHECK(clean.ladder.empty());
  CHECK(stray.errors > 0);
  REQUIRE_FALSE(stray.ladder.empty());
  CHECK(stray.traced);
  // The ladder and findings of a check that traced it from the start.
  std::string err;
  auto src = open_source(f.path, "jsonl", err);
  std::vector<SessionResult> full;
  Checker checker(src->info(), f.path, [&](SessionResult&& x) { full.push_back(std::move(x)); });
  SourceEvent ev;
  while (src->next(ev)) checker.on(ev);
  checker.finish();
  const SessionResult& want = of_conn(full, "b");
  REQUIRE(want.ladder.size() == stray.ladder.size());
  for (std::size_t i = 0; i < want.ladder.size(); ++i) {
    CHECK(want.ladder[i].text == stray.ladder[i].text);
    CHECK(want.ladder[i].client_pair == stray.ladder[i].client_pair);
    CHECK(want.ladder[i].true_pair == stray.ladder[i].true_pair);
    CHECK(want.ladder[i].findings == stray.ladder[i].findings);
  }
  REQUIRE(want.findings.size() == stray.findings.size());
  for (std::size_t i = 0; i < want.findings.size(); ++i) CHECK(want.findings[i].rule == stray.findings[i].rule);
  CHECK(want.narrative == stray.narrative);
}

TEST_CASE("a session whose lines changed in the file keeps its findings without a ladder", "[import][replay]") {
  // The stray line becomes a harmless one of the same length once the check has begun:
  // the second run would see another session, so its result is not taken.
  const std::string before = two_sessions("350 lockers\r\n"), after = two_sessions("250 lockers\r\n");
  REQUIRE(before.size() == after.size());
  TempFile f(before);
  const Replayed r = check_replayed(f.path, [&] { std::ofstream(f.path, std::ios::binary) << after; });
  check_outcomes(r, LadderReplay::Outcome::changed);
  CHECK(r.replayed == 1);
  CHECK(r.failed == 1);
  const SessionResult& stray = of_conn(r.results, "b");
  CHECK(stray.errors > 0);
  CHECK(stray.ladder.empty());
  CHECK_FALSE(stray.traced);
}

TEST_CASE("past its budget of noted events the replay notes no more, and says so", "[import][replay]") {
  TempFile f(two_sessions("350 lockers\r\n"));
  // The file has 18 events: with room for 40 the stray session gets its ladder; with 10,
  // the open sessions' notes are dropped, it ends without one, and the sessions after
  // it are to be traced from their start.
  const Replayed room = check_replayed(f.path, {}, 40);
  CHECK(room.replayed == 1);
  CHECK(room.unnoted == 0);
  CHECK_FALSE(room.traced_from_now);
  const Replayed tight = check_replayed(f.path, {}, 10);
  check_outcomes(tight, LadderReplay::Outcome::unnoted);
  CHECK(tight.replayed == 0);
  CHECK(tight.unnoted == 1);
  CHECK(tight.traced_from_now);
  for (const auto& r : tight.results) CHECK(r.ladder.empty());
}
