// lockstep: an LMTP conformance tester and fuzzing proxy. Thin wiring of subcommands.
#include <CLI/CLI.hpp>
#include <unistd.h>
#include <fmt/format.h>

#include "cli/check.hpp"
#include "cli/demo.hpp"
#include "cli/fuzz.hpp"
#include "cli/proxy.hpp"
#include "cli/run.hpp"
#include "engine/rules.hpp"

namespace {

int run_rules(bool markdown, bool unchecked_only) {
  using namespace lockstep;
  if (markdown) fmt::print("| Rule | Level | Why it is not checked yet |\n|---|---|---|\n");
  for (const Rule& r : all_rules()) {
    const RuleStatus s = rule_status(r);
    if (unchecked_only && s.checked) continue;
    if (markdown) fmt::print("| {} | {} | {} |\n", r.id, r.level, s.why_not);
    else fmt::print("{:<40} {:<8} {:<7} {}\n", r.id, to_string(r.severity), s.checked ? "checked" : "-", s.why_not);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"lockstep: LMTP conformance tester and fuzzing proxy"};
  app.set_version_flag("--version", std::string("lockstep ") + LOCKSTEP_VERSION);
  app.require_subcommand(1);

  lockstep::cli::CheckOptions co;
  auto* check = app.add_subcommand("check", "analyse recordings, Postfix -v logs or socat -v dumps offline");
  check->add_option("files", co.files, "files to check (- for standard input)")->required();
  check->add_option("--format", co.format, "report format")->check(CLI::IsMember({"text", "json", "junit"}));
  check->add_option("--input-format", co.input_format, "input format (default: detect)")
      ->check(CLI::IsMember({"auto", "jsonl", "postfix", "socat"}));
  check->add_option("--ladder", co.ladder, "which sessions get a ladder in the text report")
      ->check(CLI::IsMember({"all", "problems", "none"}));
  check->add_option("--color", co.color, "colour in the text report")->check(CLI::IsMember({"auto", "always", "never"}));
  check->add_option("--min-severity", co.min_severity, "list findings from this severity up")
      ->check(CLI::IsMember({"note", "warning", "error"}));
  check->add_option("--html", co.html, "also write the ladders, findings and narratives as one self-contained HTML file");

  lockstep::cli::ProxyCliOptions po;
  auto* proxy = app.add_subcommand("proxy", "relay an LMTP client and server, checking and recording live");
  proxy->add_option("--listen", po.listen, "where clients connect: host:port, [v6]:port or unix:/path")->required();
  proxy->add_option("--upstream", po.upstream, "the LMTP server: host:port, [v6]:port or unix:/path")->required();
  proxy->add_option("--record", po.record, "write a recording: a file, or a directory for one file per connection");
  proxy->add_option("--format", po.format, "output format")->check(CLI::IsMember({"text", "json"}));
  proxy->add_option("--color", po.color, "colour in the text output")->check(CLI::IsMember({"auto", "always", "never"}));
  proxy->add_flag("--quiet", po.quiet, "print only errors and the sessions that have them");
  proxy->add_flag("--redact", po.redact, "mask message content and AUTH exchanges in the recording (sizes and lines kept)");
  proxy->add_option("--threads", po.threads, "threads running connections, each with its own event loop (default: one per CPU)")
      ->check(CLI::Range(1u, 256u));
  proxy->add_option("--idle-timeout", po.idle_timeout,
                    "seconds the server may wait for the client's next command (default 300)")
      ->check(CLI::PositiveNumber);
  proxy->add_option("--reply-timeout", po.reply_timeout,
                    "seconds the client may wait for a reply (default: RFC 5321 §4.5.3.2, 2-10 minutes by command)")
      ->check(CLI::NonNegativeNumber);
  proxy->add_option("--connect-timeout", po.connect_timeout, "seconds to connect upstream")->check(CLI::PositiveNumber);
  proxy->add_option("--drain-timeout", po.drain_timeout,
                    "on SIGINT/SIGTERM, seconds open sessions get to finish before they are closed")
      ->check(CLI::NonNegativeNumber);
  proxy->add_option("--socket-mode", po.socket_mode, "permissions of a unix listening socket (octal, default 0666)");
  proxy->add_option("--fault", po.faults, "inject a fault: ACTION@WHERE[,KEY=VALUE...] or a preset (see lockstep faults)");
  proxy->add_option("--seed", po.seed, "seed of the faults' random choices (default: drawn and printed)");
  proxy->add_option("--control", po.control, "serve the HTTP control API on host:port (loopback unless a token is set)");
  proxy->add_option("--control-token", po.control_token, "bearer token the control API requires");
  proxy->add_option("--ui", po.ui, "serve the live web view on host:port (loopback unless --ui-token is set)");
  proxy->add_option("--ui-token", po.ui_token, "token the web view requires (open it as http://ADDR/?token=TOKEN)");

  auto* faults = app.add_subcommand("faults", "list the fault actions, positions and incident presets");

  lockstep::cli::RunCliOptions ro, so;
  auto scenario_options = [](CLI::App* c, lockstep::cli::RunCliOptions& o) {
    c->add_option("--target", o.target, "lockstep is the client: the server under test (host:port, [v6]:port or unix:/path)");
    c->add_option("--listen", o.listen, "lockstep is the server: where the client under test connects (host:port or unix:/path)");
    c->add_option("--trigger", o.trigger, "with --listen: a shell command that makes the client deliver, run at the start of each case");
    c->add_option("--reset", o.reset, "with --listen: a shell command run before each case (e.g. empty the client's queue)");
    c->add_option("--only", o.only, "run only the cases whose id or rule starts with this (repeatable)");
    c->add_option("--skip", o.skip, "skip the cases whose id or rule starts with this (repeatable)");
    c->add_option("--format", o.format, "report format")->check(CLI::IsMember({"text", "json", "junit"}));
    c->add_option("--output,-o", o.output, "write the report to a file instead of standard output");
    c->add_option("--html", o.html, "also write a self-contained HTML report with a ladder per case");
    c->add_option("--color", o.color, "colour in the text report")->check(CLI::IsMember({"auto", "always", "never"}));
    c->add_option("--rcpt", o.rcpts, "a recipient the server accepts ({rcpt1}, {rcpt2}, {rcpt3}; default alice, bob, carol @lab.test)");
    c->add_option("--bad-rcpt", o.bad_rcpt, "a recipient the server rejects ({bad_rcpt}; default nobody@lab.test)");
    c->add_option("--from", o.from, "the envelope sender ({from})");
    c->add_option("--timeout", o.timeout, "seconds to wait for each expected reply, command or connection (default 10)")->check(CLI::PositiveNumber);
    c->add_flag("--verbose,-v", o.verbose, "show the transcript of every case, not only of failures");
  };
  auto* run = app.add_subcommand("run", "play scenarios against a live LMTP server (--target) or client (--listen)");
  run->add_option("scenarios", ro.scenarios, "scenario files or directories")->required();
  scenario_options(run, ro);
  auto* suite = app.add_subcommand("suite", "run a conformance suite against a live peer");
  suite->add_option("kind", so.suite, "which suite: server (lockstep tests an LMTP server), client (lockstep tests an LMTP client)")
      ->required()
      ->check(CLI::IsMember({"server", "client"}));
  suite->add_option("--suite-dir", so.suite_dir, "where the suite's cases are (default: scenarios/suites/KIND)");
  scenario_options(suite, so);

  lockstep::cli::ReplayCliOptions rp, rs;
  auto* replay = app.add_subcommand("replay", "re-drive the client side of a recording against a live server and compare the replies");
  replay->add_option("file", rp.file, "a recording, socat -v dump or Postfix -v log")->required();
  replay->add_option("--target", rp.run.target, "the server: host:port, [v6]:port or unix:/path")->required();
  replay->add_option("--conn", rp.conn, "replay only this connection");
  replay->add_option("--input-format", rp.input_format, "input format (default: detect)")
      ->check(CLI::IsMember({"auto", "jsonl", "postfix", "socat"}));
  replay->add_option("--format", rp.run.format, "report format")->check(CLI::IsMember({"text", "json", "junit"}));
  replay->add_option("--output,-o", rp.run.output, "write the report to a file");
  replay->add_option("--html", rp.run.html, "also write an HTML report");
  replay->add_option("--color", rp.run.color, "colour")->check(CLI::IsMember({"auto", "always", "never"}));
  replay->add_option("--timeout", rp.run.timeout, "seconds to wait for each reply (default 10)")->check(CLI::PositiveNumber);
  replay->add_flag("--verbose,-v", rp.run.verbose, "show the transcript of every session");
  auto* r2s = app.add_subcommand("record-to-scenario", "turn each connection of a recording into a scenario file");
  r2s->add_option("file", rs.file, "a recording, socat -v dump or Postfix -v log")->required();
  r2s->add_option("--conn", rs.conn, "only this connection");
  r2s->add_option("--input-format", rs.input_format, "input format (default: detect)")
      ->check(CLI::IsMember({"auto", "jsonl", "postfix", "socat"}));
  r2s->add_option("--output-dir,-o", rs.output_dir, "write one FILE per connection there (default: all to standard output)");

  lockstep::cli::FuzzCliOptions fo;
  auto* fuzz = app.add_subcommand("fuzz", "stateful network fuzzing of a live LMTP server (--target) or client (--listen --trigger), judged by the engine");
  fuzz->add_option("--target", fo.target, "fuzz a server: host:port, [v6]:port or unix:/path");
  fuzz->add_option("--listen", fo.listen, "fuzz a client: lockstep listens here as its LMTP server (with --trigger)");
  fuzz->add_option("--trigger", fo.trigger, "with --listen: a shell command that makes the client deliver, run for each session");
  fuzz->add_option("--reset", fo.reset, "with --listen: a shell command run before each session (e.g. empty the client's queue)");
  fuzz->add_option("--base", fo.base, "with --listen: the clean server-role scenario the faults are put on (default: the client suite's clean delivery)");
  fuzz->add_option("--seed", fo.seed, "the campaign's seed (default: from the clock; printed, so a run can be repeated)");
  fuzz->add_option("--duration", fo.duration, "seconds to run (default 60)")->check(CLI::PositiveNumber);
  fuzz->add_option("--sessions", fo.sessions, "stop after this many sessions (with --duration: whichever comes first)");
  fuzz->add_option("--out,-o", fo.out_dir, "where the reproducer scenarios go (default: lockstep-fuzz-SEED/)");
  fuzz->add_option("--reply-timeout", fo.reply_timeout, "seconds without an owed reply before it counts as a hang (default 3; with --listen: per command or connection, default 20)")
      ->check(CLI::PositiveNumber);
  fuzz->add_flag("--no-minimise", fo.no_minimise, "save reproducers as found, without minimising them against the server");
  fuzz->add_option("--format", fo.format, "summary format")->check(CLI::IsMember({"text", "json"}));
  fuzz->add_flag("--quiet,-q", fo.quiet, "no progress line");
  fuzz->add_option("--rcpt", fo.rcpts, "a recipient the server accepts (repeatable; default alice, bob, carol @lab.test)");
  fuzz->add_option("--bad-rcpt", fo.bad_rcpt, "a recipient the server rejects (default nobody@lab.test)");
  fuzz->add_option("--from", fo.from, "the envelope sender");

  std::string demo_color = "auto";
  auto* demo = app.add_subcommand("demo", "a live demo: client -> lockstep proxy -> a server leaking a stray reply");
  demo->add_option("--color", demo_color, "colour")->check(CLI::IsMember({"auto", "always", "never"}));

  bool markdown = false, unchecked = false;
  auto* rules = app.add_subcommand("rules", "list the rule catalogue and what lockstep checks");
  rules->add_flag("--markdown", markdown, "as a Markdown table");
  rules->add_flag("--unchecked", unchecked, "only the rules not checked yet");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    if (*check) return lockstep::cli::run_check(co);
    if (*rules) return run_rules(markdown, unchecked);
    if (*proxy) return lockstep::cli::run_proxy(po);
    if (*faults) return lockstep::cli::run_faults_help();
    if (*run) return lockstep::cli::run_scenarios(ro);
    if (*suite) return lockstep::cli::run_scenarios(so);
    if (*replay) return lockstep::cli::run_replay(rp);
    if (*r2s) return lockstep::cli::run_record_to_scenario(rs);
    if (*fuzz) return lockstep::cli::run_fuzz(fo);
    if (*demo) return lockstep::cli::run_demo(demo_color == "always" || (demo_color == "auto" && isatty(STDOUT_FILENO)));
  } catch (const std::exception& e) {
    fmt::print(stderr, "lockstep: {}\n", e.what());
    return 2;
  }
  return 2;
}
