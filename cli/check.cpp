#include "cli/check.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "cli/report.hpp"
#include "engine/checker.hpp"

namespace lockstep::cli {

int run_check(const CheckOptions& o) {
  TextOptions to;
  to.color = o.color == "always" || (o.color == "auto" && o.format == "text" && isatty(STDOUT_FILENO) != 0);
  to.ladder = o.ladder == "all" ? TextOptions::Ladder::all
                                : (o.ladder == "none" ? TextOptions::Ladder::none : TextOptions::Ladder::problems);
  to.min_severity = o.min_severity == "error" ? Severity::error
                                              : (o.min_severity == "warning" ? Severity::warning : Severity::note);
  Totals totals;
  bool input_error = false;
  bool first_json = true;
  std::string junit;
  std::FILE* out = stdout;
  if (o.format == "json") fmt::print(out, "{{\"lockstep\":\"{}\",\"sessions\":[", LOCKSTEP_VERSION);

  // A directory stands for its files (the proxy's per-connection recordings), in name order.
  std::vector<std::string> files;
  for (const auto& path : o.files) {
    std::error_code ec;
    if (path != "-" && std::filesystem::is_directory(path, ec)) {
      std::vector<std::string> inner;
      for (const auto& e : std::filesystem::directory_iterator(path, ec))
        if (e.is_regular_file()) inner.push_back(e.path().string());
      std::sort(inner.begin(), inner.end());
      if (inner.empty()) {
        fmt::print(stderr, "lockstep check: {}: the directory holds no files\n", path);
        input_error = true;
      }
      files.insert(files.end(), inner.begin(), inner.end());
    } else {
      files.push_back(path);
    }
  }
  for (const auto& path : files) {
    std::string err;
    auto src = open_source(path, o.input_format, err);
    if (!src) {
      fmt::print(stderr, "lockstep check: {}\n", err);
      input_error = true;
      continue;
    }
    CheckerLimits limits;
    if (to.ladder == TextOptions::Ladder::none) limits.ladder = 0;
    Checker checker(src->info(), path, [&](SessionResult&& r) {
      totals.add(r);
      if (o.format == "text") write_text_session(out, r, to);
      else if (o.format == "json") {
        fmt::print(out, "{}{}", first_json ? "\n" : ",\n", json_session(r));
        first_json = false;
      } else {
        junit += junit_testcase(r);
      }
    }, limits);
    SourceEvent ev;
    while (src->next(ev)) checker.on(ev);
    checker.finish();
    if (!src->error().empty()) {
      fmt::print(stderr, "lockstep check: {}: {}\n", path, src->error());
      input_error = true;
    }
    if (src->skipped_lines) {
      totals.skipped_lines += src->skipped_lines;
      fmt::print(stderr, "lockstep check: {}: {} line(s) skipped; first: {}\n", path, src->skipped_lines,
                 src->first_skipped);
    }
  }
  if (o.format == "text") write_text_summary(out, totals, to);
  else if (o.format == "json") fmt::print(out, "\n],\"totals\":{}}}\n", json_totals(totals));
  else {
    fmt::print(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fmt::print(out, "<testsuite name=\"lockstep check\" tests=\"{}\" failures=\"{}\">\n{}</testsuite>\n",
               totals.sessions, totals.sessions - totals.clean, junit);
  }
  std::fflush(out);
  if (input_error) return 2;
  return totals.errors > 0 ? 1 : 0;
}

}  // namespace lockstep::cli
