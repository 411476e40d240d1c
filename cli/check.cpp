#include "cli/check.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "cli/report.hpp"
#include "engine/checker.hpp"
#include "engine/replay.hpp"
#include "web/view.hpp"

namespace lockstep::cli {

bool ladders_on_demand(const CheckOptions& o, const std::string& path, const Source& src) {
  return o.format == "text" && o.ladder == "problems" && o.html.empty() && path != "-" && src.rereadable();
}

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
  // The --html page: every session in full, up to kHtmlSessions (a page stays usable).
  constexpr std::size_t kHtmlSessions = 1000;
  boost::json::array html;
  std::uint64_t html_dropped = 0;
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
    if (to.ladder == TextOptions::Ladder::none && o.html.empty()) limits.ladder = 0;
    // The text report shows the ladders of the sessions with problems only: from a
    // recording in a file, the sessions are checked without ladders, and those that turn
    // out to need one are checked again from their own lines (LadderReplay).
    const SourceInfo info = src->info();
    const bool replay = ladders_on_demand(o, path, *src);
    LadderReplay ladders(*src, info, path, limits);
    if (replay) limits.ladder = 0;
    Checker checker(info, path, [&](SessionResult&& r) {
      if (replay) {
        const auto outcome = ladders.complete(r);
        if (outcome == LadderReplay::Outcome::changed && ladders.failed() == 1)
          fmt::print(stderr, "lockstep check: {}: the lines of session {} could not be read again for its ladder (the "
                             "file changed while it was read?); its findings are shown without it\n",
                     path, r.conn);
        if (outcome == LadderReplay::Outcome::unnoted && ladders.unnoted() == 1)
          fmt::print(stderr, "lockstep check: {}: too many events of open sessions to keep track of: session {} and "
                             "others open at the time are shown without their ladders (--ladder all keeps them)\n",
                     path, r.conn);
      }
      totals.add(r);
      if (!o.html.empty()) {
        if (html.size() < kHtmlSessions) html.push_back(web::session_json(r, false));
        else ++html_dropped;
      }
      if (o.format == "text") write_text_session(out, r, to);
      else if (o.format == "json") {
        fmt::print(out, "{}{}", first_json ? "\n" : ",\n", json_session(r));
        first_json = false;
      } else {
        junit += junit_testcase(r);
      }
    }, limits);
    SourceEvent ev;
    while (src->next(ev)) {
      if (replay) ladders.on(checker, ev);
      else checker.on(ev);
    }
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
  if (!o.html.empty()) {
    std::string title = files.size() == 1 ? files.front() : fmt::format("{} files", files.size());
    if (html_dropped) title += fmt::format(" (the first {} sessions; {} more not shown)", kHtmlSessions, html_dropped);
    const std::string page = web::static_page(html, title);
    std::FILE* f = std::fopen(o.html.c_str(), "wb");
    if (!f || std::fwrite(page.data(), 1, page.size(), f) != page.size() || std::fclose(f) != 0) {
      fmt::print(stderr, "lockstep check: --html {}: cannot write: {}\n", o.html, std::strerror(errno));
      return 2;
    }
  }
  if (input_error) return 2;
  return totals.errors > 0 ? 1 : 0;
}

}  // namespace lockstep::cli
