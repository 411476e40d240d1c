#include "cli/fuzz.hpp"

#include <unistd.h>

#include <boost/json.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "scenarios/campaign.hpp"

namespace lockstep::cli {

namespace {
int report(const FuzzCliOptions& o, const std::string& what, std::uint64_t seed, const std::string& replay,
           const scenarios::CampaignResult& r);
std::uint64_t seed_of(const FuzzCliOptions& o) {
  return o.seed ? o.seed : static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) % 1000000000u;
}
std::function<void(const scenarios::CampaignProgress&)> progress_line(const FuzzCliOptions& o) {
  const bool tty = ::isatty(fileno(stderr));
  return [&o, tty](const scenarios::CampaignProgress& p) {
    if (o.quiet) return;
    const std::string line = fmt::format("{:.0f}s  sessions {} ({:.1f}/s)  states {}  findings {}  anomalies {}", p.seconds, p.sessions,
                                         p.seconds > 0 ? static_cast<double>(p.sessions) / p.seconds : 0.0, p.states, p.findings, p.anomalies);
    if (tty) fmt::print(stderr, "\r{}\x1b[K", line);
    else fmt::print(stderr, "{}\n", line);
  };
}

// The options both campaigns share.
template <class Options>
void common(Options& c, const FuzzCliOptions& o) {
  c.seed = seed_of(o);
  c.duration = std::chrono::milliseconds(static_cast<long long>(o.duration * 1000));
  c.sessions = o.sessions;
  c.minimise = !o.no_minimise;
  c.out_dir = o.out_dir.empty() ? fmt::format("lockstep-fuzz-{}", c.seed) : o.out_dir;
  for (std::size_t i = 0; i < c.placeholders.rcpts.size() && i < o.rcpts.size(); ++i) c.placeholders.rcpts[i] = o.rcpts[i];
  if (!o.bad_rcpt.empty()) c.placeholders.bad_rcpt = o.bad_rcpt;
  if (!o.from.empty()) c.placeholders.from = o.from;
}

int run_fuzz_client(const FuzzCliOptions& o) {
  const char* who = "lockstep fuzz";
  scenarios::ClientCampaignOptions c;
  c.listen = o.listen;
  c.trigger = o.trigger;
  c.reset = o.reset;
  common(c, o);
  c.timeout = std::chrono::milliseconds(static_cast<long long>((o.reply_timeout > 0 ? o.reply_timeout : 20) * 1000));
  if (o.base.empty()) {
    const char* env = std::getenv("LOCKSTEP_SCENARIOS");
    c.base = fmt::format("{}/suites/client/client-clean-delivery.yaml", env ? env : LOCKSTEP_SCENARIO_DIR);
  } else {
    c.base = o.base;
  }
  fmt::print(o.format == "json" ? stderr : stdout, "{}: client campaign on {}, seed {} (--seed {} repeats this run), reproducers in {}/\n", who,
             c.listen, c.seed, c.seed, c.out_dir);
  scenarios::CampaignResult r;
  try {
    r = scenarios::fuzz_client(c, progress_line(o));
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}: {}\n", who, e.what());
    return 2;
  }
  return report(o, "client on " + c.listen, c.seed,
                fmt::format("lockstep run --listen {} --trigger '{}'{} ", c.listen, c.trigger, c.reset.empty() ? "" : " --reset '" + c.reset + "'"), r);
}
}  // namespace

int run_fuzz(const FuzzCliOptions& o) {
  const char* who = "lockstep fuzz";
  if (o.target.empty() == o.listen.empty()) {
    fmt::print(stderr, "{}: give --target ADDR (fuzz a server) or --listen ADDR --trigger CMD (fuzz a client)\n", who);
    return 2;
  }
  if (!o.listen.empty()) {
    if (o.trigger.empty()) {
      fmt::print(stderr, "{}: --listen needs --trigger CMD, a command that makes the client under test deliver\n", who);
      return 2;
    }
    return run_fuzz_client(o);
  }
  scenarios::CampaignOptions c;
  c.target = o.target;
  common(c, o);
  c.reply_timeout = std::chrono::milliseconds(static_cast<long long>((o.reply_timeout > 0 ? o.reply_timeout : 3) * 1000));
  fmt::print(o.format == "json" ? stderr : stdout, "{}: target {}, seed {} (--seed {} repeats this run), reproducers in {}/\n", who, c.target,
             c.seed, c.seed, c.out_dir);
  scenarios::CampaignResult r;
  try {
    r = scenarios::fuzz_server(c, progress_line(o));
  } catch (const std::exception& e) {
    fmt::print(stderr, "{}: {}\n", who, e.what());
    return 2;
  }
  return report(o, c.target, c.seed, fmt::format("lockstep run --target {} ", c.target), r);
}

namespace {
int report(const FuzzCliOptions& o, const std::string& what, std::uint64_t seed, const std::string& replay,
           const scenarios::CampaignResult& r) {
  const char* who = "lockstep fuzz";
  if (!o.quiet && ::isatty(fileno(stderr))) fmt::print(stderr, "\n");
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
    boost::json::object doc{{"target", what}, {"seed", seed}, {"sessions", p.sessions}, {"seconds", p.seconds}, {"states", p.states},
                            {"anomalies", p.anomalies}, {"findings", std::move(fs)}, {"stopped", r.stopped}};
    fmt::print("{}\n", boost::json::serialize(doc));
  } else {
    fmt::print("{} sessions in {:.1f} s ({:.1f}/s), {} states reached, {} anomalies, {} distinct finding(s)\n", p.sessions, p.seconds,
               p.seconds > 0 ? static_cast<double>(p.sessions) / p.seconds : 0.0, p.states, p.anomalies, r.findings.size());
    for (const auto& f : r.findings) {
      fmt::print("  {}  [{}] {}\n", f.key, f.kind, f.explanation);
      fmt::print("      session {} (mutations: {}), reproducer {} {} (from {}){}\n", f.session, f.mutation, f.groups,
                 what.rfind("client", 0) == 0 ? "fault(s)" : "writes", f.groups_before,
                 f.reproducer.empty() ? "" : ": " + replay + f.reproducer);
    }
    if (!r.stopped.empty()) fmt::print("stopped early: {}\n", r.stopped);
  }
  return r.findings.empty() ? 0 : 1;
}
}  // namespace

}  // namespace lockstep::cli
