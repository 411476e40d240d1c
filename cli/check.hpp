#pragma once
#include <string>
#include <vector>

namespace lockstep {
class Source;
}

namespace lockstep::cli {

struct CheckOptions {
  std::vector<std::string> files;
  std::string format = "text";        // text | json | junit
  std::string input_format = "auto";  // auto | jsonl | postfix | socat
  std::string ladder = "problems";    // all | problems | none
  std::string color = "auto";         // auto | always | never
  std::string min_severity = "note";
  std::string html;                   // also write the web view's ladders to this file
};

// Runs `lockstep check`; returns the exit code: 0 clean, 1 error findings, 2 input error.
int run_check(const CheckOptions& o);

// Whether the check of `path` (read from `src`) takes the sessions' ladders on demand
// (engine/replay.hpp): a text report that shows the ladders of the sessions with problems
// only, of a recording in a regular file read by its name.
bool ladders_on_demand(const CheckOptions& o, const std::string& path, const Source& src);

}  // namespace lockstep::cli
