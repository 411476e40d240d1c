// lockstep fuzz against the in-process LMTP server: the engine's findings are the oracle,
// runs repeat from the seed, and each finding's reproducer is a scenario that parses.
#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "proxy/toy_server.hpp"
#include "scenarios/campaign.hpp"
#include "scenarios/server_runner.hpp"
#include "tests/scenarios/fake_mta.hpp"

#include <thread>

using namespace lockstep;
using namespace lockstep::scenarios;

namespace {
std::vector<std::string> keys(const CampaignResult& r) {
  std::vector<std::string> k;
  for (const auto& f : r.findings) k.push_back(f.key);
  return k;
}
}  // namespace

TEST_CASE("a campaign finds the stray reply of a leaking server and writes a reproducer", "[scenarios][campaign]") {
  proxy::ToyLmtpServer leaky(proxy::ToyLmtpServer::Options{"350 lockers", 0});
  CampaignOptions o;
  o.target = "127.0.0.1:" + std::to_string(leaky.port());
  o.seed = 5;
  o.sessions = 12;
  o.duration = std::chrono::milliseconds(0);
  // The toy server answers at once; each excused wait (a BDAT announcing more than it
  // sends) costs this much, many times over while minimising.
  o.reply_timeout = std::chrono::milliseconds(200);
  const CampaignResult r = fuzz_server(o, {});
  REQUIRE(r.error.empty());
  CHECK(r.progress.sessions == 12);
  CHECK(r.progress.states > 3);
  const auto k = keys(r);
  INFO(fmt::format("{}", fmt::join(k, " ")));
  const auto it = std::find_if(r.findings.begin(), r.findings.end(), [](const CampaignFinding& f) {
    return f.rule == "LMTP-4.2-PER-RCPT-REPLIES";
  });
  REQUIRE(it != r.findings.end());
  // The reproducer is a scenario lockstep run reads, about the rule, and minimised.
  const Scenario sc = parse_scenario(it->yaml, "repro.yaml", Placeholders{});
  CHECK(sc.rules == std::vector<std::string>{"LMTP-4.2-PER-RCPT-REPLIES"});
  CHECK(sc.requirement == it->explanation);  // metadata as text, not byte escapes (the § of "RFC 2033 §4.2")
  CHECK(it->groups <= it->groups_before);
  // Each key once.
  auto sorted = k;
  std::sort(sorted.begin(), sorted.end());
  CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
}

TEST_CASE("a campaign repeats from its seed; an unreachable server is an error", "[scenarios][campaign]") {
  proxy::ToyLmtpServer clean;
  CampaignOptions o;
  o.target = "127.0.0.1:" + std::to_string(clean.port());
  o.sessions = 8;
  o.duration = std::chrono::milliseconds(0);
  o.reply_timeout = std::chrono::milliseconds(400);
  o.minimise = false;
  o.seed = 99;
  const auto a = fuzz_server(o, {}), b = fuzz_server(o, {});
  CHECK(keys(a) == keys(b));
  CHECK(a.progress.states == b.progress.states);

  CampaignOptions nowhere = o;
  nowhere.target = "127.0.0.1:1";
  const auto down = fuzz_server(nowhere, {});
  CHECK_THAT(down.error, Catch::Contains("cannot connect to 127.0.0.1:1"));
  CHECK(down.findings.empty());
}

TEST_CASE("a client campaign puts random faults on a clean delivery and catches a client that reuses the connection",
          "[scenarios][campaign][server-role]") {
  ClientCampaignOptions o;
  o.listen = "127.0.0.1:0";
  o.base = std::string(LOCKSTEP_SOURCE_DIR) + "/scenarios/suites/client/client-clean-delivery.yaml";
  o.seed = 3;
  o.sessions = 10;
  o.duration = std::chrono::milliseconds(0);
  o.timeout = std::chrono::milliseconds(1500);
  o.minimise = false;
  // The campaign's listener address is known once it runs: the client reads it from here.
  std::string address;
  std::vector<std::thread> clients;
  o.trigger_hook = [&] { clients.emplace_back([&] { test::mta(address, true); }); };
  // Port 0 picks a free port; find it by listening first, then hand the campaign that address.
  {
    Listener probe("127.0.0.1:0");
    address = probe.address();
  }
  o.listen = address;
  const CampaignResult r = fuzz_client(o, {});
  for (auto& t : clients) t.join();
  REQUIRE(r.error.empty());
  CHECK(r.progress.sessions == 10);
  CHECK(r.progress.states > 2);
  REQUIRE_FALSE(r.findings.empty());  // a client that goes on after a stray reply or a failed delivery is caught
  for (const auto& f : r.findings) {
    const Scenario sc = parse_scenario(f.yaml, "repro.yaml", Placeholders{});
    CHECK(sc.role == "server");
    CHECK_FALSE(sc.faults.empty());
    CHECK(sc.rules == std::vector<std::string>{f.rule});
  }
}
