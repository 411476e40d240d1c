#include "cli/fuzz.hpp"

#include <unistd.h>

#include <boost/json.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>

#include "scenarios/campaign.hpp"

namespace lockstep::cli {

int run_fuzz(const FuzzCliOptions& o) {
  const char* who = "lockstep fuzz";
  scenarios::CampaignOptions c;
  c.target = o.target;
  c.seed = o.seed ? o.seed : static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) % 1000000000u;
  c.duration = std::chrono::milliseconds(static_cast<long long>(o.duration * 1000));
  c.sessions = o.sessions;
  c.reply_timeout = std::chrono::milliseconds(static_cast<long long>(o.reply_timeout * 1000));
  c.minimise = !o.no_minimise;
  c.out_dir = o.out_dir.empty() ? fmt::format("lockstep-fuzz-{}", c.seed) : o.out_dir;
  for (std::size_t i = 0; i < c.placeholders.rcpts.size() && i < o.rcpts.size(); ++i) c.placeholders.rcpts[i] = o.rcpts[i];
  if (!o.bad_rcpt.empty()) c.placeholders.bad_rcpt = o.bad_rcpt;
  if (!o.from.empty()) c.placeholders.from = o.from;

  std::FILE* log = o.format == "json" ? stderr : stdout;
  fmt::print(log, "{}: target {}, seed {} (--seed {} repeats this run), reproducers in {}/\n", who, c.target, c.seed, c.seed, c.out_dir);
  const bool tty = ::isatty(fileno(stderr));
  auto show = [&](const scenarios::CampaignProgress& p) {
    if (o.quiet) return;
    const std::string line = fmt::format("{:.0f}s  sessions {} ({:.1f}/s)  states {}  findings {}  anomalies {}", p.seconds, p.sessions,
                                         p.seconds > 0 ? static_cast<double>(p.sessions) / p.seconds : 0.0, p.states, p.findings, p.anomalies);
    if (tty) fmt::print(stderr, "\r{}\x1b[K", line);
    else fmt::print(stderr, "{}\n", line);
  };
  scenarios::CampaignResult r;
  try {
    r = scenarios::fuzz_server(c, show);
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}: {}\n", who, e.what());
    return 2;
  }
  if (tty && !o.quiet) fmt::print(stderr, "\n");
  if (!r.error.empty()) {
    fmt::print(stderr, "{}: {}\n", who, r.error);
    return 2;
  }
  const auto& p = r.progress;
  if (o.format == "json") {
    boost::json::array fs;
    for (const auto& f : r.findings)
      fs.push_back({{"key", f.key}, {"rule", f.rule}, {"kind", f.kind}, {"explanation", f.explanation}, {"session", f.session},
                    {"mutations", f.mutation}, {"writes", f.groups}, {"writes_before_minimising", f.groups_before}, {"reproducer", f.reproducer}});
    boost::json::object doc{{"target", c.target}, {"seed", c.seed}, {"sessions", p.sessions}, {"seconds", p.seconds}, {"states", p.states},
                            {"anomalies", p.anomalies}, {"findings", std::move(fs)}, {"stopped", r.stopped}};
    fmt::print("{}\n", boost::json::serialize(doc));
  } else {
    fmt::print("{} sessions in {:.1f} s ({:.1f}/s), {} states reached, {} anomalies, {} distinct finding(s)\n", p.sessions, p.seconds,
               p.seconds > 0 ? static_cast<double>(p.sessions) / p.seconds : 0.0, p.states, p.anomalies, r.findings.size());
    for (const auto& f : r.findings) {
      fmt::print("  {}  [{}] {}\n", f.key, f.kind, f.explanation);
      fmt::print("      session {} (mutations: {}), reproducer {} writes (from {}){}\n", f.session, f.mutation, f.groups, f.groups_before,
                 f.reproducer.empty() ? "" : ": lockstep run --target " + c.target + " " + f.reproducer);
    }
    if (!r.stopped.empty()) fmt::print("stopped early: {}\n", r.stopped);
  }
  return r.findings.empty() ? 0 : 1;
}

}  // namespace lockstep::cli
