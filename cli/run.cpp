#include "cli/run.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "engine/source.hpp"
#include "scenarios/convert.hpp"
#include "scenarios/report.hpp"
#include "scenarios/runner.hpp"
#include "scenarios/scenario.hpp"
#include "scenarios/server_runner.hpp"

namespace lockstep::cli {

namespace {
bool selected(const scenarios::Scenario& sc, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes) {
    if (sc.id.rfind(p, 0) == 0) return true;
    for (const auto& r : sc.rules)
      if (r.rfind(p, 0) == 0) return true;
  }
  return false;
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out.flush());
}
}  // namespace

namespace {
// The output of a run in the chosen format, to standard output or a file; the exit code.
int report(const RunCliOptions& o, const char* who, const scenarios::SuiteRun& run);

std::vector<scenarios::ConvertedSession> convert(const ReplayCliOptions& o, const char* who, bool& ok) {
  std::string err;
  auto src = open_source(o.file, o.input_format, err);
  ok = static_cast<bool>(src);
  if (!src) {
    fmt::print(stderr, "{}: {}\n", who, err);
    return {};
  }
  auto sessions = scenarios::recording_to_scenarios(*src, o.file, o.conn);
  if (!src->error().empty()) {
    fmt::print(stderr, "{}: {}: {}\n", who, o.file, src->error());
    ok = false;
  }
  if (sessions.empty()) {
    fmt::print(stderr, "{}: {}: no session{}\n", who, o.file, o.conn.empty() ? "" : fmt::format(" with connection {}", o.conn));
    ok = false;
  }
  return sessions;
}
}  // namespace

int run_record_to_scenario(const ReplayCliOptions& o) {
  const char* who = "lockstep record-to-scenario";
  bool ok = true;
  const auto sessions = convert(o, who, ok);
  if (!ok) return 2;
  if (o.output_dir.empty()) {
    for (std::size_t i = 0; i < sessions.size(); ++i) fmt::print("{}{}", i ? "---\n" : "", sessions[i].yaml);
    return 0;
  }
  std::error_code ec;
  std::filesystem::create_directories(o.output_dir, ec);
  for (const auto& s : sessions) {
    const std::string id = s.yaml.substr(4, s.yaml.find('\n') - 4);
    const std::string path = (std::filesystem::path(o.output_dir) / (id + ".yaml")).string();
    if (!write_file(path, s.yaml)) {
      fmt::print(stderr, "{}: cannot write {}\n", who, path);
      return 2;
    }
    fmt::print("{} ({} replies{})\n", path, s.replies, s.mid_session ? ", joined mid-way" : "");
  }
  return 0;
}

int run_replay(const ReplayCliOptions& o) {
  const char* who = "lockstep replay";
  bool ok = true;
  const auto sessions = convert(o, who, ok);
  if (!ok) return 2;
  scenarios::RunOptions ro;
  ro.target = o.run.target;
  ro.timeout = std::chrono::milliseconds(static_cast<long long>(o.run.timeout * 1000));
  scenarios::SuiteRun run;
  run.suite = "replay " + o.file;
  run.target = o.run.target;
  for (const auto& s : sessions) {
    scenarios::Scenario sc;
    try {
      sc = scenarios::parse_scenario(s.yaml, o.file + "#" + s.conn, ro.placeholders);
    } catch (const std::exception& e) {
      fmt::print(stderr, "{}: {}\n", who, e.what());
      return 2;
    }
    run.cases.push_back(scenarios::run_client(sc, ro));
    if (run.cases.back().verdict == scenarios::Verdict::error && run.cases.size() == 1) {
      fmt::print(stderr, "{}: {}\n", who, run.cases.back().reason);
      return 1;
    }
  }
  return report(o.run, who, run);
}

int run_scenarios(const RunCliOptions& o) {
  const char* who = o.suite.empty() ? "lockstep run" : "lockstep suite";
  if (o.target.empty() == o.listen.empty()) {
    fmt::print(stderr, "{}: give --target ADDR (test a server) or --listen ADDR (test a client), one of them\n", who);
    return 2;
  }
  if (o.suite == "server" && o.target.empty()) {
    fmt::print(stderr, "{}: the server suite tests a server: give --target ADDR\n", who);
    return 2;
  }
  if (o.suite == "client" && o.listen.empty()) {
    fmt::print(stderr, "{}: the client suite tests a client: give --listen ADDR and --trigger CMD\n", who);
    return 2;
  }
  scenarios::RunOptions ro;
  ro.target = o.target;
  ro.timeout = std::chrono::milliseconds(static_cast<long long>(o.timeout * 1000));
  if (!o.rcpts.empty()) {
    for (std::size_t i = 0; i < ro.placeholders.rcpts.size() && i < o.rcpts.size(); ++i) ro.placeholders.rcpts[i] = o.rcpts[i];
  }
  if (!o.bad_rcpt.empty()) ro.placeholders.bad_rcpt = o.bad_rcpt;
  if (!o.from.empty()) ro.placeholders.from = o.from;

  std::vector<std::string> inputs = o.scenarios;
  if (!o.suite.empty()) {
    std::string dir = o.suite_dir;
    if (dir.empty()) {
      const char* env = std::getenv("LOCKSTEP_SCENARIOS");
      dir = fmt::format("{}/suites/{}", env ? env : LOCKSTEP_SCENARIO_DIR, o.suite);
    }
    if (!std::filesystem::is_directory(dir)) {
      fmt::print(stderr, "{}: no {} suite at {} (set --suite-dir or LOCKSTEP_SCENARIOS)\n", who, o.suite, dir);
      return 2;
    }
    inputs = {dir};
  }
  std::vector<scenarios::Scenario> cases;
  for (const auto& in : inputs) {
    if (!std::filesystem::exists(in)) {
      fmt::print(stderr, "{}: {}: no such file or directory\n", who, in);
      return 2;
    }
    for (const auto& f : scenarios::scenario_files(in)) {
      try {
        auto sc = scenarios::load_scenario(f, ro.placeholders);
        if (!o.only.empty() && !selected(sc, o.only)) continue;
        if (!o.skip.empty() && selected(sc, o.skip)) continue;
        cases.push_back(std::move(sc));
      } catch (const std::exception& e) {
        fmt::print(stderr, "{}: {}\n", who, e.what());
        return 2;
      }
    }
  }
  if (cases.empty()) {
    fmt::print(stderr, "{}: no scenario selected\n", who);
    return 2;
  }
  std::sort(cases.begin(), cases.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (std::size_t i = 1; i < cases.size(); ++i)
    if (cases[i].id == cases[i - 1].id) {
      fmt::print(stderr, "{}: two scenarios have the id '{}': {} and {}\n", who, cases[i].id, cases[i - 1].file, cases[i].file);
      return 2;
    }

  scenarios::SuiteRun run;
  run.suite = o.suite.empty() ? "run" : "suite " + o.suite;
  run.target = o.target.empty() ? o.listen : o.target;
  std::unique_ptr<scenarios::Listener> listener;
  scenarios::ServeOptions so;
  if (!o.listen.empty()) {
    try {
      listener = std::make_unique<scenarios::Listener>(o.listen);
    } catch (const std::exception& e) {
      fmt::print(stderr, "{}: {}\n", who, e.what());
      return 2;
    }
    run.target = listener->address();
    so.trigger = o.trigger;
    so.reset = o.reset;
    so.timeout = ro.timeout;
    so.placeholders = ro.placeholders;
    if (o.trigger.empty()) fmt::print(stderr, "{}: listening on {}; no --trigger: make the client connect\n", who, run.target);
  }
  for (const auto& sc : cases) {
    run.cases.push_back(listener ? scenarios::run_server(sc, *listener, so) : scenarios::run_client(sc, ro));
    const auto& r = run.cases.back();
    if (run.peer.empty())
      for (const auto& t : r.transcript)
        if (t.rfind("S: 220", 0) == 0) {
          run.peer = t.substr(3);
          break;
        }
    // The target is down: every other case would say the same.
    if (!listener && r.verdict == scenarios::Verdict::error && run.cases.size() == 1) {
      fmt::print(stderr, "{}: {}\n", who, r.reason);
      return 1;
    }
  }
  return report(o, who, run);
}

namespace {
int report(const RunCliOptions& o, const char* who, const scenarios::SuiteRun& run) {
  const bool color = o.format == "text" && o.output.empty() &&
                     (o.color == "always" || (o.color == "auto" && isatty(STDOUT_FILENO) != 0));
  std::string text;
  if (o.format == "json") text = scenarios::to_json(run);
  else if (o.format == "junit") text = scenarios::to_junit(run);
  if (o.format == "text") {
    std::FILE* out = stdout;
    if (!o.output.empty() && !(out = std::fopen(o.output.c_str(), "w"))) {
      fmt::print(stderr, "{}: cannot write {}\n", who, o.output);
      return 2;
    }
    scenarios::write_text(out, run, color, o.verbose);
    if (out != stdout) std::fclose(out);
  } else if (!o.output.empty()) {
    if (!write_file(o.output, text)) {
      fmt::print(stderr, "{}: cannot write {}\n", who, o.output);
      return 2;
    }
  } else {
    fmt::print("{}", text);
  }
  if (!o.html.empty() && !write_file(o.html, scenarios::to_html(run))) {
    fmt::print(stderr, "{}: cannot write {}\n", who, o.html);
    return 2;
  }
  return run.count(scenarios::Verdict::fail) + run.count(scenarios::Verdict::error) > 0 ? 1 : 0;
}
}  // namespace

}  // namespace lockstep::cli
