// Server-role scenarios: lockstep plays the LMTP server and judges a client. The clients
// here are threads of the test, one well-behaved and one that reuses a connection after
// a surplus reply (the Postfix bug class).
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>
#include <thread>

#include "scenarios/server_runner.hpp"

#include "tests/scenarios/fake_mta.hpp"

using namespace lockstep;
using namespace lockstep::scenarios;

using lockstep::test::Mta;
using lockstep::test::mta;

namespace {
CaseResult play(const std::string& file, bool reuse) {
  Listener l("127.0.0.1:0");
  ServeOptions o;
  o.timeout = std::chrono::milliseconds(3000);
  const Scenario sc = load_scenario(std::string(LOCKSTEP_SOURCE_DIR) + "/scenarios/" + file, o.placeholders);
  std::thread t;  // the client starts when lockstep triggers it, as a real one would
  o.trigger_hook = [&] { t = std::thread([&] { mta(l.address(), reuse); }); };
  CaseResult r = run_server(sc, l, o);
  t.join();
  return r;
}
}  // namespace

TEST_CASE("the client suite passes a client that delivers cleanly", "[scenarios][server-role]") {
  const CaseResult r = play("suites/client/client-clean-delivery.yaml", false);
  INFO(r.reason);
  CHECK(r.verdict == Verdict::pass);
  CHECK(r.transcript.front() == "-- connection accepted");
}

TEST_CASE("the client suite fails a client that reuses a connection after a surplus reply", "[scenarios][server-role]") {
  const CaseResult good = play("suites/client/client-cyrus-lockers.yaml", false);
  INFO(good.reason);
  CHECK(good.verdict == Verdict::pass);
  const CaseResult bad = play("suites/client/client-cyrus-lockers.yaml", true);
  CHECK(bad.verdict == Verdict::fail);
  CHECK(bad.reason == "the client sent 'RSET' instead of closing the connection");
}

TEST_CASE("a scenario's faults change the replies lockstep sends: the Cyrus incident from a clean server's steps",
          "[scenarios][server-role][faults]") {
  // incidents/clients/cyrus-lockers.yaml writes a clean server's replies; its fault
  // (the cyrus-lockers preset) puts '350 lockers' before the first end-of-data reply.
  const CaseResult good = play("incidents/clients/cyrus-lockers.yaml", false);
  INFO(good.reason);
  CHECK(good.verdict == Verdict::pass);
  const auto at = [&](const std::string& line) {
    return std::find(good.transcript.begin(), good.transcript.end(), line) - good.transcript.begin();
  };
  REQUIRE(at("S: 350 lockers") < static_cast<long>(good.transcript.size()));
  CHECK(at("S: 354 go ahead") < at("S: 350 lockers"));
  CHECK(at("S: 350 lockers") < at("S: 250 2.0.0 ok"));
  CHECK(std::any_of(good.transcript.begin(), good.transcript.end(), [](const std::string& l) { return l.rfind("-- fault: ", 0) == 0; }));
  // The client that goes on after the surplus reply is caught, as with the suite's
  // hand-written copy of the incident.
  const CaseResult bad = play("incidents/clients/cyrus-lockers.yaml", true);
  CHECK(bad.verdict == Verdict::fail);
  CHECK(bad.reason == "the client sent 'RSET' instead of closing the connection");
}

TEST_CASE("a fault that closes the connection ends it where the scenario says", "[scenarios][server-role][faults]") {
  Listener l("127.0.0.1:0");
  ServeOptions o;
  o.timeout = std::chrono::milliseconds(2000);
  const Scenario sc = parse_scenario("id: t\nrole: server\ntitle: t\nfaults: [\"close@lhlo\"]\nsteps:\n  - S: \"220 x\"\n"
                                     "  - C: LHLO\n  - S: \"250 x\"\n  - C: closed\n",
                                     "t.yaml", o.placeholders);
  std::string after_lhlo = "(not read)";
  std::thread t;
  o.trigger_hook = [&] { t = std::thread([&] {
    Mta m(l.address());
    m.reply();
    m.send("LHLO mta.test\r\n");
    after_lhlo = m.line();
  }); };
  const CaseResult r = run_server(sc, l, o);
  t.join();
  INFO(r.reason);
  CHECK(r.verdict == Verdict::pass);
  CHECK(after_lhlo.empty());  // EOF instead of the 250
  CHECK(std::find(r.transcript.begin(), r.transcript.end(), "S: (lockstep closed the connection: fault)") != r.transcript.end());
}

TEST_CASE("a client that never connects is an error, not a pass", "[scenarios][server-role]") {
  Listener l("127.0.0.1:0");
  ServeOptions o;
  o.timeout = std::chrono::milliseconds(300);
  const Scenario sc = parse_scenario("id: t\nrole: server\ntitle: t\nsteps:\n  - S: \"220 x\"\n  - C: LHLO\n", "t.yaml", o.placeholders);
  const CaseResult r = run_server(sc, l, o);
  CHECK(r.verdict == Verdict::error);
  CHECK_THAT(r.reason, Catch::Contains("did not connect"));
}

TEST_CASE("server-role steps parse, and misuse names the line", "[scenarios][server-role]") {
  Placeholders ph;
  const Scenario sc = parse_scenario("id: t\nrole: server\ntitle: t\nsteps:\n  - S: [\"250-a\", \"250 b\"]\n"
                                     "  - C: [MAIL, \"RCPT ~ <{rcpt2}>\"]\n  - C: content\n  - C?: QUIT\n  - S?: \"221 bye\"\n"
                                     "  - accept: true\n  - no-connection: 2s\n  - C: closed\n",
                                     "t.yaml", ph);
  REQUIRE(sc.steps.size() == 9);
  CHECK(sc.steps[0].bytes == "250-a\r\n250 b\r\n");
  CHECK(sc.steps[2].command.matches("RCPT TO:<bob@lab.test>"));
  CHECK_FALSE(sc.steps[2].command.matches("RCPT TO:<alice@lab.test>"));
  CHECK_FALSE(sc.steps[1].command.matches("RCPT TO:<bob@lab.test>"));
  CHECK(sc.steps[3].command.content);
  CHECK(sc.steps[5].if_matched);
  CHECK(sc.steps[7].wait == std::chrono::seconds(2));
  auto error = [&](const std::string& steps) -> std::string {
    try {
      parse_scenario("id: t\nrole: server\ntitle: t\nsteps:\n" + steps, "t.yaml", ph);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  };
  CHECK_THAT(error("  - S?: \"221\"\n"), Catch::StartsWith("t.yaml:5: S? answers the optional command"));
  CHECK_THAT(error("  - C: \"M4IL\"\n"), Catch::StartsWith("t.yaml:5: 'M4IL' is not a command verb"));
  CHECK_THAT(error("  - data: x\n"), Catch::StartsWith("t.yaml:5: unknown step 'data' for role server"));
  auto fault_error = [&](const std::string& faults) -> std::string {
    try {
      parse_scenario("id: t\nrole: server\ntitle: t\nfaults: " + faults + "\nsteps:\n  - S: \"220\"\n", "t.yaml", ph);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  };
  CHECK(fault_error("[cyrus-lockers, \"drop@eod#2+\"]").empty());
  CHECK_THAT(fault_error("[\"bare-lf@content\"]"), Catch::StartsWith("t.yaml:4: fault 'bare-lf@content' changes the commands"));
  CHECK_THAT(fault_error("[\"explode@eod\"]"), Catch::StartsWith("t.yaml:4: bad fault: "));
  CHECK_THAT(fault_error("cyrus-lockers"), Catch::StartsWith("t.yaml:4: faults must be a list"));
}
