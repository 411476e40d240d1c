#pragma once
// Stateful network fuzzing of a live LMTP server (lockstep is the client). Sessions are
// generated from the protocol's state model (LHLO, transactions of MAIL, RCPTs and DATA
// or BDAT, RSET, NOOP, QUIT) and mutated (verbs, parameters, paths, pipelining groups,
// line lengths, CR/LF variants, dot sequences, BDAT sizes, timing, fragmentation); the
// engine judges every reply (its findings are the oracle). Resets, early closes and
// replies that never come are anomalies, after each of which a known-good session checks
// that the server still delivers. Each distinct finding is minimised and saved once as
// a scenario that `lockstep run` replays. Deterministic from the seed.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "scenarios/scenario.hpp"

namespace lockstep::scenarios {

struct CampaignOptions {
  std::string target;                            // host:port, [v6]:port or unix:/path
  std::uint64_t seed = 1;
  std::chrono::milliseconds duration{60000};     // stop after this long ...
  std::uint64_t sessions = 0;                    // ... or this many sessions (0: no limit)
  std::chrono::milliseconds reply_timeout{3000}; // a reply owed and not sent in this time: a hang
  std::chrono::milliseconds connect_timeout{3000};
  std::string out_dir;                           // reproducers (empty: not written)
  bool minimise = true;
  Placeholders placeholders;
};

struct CampaignProgress {
  std::uint64_t sessions = 0, anomalies = 0, states = 0, findings = 0;
  double seconds = 0;
};

struct CampaignFinding {
  std::string key;          // RULE@VERB, or anomaly:KIND@VERB
  std::string rule;         // the rule ID, or "anomaly"
  std::string kind;         // finding, reset, closed, hang, down
  std::string explanation;  // the engine's sentence, or what happened
  std::string mutation;     // the mutations of the session that found it
  std::uint64_t session = 0;
  std::size_t groups = 0, groups_before = 0;  // writes in the reproducer, before minimising
  std::string reproducer;   // the scenario file written (empty when no out_dir)
  std::string yaml;         // the scenario text
};

struct CampaignResult {
  CampaignProgress progress;
  std::vector<CampaignFinding> findings;  // distinct, in the order found
  std::string stopped;                    // why the campaign ended early ("" when by limit)
  std::string error;                      // the server could not be reached at all
};

// Runs the campaign; `progress` is called about once a second.
CampaignResult fuzz_server(const CampaignOptions& opts, const std::function<void(const CampaignProgress&)>& progress);

// The same for a client (lockstep is the server): each session plays `base`, a clean
// server-role scenario (a delivery), with one or two random faults on lockstep's
// replies (the --fault syntax); the trigger makes the client deliver, the reset empties
// its queue. The engine's root findings of error severity about the client are the
// oracle; each distinct one is saved as `base` plus its faults, minimised (faults that
// do not matter removed), a scenario `lockstep run --listen --trigger` replays.
struct ClientCampaignOptions {
  std::string listen, trigger, reset;
  std::string base;                              // the clean scenario file
  std::uint64_t seed = 1;
  std::chrono::milliseconds duration{300000};
  std::uint64_t sessions = 0;
  std::chrono::milliseconds timeout{20000};      // for each expected connection or command
  std::string out_dir;
  bool minimise = true;
  Placeholders placeholders;
  std::function<void()> trigger_hook;            // tests: an in-process client
};
CampaignResult fuzz_client(const ClientCampaignOptions& opts, const std::function<void(const CampaignProgress&)>& progress);

}  // namespace lockstep::scenarios
