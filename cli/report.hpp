#pragma once
// Reports of `lockstep check`: a readable ladder per session, JSON, and JUnit XML.
#include <cstdio>
#include <string>
#include <vector>

#include "engine/checker.hpp"

namespace lockstep::cli {

// The mark and ANSI colour of a severity in text output.
std::string_view severity_mark(Severity s);
std::string_view severity_color(Severity s);

struct TextOptions {
  bool color = false;
  enum class Ladder { all, problems, none } ladder = Ladder::problems;
  Severity min_severity = Severity::note;  // findings below are counted, not listed
};

struct Totals {
  std::uint64_t sessions = 0, clean = 0, desynced = 0, errors = 0, warnings = 0, notes = 0;
  std::uint64_t commands = 0, replies = 0, skipped_lines = 0;
  void add(const SessionResult& r);
};

void write_text_session(std::FILE* out, const SessionResult& r, const TextOptions& o);
void write_text_summary(std::FILE* out, const Totals& t, const TextOptions& o);

// One JSON object for a session (findings carry rule, severity, side, explanation).
std::string json_session(const SessionResult& r);
std::string json_totals(const Totals& t);

// A <testcase> per session; error findings become <failure>.
std::string junit_testcase(const SessionResult& r);

}  // namespace lockstep::cli
