#pragma once
#include <string>
#include <vector>

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

}  // namespace lockstep::cli
