#include <algorithm>
#include <thread>
#include "cli/proxy.hpp"

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include <mutex>
#include <optional>
#include <utility>

#include "cli/report.hpp"
#include "proxy/control.hpp"
#include "proxy/relay.hpp"
#include "web/store.hpp"
#include "web/ui.hpp"
#include "web/view.hpp"

namespace lockstep::cli {

int run_proxy(const ProxyCliOptions& o) {
  std::string err;
  auto listen = proxy::parse_address(o.listen, err);
  if (!listen) {
    fmt::print(stderr, "lockstep proxy: --listen {}\n", err);
    return 2;
  }
  auto upstream = proxy::parse_address(o.upstream, err);
  if (!upstream) {
    fmt::print(stderr, "lockstep proxy: --upstream {}\n", err);
    return 2;
  }
  proxy::ProxyOptions po;
  for (const auto& text : o.faults) {
    auto f = proxy::parse_fault(text, err);
    if (!f) {
      fmt::print(stderr, "lockstep proxy: {}\n", err);
      return 2;
    }
    for (const auto& g : po.faults)
      if (g.name == f->name) {
        fmt::print(stderr, "lockstep proxy: two faults are named '{}': give one a name (NAME=...)\n", f->name);
        return 2;
      }
    po.faults.push_back(std::move(*f));
  }
  po.seed = o.seed;
  po.listen = *listen;
  po.upstream = *upstream;
  po.record = o.record;
  po.redact = o.redact;
  po.threads = o.threads ? o.threads : std::clamp(std::thread::hardware_concurrency(), 1u, 256u);
  po.idle_timeout = std::chrono::milliseconds(static_cast<long long>(o.idle_timeout * 1000));
  po.reply_timeout = std::chrono::milliseconds(static_cast<long long>(o.reply_timeout * 1000));
  po.drain_timeout = std::chrono::milliseconds(static_cast<long long>(o.drain_timeout * 1000));
  po.connect_timeout = std::chrono::milliseconds(static_cast<long long>(o.connect_timeout * 1000));
  try {
    std::size_t used = 0;
    po.intercept = !o.ui.empty();
  po.socket_mode = static_cast<unsigned>(std::stoul(o.socket_mode, &used, 8));
    if (used != o.socket_mode.size() || po.socket_mode > 0777) throw std::invalid_argument("mode");
  } catch (const std::exception&) {
    fmt::print(stderr, "lockstep proxy: --socket-mode {}: an octal mode such as 0660 is expected\n", o.socket_mode);
    return 2;
  }

  const bool json = o.format == "json";
  const bool color = !json && (o.color == "always" || (o.color == "auto" && isatty(STDOUT_FILENO) != 0));
  auto paint = [color](std::string_view code, const std::string& s) {
    return color ? fmt::format("\x1b[{}m{}\x1b[0m", code, s) : s;
  };
  std::mutex out_mu;  // hooks run on several threads with --threads
  // Lines go out together, at most kOutputDelay after the first of them was printed,
  // rather than a write(2) per line: with a new connection every few hundred
  // microseconds, a write per event-loop turn was one or two per connection.
  constexpr auto kOutputDelay = std::chrono::milliseconds(20);
  std::optional<boost::asio::steady_timer> out_timer;  // once the proxy exists
  bool flush_due = false;                              // under out_mu
  auto flush_soon = [&] {                              // called under out_mu
    if (!out_timer) {
      std::fflush(stdout);
      return;
    }
    if (std::exchange(flush_due, true)) return;
    out_timer->expires_after(kOutputDelay);
    out_timer->async_wait([&](const boost::system::error_code&) {
      std::lock_guard lock(out_mu);
      flush_due = false;
      std::fflush(stdout);
    });
  };
  proxy::ProxyHooks hooks;
  hooks.finding = [&](const std::string& conn, const Finding& f) {
    if (o.quiet && f.severity != Severity::error) return;
    std::lock_guard lock(out_mu);
    if (json) {
      boost::json::object j = web::finding_json(f);
      j["event"] = "finding";
      j["conn"] = conn;
      j["injected"] = f.injected;
      j["after_fault"] = f.after_fault;
      fmt::print("{}\n", boost::json::serialize(j));
    } else {
      fmt::print("[conn {}] {} {}{}: {}\n", conn,
                 paint(severity_color(f.severity), fmt::format("{} {}", severity_mark(f.severity), f.rule->id)),
                 to_string(f.severity), f.injected ? paint("36", " (injected by lockstep)") : f.after_fault ? paint("36", " (after an injected fault)") : "", f.explanation);
    }
    flush_soon();
  };
  web::Store store;
  hooks.tape = [&](const std::string& conn, std::string&& tape, bool truncated) { store.tape(conn, std::move(tape), truncated); };
  // Whether a session's end is printed.
  const auto printed = [&](const SessionResult& r) { return json || !o.quiet || r.errors > 0; };
  hooks.session = [&](SessionResult&& r) {
    if (po.intercept) store.ended(r);
    std::lock_guard lock(out_mu);
    if (json) {
      boost::json::array nar;
      for (const auto& n : r.narrative) nar.push_back(boost::json::string(n));
      boost::json::object j{{"event", "session"}, {"conn", r.conn}, {"client", r.client}, {"server", r.server},
                            {"commands", r.commands}, {"replies", r.replies}, {"errors", r.errors},
                            {"warnings", r.warnings}, {"notes", r.notes}, {"desynced", r.desynced},
                            {"narrative", std::move(nar)}};
      fmt::print("{}\n", boost::json::serialize(j));
    } else if (printed(r)) {
      fmt::print("[conn {}] closed: {} commands, {} replies, {} error(s), {} warning(s), {} note(s){}\n", r.conn,
                 r.commands, r.replies, r.errors, r.warnings, r.notes, r.desynced ? paint("1;31", "; lockstep broken") : "");
      for (const auto& n : r.narrative) fmt::print("[conn {}]   {}\n", r.conn, n);
    } else {
      return;  // nothing printed: nothing to flush
    }
    flush_soon();
  };
  // What hooks.session shows: every session but the clean ones under --quiet (and the web
  // view lists them all).
  hooks.reports = [&](const SessionResult& r) { return printed(r) || po.intercept; };
  hooks.event = [&](const std::string& conn, const std::string& text) {
    if (o.quiet && text.rfind("open ", 0) == 0) return;
    std::lock_guard lock(out_mu);
    if (json) {
      boost::json::object j{{"event", "log"}, {"conn", conn}, {"text", text}};
      fmt::print("{}\n", boost::json::serialize(j));
    } else {
      fmt::print("[conn {}] {}\n", conn, text);
    }
    flush_soon();
  };

  std::function<void()> stopped_hook;
  hooks.stopped = [&] {
    if (stopped_hook) stopped_hook();
  };
  proxy::Proxy p(po, hooks);
  out_timer.emplace(p.io());
  struct DropTimer {  // before the proxy and its io_context go
    std::optional<boost::asio::steady_timer>& t;
    ~DropTimer() { t.reset(); }
  } drop_timer{out_timer};
  std::unique_ptr<proxy::ControlServer> control;
  std::unique_ptr<web::UiServer> ui;
  try {
    p.start();
    if (!o.control.empty()) control = std::make_unique<proxy::ControlServer>(p.io(), p, o.control, o.control_token);
    if (!o.ui.empty()) ui = std::make_unique<web::UiServer>(p.io(), p, store, web::UiOptions{o.ui, o.ui_token, o.redact});
  } catch (const std::exception& e) {
    fmt::print(stderr, "lockstep proxy: {}\n", e.what());
    return 2;
  }
  if (!json) {
    fmt::print(stderr, "lockstep proxy: listening on {}, relaying to {}{}\n", p.local_address(), o.upstream,
               o.record.empty() ? "" : fmt::format(", recording to {}", o.record));
    for (const auto& f : po.faults) fmt::print(stderr, "lockstep proxy: fault {}: {}\n", f.name, proxy::describe(f));
    if (!po.faults.empty() || control) fmt::print(stderr, "lockstep proxy: seed {} (--seed {} replays the choices)\n", p.seed(), p.seed());
    if (control) fmt::print(stderr, "lockstep proxy: control API on http://{}/\n", control->local_address());
    if (ui)
      fmt::print(stderr, "lockstep proxy: web view on http://{}/{}\n", ui->local_address(),
                 o.ui_token.empty() ? "" : "?token=...");
  } else {
    boost::json::object j{{"event", "listening"}, {"listen", p.local_address()}, {"upstream", o.upstream}, {"seed", p.seed()}};
    if (control) j["control"] = control->local_address();
    if (ui) j["ui"] = ui->local_address();
    fmt::print("{}\n", boost::json::serialize(j));
  }
  std::fflush(stdout);
  // SIGINT/SIGTERM: stop accepting; open sessions get --drain-timeout, and a second
  // signal closes them now. SIGHUP: reopen the recording files (log rotation). The
  // signal sets live on one strand; they are cancelled once the proxy has stopped, so
  // the event loop can end.
  auto sig_strand = boost::asio::make_strand(p.io());
  boost::asio::signal_set stop_signals(sig_strand, SIGINT, SIGTERM);
  boost::asio::signal_set hup(sig_strand, SIGHUP);
  bool stopping = false;
  std::function<void(const boost::system::error_code&, int)> on_stop = [&](const boost::system::error_code& ec, int) {
    if (ec) return;
    if (std::exchange(stopping, true)) {
      p.stop_now();
      return;
    }
    p.stop();
    stop_signals.async_wait(on_stop);
  };
  stop_signals.async_wait(on_stop);
  std::function<void(const boost::system::error_code&, int)> on_hup = [&](const boost::system::error_code& ec, int) {
    if (ec) return;
    p.reopen();
    hup.async_wait(on_hup);
  };
  hup.async_wait(on_hup);
  stopped_hook = [&] {
    if (control) control->stop();
    if (ui) ui->stop();
    boost::asio::post(sig_strand, [&] {
      boost::system::error_code ig;
      stop_signals.cancel(ig);
      hup.cancel(ig);
    });
  };
  p.run();
  std::fflush(stdout);
  return 0;
}

}  // namespace lockstep::cli

namespace lockstep::cli {

int run_faults_help() {
  fmt::print(
      "A fault: [NAME=]ACTION@WHERE[,KEY=VALUE...]  or  PRESET[,KEY=VALUE...]\n\n"
      "WHERE   greeting            the greeting\n"
      "        VERB[#N[+]]         the reply to the (Nth, Nth and later) command of a verb: lhlo, mail, rcpt, data, bdat, ...\n"
      "                            (the command itself for the client-side actions)\n"
      "        any[#N[+]]          the reply to the Nth command of any verb\n"
      "        eod[#K[+]]          the Kth per-recipient reply after end of data or BDAT LAST\n"
      "        content             the message content (client side)\n"
      "        data+N              after N octets of content (close, reset, delay)\n\n"
      "ACTION  on replies:  inject, inject-after (text=), replace (code=, text=), drop, dup, swap, split (line=),\n"
      "                     delay (ms=, jitter=), fragment (size=), coalesce, close, reset, shutdown,\n"
      "                     early (any#N: a reply before the client sends command N)\n"
      "        on commands: bare-lf, bare-cr, long-line (len=), after-quit (text=), pipeline-body (data),\n"
      "                     smuggle (content; variant=lflf|crcr|crlf|lfcr|lfcrlf|crlflf|crcrlf|crlfcr, text=)\n"
      "        both:        delay, fragment, close, reset (dir=c for a command position)\n\n"
      "KEYS    line=N (a line of a multi-line reply), txn=N (the Nth end of data), conn=N, every=N, p=0.25,\n"
      "        times=N (per connection); text= lines are separated by \\n; quote values with commas\n\n"
      "PRESETS\n");
  for (const auto& p : proxy::fault_presets()) fmt::print("  {:<26} {}\n  {:<26} {}\n", p.name, p.spec, "", p.incident);
  fmt::print("\nExamples\n"
             "  --fault cyrus-lockers\n"
             "  --fault 'inject@eod#1,text=350 lockers,conn=2'\n"
             "  --fault 'replace@eod#2,code=452,text=4.2.2 Mailbox full'\n"
             "  --fault 'delay@rcpt,ms=200,jitter=100,p=0.1'\n"
             "  --fault 'smuggle@content,variant=lflf,text=RSET'\n");
  return 0;
}

}  // namespace lockstep::cli
