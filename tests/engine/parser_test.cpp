// Framing and parsers, on whole input, byte by byte and split at every position.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <iterator>
#include <optional>
#include <utility>

#include "engine/capabilities.hpp"
#include "engine/command.hpp"
#include "engine/content.hpp"
#include "engine/line.hpp"
#include "engine/reply.hpp"
#include "tests/support/script.hpp"

using namespace lockstep;
using namespace lockstep::test;
using namespace std::string_literals;

namespace {
struct SplitLines {
  std::vector<std::string> texts;
  std::vector<LineEnd> ends;
  std::vector<bool> bare_cr, truncated;
  std::vector<std::uint64_t> offsets, lengths;
};
SplitLines split(const std::vector<std::string_view>& chunks, std::size_t cap = 8192) {
  LineSplitter s(cap);
  SplitLines out;
  for (auto c : chunks) {
    Line l;
    while (s.next(c, l)) {
      out.texts.emplace_back(l.text);
      out.ends.push_back(l.end);
      out.bare_cr.push_back(l.bare_cr);
      out.truncated.push_back(l.truncated);
      out.offsets.push_back(l.offset);
      out.lengths.push_back(l.length);
    }
  }
  return out;
}
}  // namespace

TEST_CASE("the line splitter gives the same lines however the bytes are split", "[parser][line]") {
  const std::string data = "MAIL FROM:<a@b>\r\nbare\nwith\rcr\r\n\r\nlast\r\n";
  const SplitLines whole = split({data});
  REQUIRE(whole.texts == std::vector<std::string>{"MAIL FROM:<a@b>", "bare", "with\rcr", "", "last"});
  CHECK(whole.ends[1] == LineEnd::bare_lf);
  CHECK(whole.ends[0] == LineEnd::crlf);
  CHECK(whole.bare_cr[2]);
  CHECK_FALSE(whole.bare_cr[0]);
  CHECK(whole.offsets == std::vector<std::uint64_t>{0, 17, 22, 31, 33});
  for_each_split(data, [&](std::vector<std::string_view> parts) {
    const SplitLines s = split(parts);
    CHECK(s.texts == whole.texts);
    CHECK(s.ends == whole.ends);
    CHECK(s.bare_cr == whole.bare_cr);
    CHECK(s.offsets == whole.offsets);
  });
  const SplitLines b = split(bytewise(data));
  CHECK(b.texts == whole.texts);
  CHECK(b.bare_cr == whole.bare_cr);
}

TEST_CASE("a CR at the end of one chunk and LF at the start of the next make one CRLF", "[parser][line]") {
  const SplitLines s = split({"NOOP\r", "\nQUIT\r", "x\r\n"});
  REQUIRE(s.texts.size() == 2);
  CHECK(s.ends[0] == LineEnd::crlf);
  CHECK_FALSE(s.bare_cr[0]);
  CHECK(s.bare_cr[1]);  // "QUIT\rx"
}

TEST_CASE("a line longer than the cap is cut but counted, in constant memory", "[parser][line][limits]") {
  std::string big(100000, 'x');
  big += "\r\nNOOP\r\n";
  const SplitLines s = split({std::string_view(big).substr(0, 50000), std::string_view(big).substr(50000)}, 1000);
  REQUIRE(s.texts.size() == 2);
  CHECK(s.texts[0].size() == 1000);
  CHECK(s.truncated[0]);
  CHECK(s.lengths[0] == 100002);
  CHECK(s.texts[1] == "NOOP");
  CHECK(s.offsets[1] == 100002);
}

TEST_CASE("reply lines are parsed into code, separator and text", "[parser][reply]") {
  auto r = parse_reply_line("250-PIPELINING");
  CHECK(r.code == 250);
  CHECK(r.sep == '-');
  CHECK(r.text == "PIPELINING");
  r = parse_reply_line("354");
  CHECK(r.code == 354);
  CHECK(r.sep == 0);
  r = parse_reply_line("25x ok");
  CHECK(r.code == -1);
  r = parse_reply_line("250/ok");
  CHECK(r.bad_sep);
}

TEST_CASE("enhanced status codes are recognised with their flaws", "[parser][reply]") {
  auto e = parse_enhanced("2.1.5 ok");
  REQUIRE(e);
  CHECK(e->str() == "2.1.5");
  CHECK(e->followed_by_space);
  CHECK_FALSE(parse_enhanced("ok 2.1.5"));
  CHECK_FALSE(parse_enhanced("3.1.5 no"));  // class 3 does not exist
  CHECK_FALSE(parse_enhanced("2.1.5.6 x"));
  e = parse_enhanced("5.01.1 x");
  REQUIRE(e);
  CHECK(e->leading_zero);
  e = parse_enhanced("2.0.0ok");
  REQUIRE(e);
  CHECK_FALSE(e->followed_by_space);
  CHECK_FALSE(parse_enhanced("2.1234.5 x"));
}

TEST_CASE("a multi-line reply is one reply, however its bytes arrive", "[parser][reply]") {
  const std::string data = "250-lmtp.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n354 go\r\n";
  auto run = [](const std::vector<std::string_view>& parts) {
    LineSplitter s;
    ReplyAssembler a;
    std::vector<Reply> out;
    for (auto p : parts) {
      Line l;
      while (s.next(p, l))
        if (a.add(l, 0)) out.push_back(a.take());
    }
    return out;
  };
  const auto whole = run({data});
  REQUIRE(whole.size() == 2);
  CHECK(whole[0].line_count == 3);
  CHECK(whole[0].code == 250);
  CHECK(whole[1].code == 354);
  CHECK(whole[1].index == 1);
  for_each_split(data, [&](std::vector<std::string_view> parts) {
    const auto r = run(parts);
    REQUIRE(r.size() == 2);
    CHECK(r[0].lines == whole[0].lines);
    CHECK(r[1].offset == whole[1].offset);
  });
}

TEST_CASE("a code change inside a multi-line reply is flagged, and the reply still ends at its last line",
          "[parser][reply]") {
  LineSplitter s;
  ReplyAssembler a;
  std::string_view in = "250-a\r\n421 b\r\n";
  Line l;
  int done = 0;
  Reply r;
  while (s.next(in, l))
    if (a.add(l, 0)) { r = a.take(); ++done; }
  CHECK(done == 1);
  CHECK(r.code_changed);
}

TEST_CASE("a reply notes 8-bit octets in any line and control octets after the code", "[parser][reply]") {
  auto reply = [](std::string_view in) {
    LineSplitter s;
    ReplyAssembler a;
    Line l;
    Reply r;
    while (s.next(in, l))
      if (a.add(l, 0)) r = a.take();
    return r;
  };
  Reply r = reply("250-first\r\n250 caf\xc3\xa9\r\n");  // 8-bit in the last line only
  CHECK(r.high);
  CHECK_FALSE(r.control);
  r = reply("250-a\x01b\r\n250 fine\r\n");  // a control octet in a continuation line
  CHECK(r.control);
  CHECK_FALSE(r.high);
  r = reply("250 a\tb \x7f\r\n");  // HT is allowed, DEL is not
  CHECK(r.control);
  r = reply("250 a\tb\r\n");
  CHECK_FALSE(r.control);
  r = reply("25\x01 text\r\n");  // in the code: malformed, not a control octet in the text
  CHECK(r.malformed);
  CHECK_FALSE(r.control);
  r = reply("250 2.0.0 ok\r\n");
  CHECK_FALSE(r.high);
  CHECK_FALSE(r.control);
}

TEST_CASE("every verb is recognised in any case, and nothing else is", "[parser][command]") {
  for (const Verb v : {Verb::lhlo, Verb::helo, Verb::ehlo, Verb::mail, Verb::rcpt, Verb::data, Verb::bdat,
                       Verb::rset, Verb::noop, Verb::quit, Verb::vrfy, Verb::expn, Verb::help, Verb::starttls,
                       Verb::auth, Verb::turn, Verb::etrn}) {
    const std::string name(to_string(v));
    std::string lower = name;
    for (char& ch : lower) ch = static_cast<char>(ch - 'A' + 'a');
    CHECK(parse_command(name).verb == v);
    CHECK(parse_command(lower + " x").verb == v);
    CHECK(parse_command(name.substr(0, name.size() - 1)).verb == Verb::unknown);
    CHECK(parse_command(name + "S").verb == Verb::unknown);
  }
  // Octets that upper-case alike under a careless fold (0x40 and 0x60) are not letters.
  CHECK(parse_command("`AIL FROM:<a@b>").verb == Verb::unknown);
  CHECK(parse_command("M@IL FROM:<a@b>").verb == Verb::unknown);
}

TEST_CASE("a command's parts stay with its own line when it is copied or moved", "[parser][command]") {
  // A short line lives inside the string object itself, a long one on the heap: both.
  for (const std::string line : {"RCPT TO:<a> X=1", "MAIL FROM:<someone.with.a.long.name@example.test> SIZE=123 BODY=8BITMIME"}) {
    std::optional<Command> first(parse_command(line));
    const auto check = [&](const Command& c) {
      CHECK(c.verb_text.data() >= c.line.data());
      CHECK(c.verb_text.data() + c.verb_text.size() <= c.line.data() + c.line.size());
      CHECK(c.path.data() > c.line.data());
      CHECK(c.arg.data() + c.arg.size() == c.line.data() + c.line.size());
      for (const Param& p : c.params) {
        CHECK(p.key.data() > c.line.data());
        CHECK(p.value.data() + p.value.size() <= c.line.data() + c.line.size());
      }
    };
    Command copy = *first;
    Command moved = std::move(*first);
    first.reset();  // nothing may point into the original any more
    Command assigned;
    assigned = copy;
    Command move_assigned;
    move_assigned = std::move(assigned);
    for (const Command* c : {&copy, &moved, &move_assigned}) {
      check(*c);
      CHECK(c->line == line);
      CHECK(c->verb_text == line.substr(0, 4));
      CHECK(c->arg == line.substr(5));
      CHECK(c->path == (line[0] == 'R' ? "a" : "someone.with.a.long.name@example.test"));
      REQUIRE(!c->params.empty());
      CHECK(c->params[0].value == (line[0] == 'R' ? "1" : "123"));
    }
  }
  const Command c = parse_command("MAIL FROM:<a@b> size=1 Body=8BITMIME smtputf8 X-ONE=2 NOTIFY=NEVER");
  REQUIRE(c.params.size() == 5);
  CHECK(c.params[0].id == ParamKey::size);
  CHECK(c.params[1].id == ParamKey::body);
  CHECK(c.params[2].id == ParamKey::smtputf8);
  CHECK_FALSE(c.params[2].has_value);
  CHECK(c.params[3].id == ParamKey::other);
  CHECK(c.params[4].id == ParamKey::notify);
  CHECK(c.param(ParamKey::body) == &c.params[1]);
  CHECK(c.count_param(ParamKey::size) == 1);
}

TEST_CASE("commands are parsed case-insensitively with path and parameters", "[parser][command]") {
  auto c = parse_command("mail from:<a@b.example> SIZE=123 BODY=8BITMIME");
  CHECK(c.verb == Verb::mail);
  CHECK(c.path == "a@b.example");
  REQUIRE(c.params.size() == 2);
  CHECK(c.param(ParamKey::size)->value == "123");
  CHECK_FALSE(c.syntax.bad_path);
  c = parse_command("RCPT TO: <x@y>");
  CHECK(c.syntax.space_around_colon);
  CHECK(c.path == "x@y");
  c = parse_command("RCPT TO:<\"odd > local\"@y> NOTIFY=NEVER");
  CHECK(c.path == "\"odd > local\"@y");
  CHECK(c.params.size() == 1);
  c = parse_command("BDAT 468 LAST");
  CHECK(c.verb == Verb::bdat);
  CHECK(c.bdat_size == 468);
  CHECK(c.bdat_last);
  c = parse_command("BDAT 99999999999999999999999 LAST");
  CHECK(c.syntax.bad_bdat);
  c = parse_command("RSET now");
  CHECK(c.syntax.args_not_allowed);
  c = parse_command("XFOO bar");
  CHECK(c.verb == Verb::unknown);
  c = parse_command("");
  CHECK(c.verb == Verb::unknown);
  c = parse_command("MAIL FROM:<unterminated");
  CHECK(c.syntax.bad_path);
}

TEST_CASE("the LHLO reply gives the capabilities", "[parser][capabilities]") {
  Reply r;
  r.lines = {"250-lmtp.test", "250-PIPELINING", "250-size 5000", "250-AUTH EXTERNAL PLAIN", "250 8bitmime"};
  const Capabilities c = parse_capabilities(r);
  CHECK(c.pipelining);
  CHECK(c.size);
  REQUIRE(c.size_limit);
  CHECK(*c.size_limit == 5000);
  CHECK(c.eightbit);
  CHECK(c.auth);
  CHECK_FALSE(c.chunking);
  CHECK(c.has("auth"));
}

TEST_CASE("each known LHLO keyword is told apart once, in any case, and nothing else is taken for one",
          "[parser][capabilities]") {
  const std::pair<std::string_view, Kw> known[] = {
      {"PIPELINING", Kw::pipelining}, {"EnhancedStatusCodes", Kw::enhancedstatuscodes}, {"chunking", Kw::chunking},
      {"BINARYMIME", Kw::binarymime}, {"8bitmime", Kw::eightbitmime}, {"SmtpUtf8", Kw::smtputf8}, {"dsn", Kw::dsn},
      {"STARTTLS", Kw::starttls}, {"Auth", Kw::auth}, {"SIZE", Kw::size}, {"expn", Kw::expn}, {"ETRN", Kw::etrn},
      {"help", Kw::help}};
  // Same length and first letter as a known one, or one letter more or less.
  const std::string_view others[] = {"PIPELININ", "PIPELININGS", "PIPELINENG", "ENHANCEDSTATUSCODE", "CHUNKINK",
                                     "BINARYMIMX", "8BITMIMX", "SMTPUTF7", "DSX", "DS", "STARTTLX", "AUTX", "SIZ",
                                     "SIZES", "EXPX", "ETRX", "HELO", "XCLIENT", "X-DSN"};
  Reply r;
  r.lines.emplace_back("250-lmtp.test");
  for (const auto& [name, kw] : known) r.lines.emplace_back(fmt::format("250-{}", name));
  for (const auto& name : others) r.lines.emplace_back(fmt::format("250-{} x", name));
  r.lines.emplace_back("250 END");
  const Capabilities c = parse_capabilities(r);
  REQUIRE(c.keywords().size() == std::size(known) + std::size(others) + 1);
  for (std::size_t i = 0; i < std::size(known); ++i) {
    CAPTURE(known[i].first);
    CHECK(c.keywords()[i].kw == known[i].second);
    CHECK(c.has(known[i].second));
  }
  for (std::size_t i = 0; i < std::size(others); ++i) {
    CAPTURE(others[i]);
    CHECK(c.keywords()[std::size(known) + i].kw == Kw::other);
  }
  CHECK((c.pipelining && c.enhanced_codes && c.chunking && c.binarymime && c.eightbit && c.smtputf8 && c.dsn &&
         c.starttls && c.auth && c.size));

  // Only the keyword itself sets its flag.
  Reply near;
  near.lines = {"250-lmtp.test"};
  for (const auto& name : others) near.lines.emplace_back(fmt::format("250-{}", name));
  near.lines.emplace_back("250 8BITMIMES");
  const Capabilities n = parse_capabilities(near);
  CHECK_FALSE((n.pipelining || n.enhanced_codes || n.chunking || n.binarymime || n.eightbit || n.smtputf8 || n.dsn ||
               n.starttls || n.auth || n.size));
  CHECK_FALSE(n.has(Kw::help));
  CHECK(n.has("helo"));

  // A copy shares the list; none is read before an LHLO reply.
  const Capabilities copy = c;
  CHECK(&copy.keywords() == &c.keywords());
  CHECK(Capabilities{}.keywords().empty());
  CHECK(Capabilities::assume_all().keywords().empty());
}

namespace {
ContentReport scan(const std::vector<std::string_view>& parts, std::size_t* rest = nullptr) {
  ContentScanner s;
  s.start(100);
  std::size_t left = 0;
  for (auto p : parts) {
    if (s.report().complete) {
      left += p.size();
      continue;
    }
    const std::size_t used = s.feed(p);
    left += p.size() - used;
  }
  if (rest) *rest = left;
  return s.report();
}
}  // namespace

TEST_CASE("content ends at CRLF.CRLF, un-stuffs dots, and leaves what follows", "[parser][content]") {
  const std::string data = "Subject: x\r\n..leading dot\r\nbody\r\n.\r\nQUIT\r\n";
  std::size_t rest = 0;
  const ContentReport whole = scan({data}, &rest);
  REQUIRE(whole.complete);
  CHECK(rest == 6);
  CHECK(whole.size == 12 + 14 + 6);  // one stuffed dot removed, ".CRLF" excluded
  CHECK(whole.lines == 3);
  CHECK(whole.unstuffed_dot.count == 0);
  CHECK(whole.smuggling.empty());
  for_each_split(data, [&](std::vector<std::string_view> parts) {
    std::size_t r2 = 0;
    const ContentReport c = scan(parts, &r2);
    CHECK(c.complete);
    CHECK(c.size == whole.size);
    CHECK(r2 == 6);
    CHECK(c.smuggling.empty());
  });
  const ContentReport b = scan(bytewise(data), &rest);
  CHECK(b.size == whole.size);
  CHECK(rest == 6);
}

TEST_CASE("an empty content is a lone dot right after the 354", "[parser][content]") {
  const ContentReport c = scan({".\r\n"});
  CHECK(c.complete);
  CHECK(c.empty);
  CHECK(c.size == 0);
}

TEST_CASE("every ambiguous end-of-data sequence of SMTP smuggling is found, split anywhere", "[parser][content][smuggling]") {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"a\n.\nb", "lflf"},        {"a\r.\rb", "crcr"},         {"a\r.\nb", "crlf"},
      {"a\n.\rb", "lfcr"},        {"a\n.\r\nb", "lfcrlf"},     {"a\r\n.\nb", "crlflf"},
      {"a\r.\r\nb", "crcrlf"},    {"a\r\n.\rb", "crlfcr"},     {"a\r\n\x00.\r\nb"s, "nullbefore"},
      {"a\r\n.\x00\r\nb"s, "nullafter"},
  };
  for (const auto& [body, name] : cases) {
    DYNAMIC_SECTION(name) {
      const std::string data = body + "\r\n.\r\n";
      for_each_split(data, [&](std::vector<std::string_view> parts) {
        const ContentReport c = scan(parts);
        REQUIRE(c.complete);
        REQUIRE(c.smuggling.size() >= 1);
        CHECK(c.smuggling.front().name == name);
      });
    }
  }
}

TEST_CASE("bare CR, bare LF, NUL, 8-bit octets, long lines and unstuffed dots are counted", "[parser][content]") {
  std::string data = "ok\r\nbare lf\nbare\rcr\r\n\xc3\xa9t\xc3\xa9\r\n.unstuffed\r\n";
  data += std::string(1200, 'x') + "\r\n.\r\n";
  const ContentReport c = scan({data});
  CHECK(c.complete);
  CHECK(c.bare_lf.count == 1);
  CHECK(c.bare_cr.count == 1);
  CHECK(c.eight_bit.count == 1);
  CHECK(c.unstuffed_dot.count == 1);
  CHECK(c.long_lines.count == 1);
  CHECK(c.max_line == 1202);
}

TEST_CASE("the first bare CR is located the same wherever the content is cut", "[parser][content]") {
  // "From" CR "." CR "x": both CRs are bare; a cut right after the first one holds it
  // undecided while the next piece brings the second.
  const std::string data = "a\r\nFrom\r.\rnder\r\nb\rc\r\n.\r\n";
  const std::uint64_t first = 100 + data.find('\r', 3);  // scan() starts at offset 100
  for (std::size_t cut = 0; cut <= data.size(); ++cut) {
    INFO("cut at " << cut);
    const ContentReport c = scan({data.substr(0, cut), data.substr(cut)});
    CHECK(c.complete);
    CHECK(c.bare_cr.first_offset == first);
  }
}

TEST_CASE("content that never ends is scanned in constant memory", "[parser][content][limits]") {
  ContentScanner s;
  s.start(0);
  const std::string block(1 << 20, 'y');  // one endless line
  for (int i = 0; i < 64; ++i) CHECK(s.feed(block) == block.size());
  CHECK_FALSE(s.report().complete);
  CHECK(s.consumed() == 64ull << 20);
}
