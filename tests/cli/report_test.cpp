// The JSON report of `lockstep check`: the streaming writer against boost::json's own
// serialisation, and a session document read back field by field.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "cli/json_writer.hpp"
#include "cli/report.hpp"
#include "engine/rules.hpp"

namespace bj = boost::json;
namespace jw = lockstep::cli::json;
using namespace lockstep;

namespace {
std::string written(std::string_view v) {
  std::string s;
  jw::string(s, v);
  return s;
}
std::string dom(std::string_view v) { return bj::serialize(bj::string(v)); }

bj::value read_back(const std::string& text) {
  bj::parse_options po;
  po.allow_invalid_utf8 = true;  // replies may carry raw 8-bit octets, written as they are
  return bj::parse(text, {}, po);
}
}  // namespace

TEST_CASE("the JSON writer escapes strings as boost::json does", "[cli][json]") {
  CHECK(written("") == "\"\"");
  for (int c = 0; c < 256; ++c) {
    const std::string one(1, static_cast<char>(c));
    INFO("octet " << c);
    CHECK(written(one) == dom(one));
    CHECK(written("ab" + one + "cd" + one) == dom("ab" + one + "cd" + one));
    std::string wide(24, 'x');  // inside the 16-octet blocks, next to plain and to escaped octets
    wide[3] = wide[13] = static_cast<char>(c);
    wide[14] = '"';
    CHECK(written(wide) == dom(wide));
  }
  CHECK(written("\r\n") == "\"\\r\\n\"");
  CHECK(written(std::string(1, '\x01')) == "\"\\u0001\"");
  CHECK(written("\x1f") == "\"\\u001f\"");
  CHECK(written("\x7f\xff") == "\"\x7f\xff\"");

  // Every escape at every position of a long plain run: the 16-octet blocks and the tail.
  for (const char special : std::string("\"\\\n\x1f\x00\x01", 6)) {
    for (std::size_t at = 0; at < 41; ++at) {
      std::string v(41, 'a');
      v[at] = special;
      INFO("escape " << int(special) << " at " << at);
      REQUIRE(written(v) == dom(v));
    }
  }

  std::mt19937 rng(7);
  const std::string special = std::string("\"\\\r\n\t\b\f\x01\x1f\x7f\x80\xff", 13) + "aZ ";
  for (int i = 0; i < 5000; ++i) {
    std::string v(rng() % 80, ' ');
    for (auto& ch : v) ch = (rng() % 3) ? special[rng() % special.size()] : static_cast<char>(rng() % 256);
    INFO("case " << i);
    REQUIRE(written(v) == dom(v));
  }
}

TEST_CASE("the JSON writer writes numbers, booleans, objects and arrays as boost::json does", "[cli][json]") {
  std::string s;
  {
    jw::Object o(s);
    o.num("zero", 0);
    o.num("max", std::numeric_limits<std::uint64_t>::max());
    o.num("neg", std::numeric_limits<std::int64_t>::min());
    o.num("u32", std::uint32_t{4000000000u});
    o.num("yes", true);
    o.num("no", false);
    o.str("s", "x\"y");
    {
      o.key("empty");
      jw::Array a(s);
    }
    {
      o.key("list");
      jw::Array a(s);
      a.num(1);
      a.str("two");
      a.sep();
      jw::Object inner(s);
      inner.str("k", "v");
    }
    {
      o.key("nothing");
      jw::Object inner(s);
    }
  }
  const bj::value expected = bj::object{{"zero", 0},
                                        {"max", std::numeric_limits<std::uint64_t>::max()},
                                        {"neg", std::numeric_limits<std::int64_t>::min()},
                                        {"u32", 4000000000u},
                                        {"yes", true},
                                        {"no", false},
                                        {"s", "x\"y"},
                                        {"empty", bj::array{}},
                                        {"list", bj::array{1, "two", bj::object{{"k", "v"}}}},
                                        {"nothing", bj::object{}}};
  CHECK(s == bj::serialize(expected));
}

TEST_CASE("a session's JSON report holds every field, in boost::json's form", "[cli][json]") {
  SessionResult r;
  r.source = "/var/log/mail.log";
  r.conn = "12\t\"x\"";
  r.client = "127.0.0.1:4321";
  r.server = "unix:/run/dovecot/lmtp";
  r.info.format = "postfix";
  r.info.ordered = false;
  r.commands = 7;
  r.replies = 9;
  r.errors = 1;
  r.warnings = 0;
  r.notes = 2;
  r.desynced = true;
  r.final_state = "closing";
  r.narrative = {"DATA will receive '250 2.1.5 ok', meant for RCPT", "second \x01 line"};
  r.statuses = {"status=bounced (host said: 350 lockers (in reply to end of DATA command))"};

  Finding f;
  f.id = 1;
  f.rule = &rule("DESYNC-1-UNSOLICITED");
  f.severity = Severity::error;
  f.explanation = "a reply with no command \"outstanding\"";
  f.bytes = "350 lockers\\r\\n";
  f.offset = 230;
  f.located = true;
  r.findings.push_back(f);

  LadderEntry c;
  c.dir = Dir::client;
  c.text = "RCPT TO:<b\xe9@example.test>";
  c.offset = 40;
  LadderEntry s1;
  s1.dir = Dir::server;
  s1.text = "350 lockers";
  s1.offset = 230;
  s1.client_pair = "end of data";
  s1.findings = {1, 3};
  LadderEntry s2 = s1;
  s2.text = "250 2.0.0 ok";
  s2.findings.clear();
  s2.true_known = true;
  s2.true_pair = "end of data";
  s2.client_pair = "RSET";
  r.ladder = {c, s1, s2};

  SECTION("without faults") {
    const std::string text = cli::json_session(r);
    const bj::value v = read_back(text);
    CHECK(bj::serialize(v) == text);  // compact, keys in order, escapes as boost writes them
    const bj::object& o = v.as_object();
    CHECK(o.at("conn").as_string() == r.conn);
    CHECK(o.at("format").as_string() == "postfix");
    CHECK(o.at("ordered").as_bool() == false);
    CHECK(o.at("commands").to_number<std::uint64_t>() == 7);
    CHECK(o.at("replies").to_number<std::uint64_t>() == 9);
    CHECK(o.at("errors").to_number<int>() == 1);
    CHECK(o.at("notes").to_number<int>() == 2);
    CHECK(o.at("desynced").as_bool());
    CHECK(o.at("final_state").as_string() == "closing");
    CHECK_FALSE(o.contains("faults"));
    const bj::array& fs = o.at("findings").as_array();
    REQUIRE(fs.size() == 1);
    CHECK(fs[0].at("rule").as_string() == "DESYNC-1-UNSOLICITED");
    CHECK(fs[0].at("severity").as_string() == "error");
    CHECK(fs[0].at("explanation").as_string() == f.explanation);
    const bj::array& lad = o.at("ladder").as_array();
    REQUIRE(lad.size() == 3);
    CHECK(lad[0].at("dir").as_string() == "client");
    CHECK(lad[0].at("text").as_string() == c.text);
    CHECK(lad[0].at("offset").to_number<int>() == 40);
    CHECK_FALSE(lad[0].as_object().contains("client_pair"));
    CHECK_FALSE(lad[0].as_object().contains("findings"));
    CHECK(lad[1].at("dir").as_string() == "server");
    CHECK(lad[1].at("client_pair").as_string() == "end of data");
    CHECK_FALSE(lad[1].as_object().contains("true_pair"));
    CHECK(lad[1].at("findings") == bj::array{1, 3});
    CHECK(lad[2].at("true_pair").as_string() == "end of data");
    CHECK(lad[2].at("client_pair").as_string() == "RSET");
    const bj::array& nar = o.at("narrative").as_array();
    REQUIRE(nar.size() == 2);
    CHECK(nar[1].as_string() == r.narrative[1]);
    CHECK(o.at("client_status").as_array().at(0).as_string() == r.statuses[0]);
  }
  SECTION("with faults, and nothing else") {
    r.faults = {"stray reply '350 lockers' before end-of-data reply 1"};
    r.findings.clear();
    r.ladder.clear();
    r.narrative.clear();
    r.statuses.clear();
    const std::string text = cli::json_session(r);
    CHECK(bj::serialize(read_back(text)) == text);
    const bj::object o = read_back(text).as_object();
    CHECK(o.at("faults") == bj::array{"stray reply '350 lockers' before end-of-data reply 1"});
    CHECK(o.at("findings").as_array().empty());
    CHECK(o.at("ladder").as_array().empty());
    CHECK(o.at("client_status").as_array().empty());
  }
}
