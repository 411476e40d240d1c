#pragma once
// Reports of a suite or scenario run, like h2spec's: per case the rules, the requirement,
// the verdict and, for a failure, why and the transcript. Text, JSON, JUnit, HTML.
#include <cstdio>
#include <string>
#include <vector>

#include "scenarios/runner.hpp"

namespace lockstep::scenarios {

struct SuiteRun {
  std::string suite;     // what ran: "suite server", "suite client", "run", "replay FILE"
  std::string target;
  std::string peer;      // the server's greeting, when one came
  std::vector<CaseResult> cases;
  std::size_t count(Verdict v) const;
};

void write_text(std::FILE* out, const SuiteRun& run, bool color, bool verbose);
std::string to_json(const SuiteRun& run);
std::string to_junit(const SuiteRun& run);
// One self-contained page: the summary table and a ladder diagram per case.
std::string to_html(const SuiteRun& run);

}  // namespace lockstep::scenarios
