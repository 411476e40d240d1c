// The scenario format and the runner: parsing with line-numbered errors, patterns,
// placeholders and repeats; verdicts against the in-process LMTP server.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>

#include "engine/linereader.hpp"
#include "engine/source.hpp"
#include "proxy/toy_server.hpp"
#include "scenarios/convert.hpp"
#include "scenarios/runner.hpp"
#include "scenarios/scenario.hpp"

using namespace lockstep;
using namespace lockstep::scenarios;

namespace {
Scenario parse(const std::string& text) { return parse_scenario(text, "t.yaml", Placeholders{}); }

std::string parse_error(const std::string& text) {
  try {
    parse(text);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no error)";
}

const char* kHead = "id: t\ntitle: t\nsteps:\n";
}  // namespace

TEST_CASE("a scenario parses into steps with placeholders, groups, content and repeats", "[scenarios]") {
  const Scenario sc = parse(std::string("id: x\ntitle: a case\nrules: [LMTP-4.2-PER-RCPT-REPLIES]\nrequires: [CHUNKING]\n"
                                        "requirement: must\ntimeout: 2s\nsteps:\n"
                                        "  - S: \"220\"\n"
                                        "  - C: [\"MAIL FROM:<{from}>\", \"RCPT TO:<{rcpt2}>\"]\n"
                                        "  - S: {code: 2xx, count: 2}\n"
                                        "  - data: |\n      hello\n      .dot\n"
                                        "  - S: \"250|251 ~ ^2\\\\.0\"\n"
                                        "  - S?: 5xx\n"
                                        "  - repeat: {times: 3, steps: [{C: NOOP}, {S: \"250\"}]}\n"
                                        "  - C|: \"A\\\\r\\\\nB\\\\x41\"\n"
                                        "  - wait: 150ms\n"
                                        "  - S: closed\n"));
  CHECK(sc.id == "x");
  CHECK(sc.rules == std::vector<std::string>{"LMTP-4.2-PER-RCPT-REPLIES"});
  CHECK(sc.needs == std::vector<std::string>{"CHUNKING"});
  CHECK(sc.timeout == std::chrono::seconds(2));
  REQUIRE(sc.steps.size() == 15);
  CHECK(sc.steps[1].bytes == "MAIL FROM:<sender@example.org>\r\nRCPT TO:<bob@lab.test>\r\n");
  CHECK(sc.steps[1].line == 9);
  CHECK(sc.steps[2].expect.count == 2);
  CHECK(sc.steps[2].expect.codes == std::vector<std::string>{"2xx"});
  CHECK(sc.steps[3].bytes == "hello\r\n..dot\r\n.\r\n");
  CHECK(sc.steps[4].expect.matches(251, "2.0.0 ok"));
  CHECK_FALSE(sc.steps[4].expect.matches(251, "2.1.0 ok"));
  CHECK_FALSE(sc.steps[4].expect.matches(252, "2.0.0 ok"));
  CHECK(sc.steps[5].expect.optional);
  CHECK(sc.steps[6].bytes == "NOOP\r\n");
  CHECK(sc.steps[11].kind == ScenarioStep::Kind::expect);
  CHECK(sc.steps[12].bytes == "A\r\nBA");
  CHECK(sc.steps[13].wait == std::chrono::milliseconds(150));
  CHECK(sc.steps[14].kind == ScenarioStep::Kind::expect_close);
}

TEST_CASE("{x*N} fills a line with N octets", "[scenarios]") {
  const Scenario sc = parse(std::string(kHead) + "  - C: \"NOOP {x*1000} {x*0}!\"\n  - C|: \"{x*3}{rcpt1}\"\n");
  REQUIRE(sc.steps.size() == 2);
  CHECK(sc.steps[0].bytes == "NOOP " + std::string(1000, 'x') + " !\r\n");
  CHECK(sc.steps[1].bytes == "xxxalice@lab.test");
  CHECK_THAT(parse_error(std::string(kHead) + "  - C: \"NOOP {x*}\"\n"), Catch::StartsWith("t.yaml:4: {x*N} needs a count"));
  CHECK_THAT(parse_error(std::string(kHead) + "  - C: \"NOOP {x*99999999999}\"\n"), Catch::Contains("up to 16 MiB"));
  CHECK_THAT(parse_error(std::string(kHead) + "  - C: \"NOOP {x*5\"\n"), Catch::Contains("{x*N}"));
}

TEST_CASE("errors in a scenario name the file and the line", "[scenarios][bad-input]") {
  CHECK_THAT(parse_error(std::string(kHead) + "  - S: \"220\"\n  - X: nope\n"), Catch::StartsWith("t.yaml:5: unknown step 'X'"));
  CHECK_THAT(parse_error(std::string(kHead) + "  - S: \"2x0\"\n"), Catch::StartsWith("t.yaml:4: '2x0' is not a reply code"));
  CHECK_THAT(parse_error(std::string(kHead) + "  - S: \"250 ~ (\"\n"), Catch::Contains("bad regular expression"));
  CHECK_THAT(parse_error(std::string(kHead) + "  - wait: soon\n"), Catch::Contains("a duration"));
  CHECK_THAT(parse_error(std::string(kHead) + "  - C|: \"\\\\xZZ\"\n"), Catch::Contains("two hex digits"));
  CHECK_THAT(parse_error(std::string(kHead) + "  - repeat: {times: 0, steps: []}\n"), Catch::Contains("times must be"));
  CHECK_THAT(parse_error("id: t\nsteps: [\n"), Catch::StartsWith("t.yaml:"));
  CHECK_THAT(parse_error("title: no id\nsteps:\n  - C: NOOP\n"), Catch::Contains("no id"));
  CHECK_THAT(parse_error("id: t\ncolour: red\nsteps:\n  - C: NOOP\n"), Catch::Contains("t.yaml:2: unknown key 'colour'"));
  CHECK_THAT(parse_error("- just\n- a list\n"), Catch::Contains("a YAML mapping"));
  CHECK_THAT(parse_error(std::string(kHead) + "  - S: {code: 250, count: 0}\n"), Catch::Contains("count must be"));
  CHECK_THAT(parse_error(std::string("\x01\x02\xff garbage: [")), Catch::StartsWith("t.yaml"));
}

TEST_CASE("a small scenario cannot expand into unbounded memory or stack", "[scenarios][bad-input]") {
  // Nested repeats: 100000^3 steps.
  CHECK_THAT(parse_error(std::string(kHead) + "  - repeat: {times: 100000, steps: [{repeat: {times: 100000, steps: "
                                              "[{repeat: {times: 100000, steps: [{C: NOOP}]}}]}}]}\n"),
             Catch::Contains("more than 200000 steps"));
  // Fills: 20 lines of 16 MiB each.
  std::string fills = kHead;
  for (int i = 0; i < 20; ++i) fills += "  - C: \"NOOP {x*16000000}\"\n";
  CHECK_THAT(parse_error(fills), Catch::Contains("more than 256 MiB"));
  CHECK_THAT(parse_error(std::string(kHead) + "  - repeat: {times: 1000, steps: [{data: {size: 1000000}}]}\n"),
             Catch::Contains("more than 256 MiB"));
  // Regexes: deeply nested groups and very long patterns are refused before std::regex sees them.
  CHECK_THAT(parse_error(std::string(kHead) + "  - S: \"250 ~ " + std::string(40, '(') + "a" + std::string(40, ')') + "\"\n"),
             Catch::Contains("16 nested groups"));
  CHECK_THAT(parse_error(std::string(kHead) + "  - S: \"250 ~ " + std::string(600, 'a') + "\"\n"), Catch::Contains("512 characters"));
  CHECK_THAT(parse_error(std::string(kHead) + "  - S: \"250 ~ <x>" + std::string(40, '*') + "\"\n"), Catch::Contains("stacked quantifiers"));
  CHECK_NOTHROW(parse(std::string(kHead) + "  - S: \"250 ~ a*?b+?c\\\\**\"\n"));  // lazy quantifiers, an escaped star
  CHECK_THAT(parse_error(std::string(kHead) + "  - S: \"250 ~ ((a{999}){999})\"\n"), Catch::Contains("10000 at most"));
  CHECK_NOTHROW(parse(std::string(kHead) + "  - S: \"250 ~ ^[0-9]{3}( [a-z]{1,20})?$\"\n"));
  // Matching sees a bounded prefix: a 1 MiB reply text does not exhaust the stack.
  const Scenario sc = parse(std::string(kHead) + "  - S: \"250 ~ ^(a|b)*$\"\n");
  CHECK(sc.steps[0].expect.matches(250, std::string(1 << 20, 'a')));
  // The budget is per scenario: a second parse starts from zero.
  CHECK_NOTHROW(parse(std::string(kHead) + "  - C: \"NOOP {x*16000000}\"\n"));
  CHECK_NOTHROW(parse(std::string(kHead) + "  - C: \"NOOP {x*16000000}\"\n"));
}

TEST_CASE("the runner passes a conforming server and says where a case fails", "[scenarios][runner]") {
  proxy::ToyLmtpServer server;
  RunOptions o;
  o.target = "127.0.0.1:" + std::to_string(server.port());
  o.timeout = std::chrono::milliseconds(1500);
  const std::string hello = "id: t\ntitle: t\nsteps:\n  - S: \"220\"\n  - C: LHLO c.test\n  - S: \"250 ~ (^|\\n)PIPELINING\"\n";

  const auto pass = run_client(parse(hello + "  - C: [\"MAIL FROM:<a@b>\", \"RCPT TO:<alice@lab.test>\", \"RCPT TO:<nobody@lab.test>\", DATA]\n"
                                             "  - S: [\"250\", \"250\", \"550\", \"354\"]\n"
                                             "  - data: hi\n  - S: {code: 2xx, count: 1}\n  - S: none\n  - C: QUIT\n  - S: \"221\"\n  - S: closed\n"),
                                 o);
  CHECK(pass.verdict == Verdict::pass);
  CHECK(pass.reason.empty());
  CHECK(pass.transcript.front() == "S: 220 fake.lab.test LMTP ready");

  const auto wrong = run_client(parse(hello + "  - C: NOOP\n  - S: \"5xx\"\n"), o);
  CHECK(wrong.verdict == Verdict::fail);
  CHECK(wrong.line == 8);
  CHECK(wrong.reason == "expected 5xx, got '250 2.0.0 ok'");

  const auto silent = run_client(parse(hello + "  - C: \"MAIL FROM:<a@b>\"\n  - S: [\"250\", \"250\"]\n"), o);
  CHECK(silent.verdict == Verdict::fail);
  CHECK_THAT(silent.reason, Catch::Contains("no reply came within 1500 ms"));

  const auto na = run_client(parse("id: t\ntitle: t\nrequires: [CHUNKING]\nsteps:\n  - S: \"220\"\n  - C: LHLO c\n  - S: \"250\"\n  - C: \"BDAT 1 LAST\"\n"), o);
  CHECK(na.verdict == Verdict::not_applicable);
  CHECK(na.reason == "CHUNKING is not advertised");

  // An optional reply that is not there leaves the next one for the next step.
  const auto opt = run_client(parse(hello + "  - C: NOOP\n  - S?: \"5xx\"\n  - S: \"250\"\n"), o);
  CHECK(opt.verdict == Verdict::pass);

  RunOptions nowhere = o;
  nowhere.target = "127.0.0.1:1";
  const auto down = run_client(parse(hello), nowhere);
  CHECK(down.verdict == Verdict::error);
  CHECK_THAT(down.reason, Catch::Contains("cannot connect to 127.0.0.1:1"));
}

TEST_CASE("a client-role scenario's faults change the commands on the wire", "[scenarios][runner][faults]") {
  proxy::ToyLmtpServer server;
  RunOptions o;
  o.target = "127.0.0.1:" + std::to_string(server.port());
  o.timeout = std::chrono::milliseconds(1500);
  const auto r = run_client(parse("id: t\ntitle: t\nfaults: [\"smuggle@content,variant=lfcrlf\"]\nsteps:\n  - S: \"220\"\n"
                                  "  - C: LHLO c\n  - S: \"250\"\n  - C: [\"MAIL FROM:<a@b>\", \"RCPT TO:<alice@lab.test>\", DATA]\n"
                                  "  - S: [\"250\", \"250\", \"354\"]\n  - data: hi\n  - S: \"250\"\n  - C: QUIT\n  - S: \"221\"\n"),
                            o);
  INFO(r.reason);
  CHECK(r.verdict == Verdict::pass);
  REQUIRE(server.received().size() == 1);
  // The ambiguous end of data went out before the real one; the toy server, which only
  // ends the data at CRLF.CRLF, read past it.
  CHECK_THAT(server.received()[0], Catch::Contains("\r\nhi\n.\r\n\r\n.\r\nQUIT\r\n"));
  CHECK(std::any_of(r.transcript.begin(), r.transcript.end(), [](const std::string& l) { return l.rfind("-- fault: ", 0) == 0; }));

  CHECK_THAT(parse_error("id: t\ntitle: t\nfaults: [\"inject@eod,text=350 x\"]\nsteps:\n  - C: NOOP\n"),
             Catch::StartsWith("t.yaml:3: fault 'inject@eod,text=350 x' changes the replies, but in a role: client scenario"));
}

TEST_CASE("the engine fails a case whose rule the server broke, even when the steps matched", "[scenarios][runner]") {
  // A server leaking '350 lockers' before its end-of-data reply: the steps accept any
  // reply, the engine does not.
  proxy::ToyLmtpServer server(proxy::ToyLmtpServer::Options{"350 lockers", 0});
  RunOptions o;
  o.target = "127.0.0.1:" + std::to_string(server.port());
  const auto r = run_client(parse("id: t\ntitle: t\nrules: [LMTP-4.2-PER-RCPT-REPLIES]\nsteps:\n  - S: \"220\"\n  - C: LHLO c\n  - S: \"250\"\n"
                                  "  - C: [\"MAIL FROM:<a@b>\", \"RCPT TO:<alice@lab.test>\", DATA]\n  - S: [any, any, \"354\"]\n"
                                  "  - data: hi\n  - S: any\n  - S: any\n"),
                            o);
  CHECK(r.verdict == Verdict::fail);
  CHECK_THAT(r.reason, Catch::StartsWith("LMTP-4.2-PER-RCPT-REPLIES"));
}

TEST_CASE("a recording becomes a scenario that replays against a live server and shows where replies differ",
          "[scenarios][replay]") {
  const std::string rec =
      "{\"t\":1,\"conn\":\"7\",\"ev\":\"open\",\"client\":\"c\",\"server\":\"s\"}\n"
      "{\"t\":2,\"conn\":\"7\",\"ev\":\"data\",\"dir\":\"s\",\"data\":\"220 x ready\\r\\n\"}\n"
      "{\"t\":3,\"conn\":\"7\",\"ev\":\"data\",\"dir\":\"c\",\"data\":\"LHLO c\\r\\n\"}\n"
      "{\"t\":4,\"conn\":\"7\",\"ev\":\"data\",\"dir\":\"s\",\"data\":\"250-x\\r\\n250 PIPELINING\\r\\n\"}\n"
      "{\"t\":5,\"conn\":\"7\",\"ev\":\"data\",\"dir\":\"c\",\"data\":\"MAIL FROM:<a@b>\\r\\nRCPT TO:<alice@lab.test>\\r\\nRCPT TO:<bob@lab.test>\\r\\nDATA\\r\\n\"}\n"
      "{\"t\":6,\"conn\":\"7\",\"ev\":\"data\",\"dir\":\"s\",\"data\":\"250 ok\\r\\n250 ok\\r\\nSECOND\\r\\n354 go\\r\\n\"}\n"
      "{\"t\":7,\"conn\":\"7\",\"ev\":\"data\",\"dir\":\"c\",\"data\":\"Subject: t\\r\\n\\r\\n..dot \\u00e9\\r\\n.\\r\\n\"}\n"
      "{\"t\":8,\"conn\":\"7\",\"ev\":\"data\",\"dir\":\"s\",\"data\":\"250 ok\\r\\nEOD2\\r\\n\"}\n"
      "{\"t\":9,\"conn\":\"7\",\"ev\":\"data\",\"dir\":\"c\",\"data\":\"QUIT\\r\\n\"}\n"
      "{\"t\":10,\"conn\":\"7\",\"ev\":\"data\",\"dir\":\"s\",\"data\":\"221 bye\\r\\n\"}\n"
      "{\"t\":11,\"conn\":\"7\",\"ev\":\"close\",\"dir\":\"s\"}\n"
      "{\"t\":12,\"conn\":\"7\",\"ev\":\"end\"}\n";
  auto convert = [](std::string text) {
    std::FILE* f = ::fmemopen(text.data(), text.size(), "r");
    auto src = make_jsonl_source(std::make_unique<LineReader>(f));
    auto out = recording_to_scenarios(*src, "rec.jsonl", "");
    std::fclose(f);
    return out;
  };
  proxy::ToyLmtpServer server;
  RunOptions o;
  o.target = "127.0.0.1:" + std::to_string(server.port());
  o.timeout = std::chrono::milliseconds(1500);
  // The recorded server accepted both recipients, as the toy server does.
  std::string same = rec;
  same.replace(same.find("SECOND"), 6, "250 ok");
  same.replace(same.find("EOD2"), 4, "250 ok");
  const auto s1 = convert(same);
  REQUIRE(s1.size() == 1);
  CHECK(s1[0].conn == "7");
  CHECK(s1[0].replies == 9);
  CHECK_THAT(s1[0].yaml, Catch::Contains("  - C|: \"Subject: t\\\\r\\\\n\\\\r\\\\n..dot \\\\xe9\\\\r\\\\n.\\\\r\\\\n\""));
  const Scenario sc1 = parse_scenario(s1[0].yaml, "rec.jsonl#7", o.placeholders);
  CHECK(sc1.id == "replay-rec-jsonl-7");
  const auto pass = run_client(sc1, o);
  INFO(pass.reason);
  CHECK(pass.verdict == Verdict::pass);
  // The recorded server refused bob; the live one accepts him: the first difference is named.
  std::string differ = rec;
  differ.replace(differ.find("SECOND"), 6, "550 5.1.1 no");
  differ.replace(differ.find("250 ok\\r\\nEOD2\\r\\n"), 16, "250 ok\\r\\n");
  const auto s2 = convert(differ);
  REQUIRE(s2.size() == 1);
  const auto fail = run_client(parse_scenario(s2[0].yaml, "rec.jsonl#7", o.placeholders), o);
  CHECK(fail.verdict == Verdict::fail);
  CHECK(fail.reason == "expected 550, got '250 2.1.5 ok'");
}
