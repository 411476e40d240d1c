#include "cli/proxy.hpp"

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include <mutex>
#include <utility>

#include "cli/report.hpp"
#include "proxy/relay.hpp"

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
  po.listen = *listen;
  po.upstream = *upstream;
  po.record = o.record;
  po.redact = o.redact;
  po.threads = o.threads;
  po.idle_timeout = std::chrono::milliseconds(static_cast<long long>(o.idle_timeout * 1000));
  po.reply_timeout = std::chrono::milliseconds(static_cast<long long>(o.reply_timeout * 1000));
  po.drain_timeout = std::chrono::milliseconds(static_cast<long long>(o.drain_timeout * 1000));
  po.connect_timeout = std::chrono::milliseconds(static_cast<long long>(o.connect_timeout * 1000));
  try {
    std::size_t used = 0;
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
  proxy::ProxyHooks hooks;
  hooks.finding = [&](const std::string& conn, const Finding& f) {
    if (o.quiet && f.severity != Severity::error) return;
    std::lock_guard lock(out_mu);
    if (json) {
      boost::json::object j{{"event", "finding"}, {"conn", conn}, {"rule", f.rule->id},
                            {"severity", to_string(f.severity)}, {"side", to_string(f.side)},
                            {"explanation", f.explanation}, {"bytes", f.bytes}, {"stream", to_string(f.stream)},
                            {"offset", f.offset}, {"command", f.command}, {"time_us", f.time},
                            {"proof", to_string(f.proof)}};
      fmt::print("{}\n", boost::json::serialize(j));
    } else {
      fmt::print("[conn {}] {} {}: {}\n", conn,
                 paint(severity_color(f.severity), fmt::format("{} {}", severity_mark(f.severity), f.rule->id)),
                 to_string(f.severity), f.explanation);
    }
    std::fflush(stdout);
  };
  hooks.session = [&](SessionResult&& r) {
    std::lock_guard lock(out_mu);
    if (json) {
      boost::json::array nar;
      for (const auto& n : r.narrative) nar.push_back(boost::json::string(n));
      boost::json::object j{{"event", "session"}, {"conn", r.conn}, {"client", r.client}, {"server", r.server},
                            {"commands", r.commands}, {"replies", r.replies}, {"errors", r.errors},
                            {"warnings", r.warnings}, {"notes", r.notes}, {"desynced", r.desynced},
                            {"narrative", std::move(nar)}};
      fmt::print("{}\n", boost::json::serialize(j));
    } else if (!o.quiet || r.errors > 0) {
      fmt::print("[conn {}] closed: {} commands, {} replies, {} error(s), {} warning(s), {} note(s){}\n", r.conn,
                 r.commands, r.replies, r.errors, r.warnings, r.notes, r.desynced ? paint("1;31", "; lockstep broken") : "");
      for (const auto& n : r.narrative) fmt::print("[conn {}]   {}\n", r.conn, n);
    }
    std::fflush(stdout);
  };
  hooks.event = [&](const std::string& conn, const std::string& text) {
    if (o.quiet && text.rfind("open ", 0) == 0) return;
    std::lock_guard lock(out_mu);
    if (json) {
      boost::json::object j{{"event", "log"}, {"conn", conn}, {"text", text}};
      fmt::print("{}\n", boost::json::serialize(j));
    } else {
      fmt::print("[conn {}] {}\n", conn, text);
    }
    std::fflush(stdout);
  };

  std::function<void()> stopped_hook;
  hooks.stopped = [&] {
    if (stopped_hook) stopped_hook();
  };
  proxy::Proxy p(po, hooks);
  try {
    p.start();
  } catch (const std::exception& e) {
    fmt::print(stderr, "lockstep proxy: {}\n", e.what());
    return 2;
  }
  if (!json)
    fmt::print(stderr, "lockstep proxy: listening on {}, relaying to {}{}\n", p.local_address(), o.upstream,
               o.record.empty() ? "" : fmt::format(", recording to {}", o.record));
  else
    fmt::print("{}\n", boost::json::serialize(boost::json::object{{"event", "listening"}, {"listen", p.local_address()},
                                                                  {"upstream", o.upstream}}));
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
    boost::asio::post(sig_strand, [&] {
      boost::system::error_code ig;
      stop_signals.cancel(ig);
      hup.cancel(ig);
    });
  };
  p.run();
  return 0;
}

}  // namespace lockstep::cli
