#include "cli/report.hpp"

#include "cli/json_writer.hpp"
#include "web/view.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <map>

namespace lockstep::cli {

namespace {
struct Paint {
  bool on;
  std::string operator()(std::string_view code, std::string_view s) const {
    return on ? fmt::format("\x1b[{}m{}\x1b[0m", code, s) : std::string(s);
  }
};


std::string clip(std::string s, std::size_t n) {
  if (s.size() > n) s = s.substr(0, n - 3) + "...";
  return s;
}

std::string xml_escape(std::string_view s) {
  std::string o;
  for (unsigned char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      default:
        if (c < 0x20 && c != '\n' && c != '\t') o += '?';
        else o += static_cast<char>(c);
    }
  }
  return o;
}

std::string session_title(const SessionResult& r) {
  std::string t = fmt::format("{}:{}", r.source, r.conn);
  if (!r.client.empty() || !r.server.empty()) t += fmt::format("  {} -> {}", r.client, r.server);
  return t;
}
}  // namespace

std::string_view severity_mark(Severity s) {
  switch (s) {
    case Severity::error: return "✗";
    case Severity::warning: return "!";
    case Severity::note: return "·";
  }
  return " ";
}

std::string_view severity_color(Severity s) {
  switch (s) {
    case Severity::error: return "1;31";
    case Severity::warning: return "33";
    case Severity::note: return "36";
  }
  return "0";
}

void Totals::add(const SessionResult& r) {
  ++sessions;
  if (r.errors == 0) ++clean;
  if (r.desynced) ++desynced;
  errors += r.errors;
  warnings += r.warnings;
  notes += r.notes;
  commands += r.commands;
  replies += r.replies;
}

void write_text_session(std::FILE* out, const SessionResult& r, const TextOptions& o) {
  const Paint p{o.color};
  const bool ladder = o.ladder == TextOptions::Ladder::all || (o.ladder == TextOptions::Ladder::problems && r.has_problems());
  std::map<std::uint32_t, const Finding*> by_id;
  for (const auto& f : r.findings) by_id[f.id] = &f;

  fmt::print(out, "{}\n", p("1", fmt::format("== session {}", session_title(r))));
  fmt::print(out, "   {}\n", r.info.order_note);
  if (ladder) {
    for (const auto& l : r.ladder) {
      std::string line;
      const std::string text = clip(l.text, 60);
      if (l.fault) {
        line = p("36", fmt::format("   ! fault: {}", clip(l.text, 110)));
      } else if (l.dir == Dir::client) {
        line = fmt::format("   C: {}", text);
      } else {
        line = fmt::format("   S: {:<52}", text);
        if (!l.client_pair.empty()) {
          line += fmt::format(" -> {}", clip(l.client_pair, 40));
          if (l.true_known && l.true_pair != l.client_pair)
            line += p("1;31", l.true_pair.empty() ? " [answers nothing: surplus]"
                                                  : fmt::format(" [answers {}]", clip(l.true_pair, 40)));
        } else if (l.true_known) {
          line += l.true_pair.empty() ? p("1;31", " -> (nothing: surplus)")
                                      : fmt::format(" -> (unread) answers {}", clip(l.true_pair, 40));
        }
      }
      if (l.injected) line += p("36", " [written by lockstep]");
      fmt::print(out, "{}\n", line);
      for (auto id : l.findings) {
        auto it = by_id.find(id);
        if (it == by_id.end() || it->second->severity < o.min_severity) continue;
        const Finding& f = *it->second;
        fmt::print(out, "      {} {}\n", p(severity_color(f.severity), fmt::format("{} #{} {}", severity_mark(f.severity), f.id, f.rule->id)),
                   "");
      }
    }
    if (r.ladder_dropped) fmt::print(out, "   ... {} more entries not shown\n", r.ladder_dropped);
  }
  std::size_t shown = 0;
  for (const auto& f : r.findings) {
    if (f.severity < o.min_severity) continue;
    if (shown++ == 0) fmt::print(out, "   findings:\n");
    std::string where = f.offset || !f.bytes.empty() ? fmt::format(" {} offset {}", to_string(f.stream), f.offset) : "";
    std::string proof = f.proof != Proof::none ? fmt::format(" [proof: {}]", to_string(f.proof)) : "";
    std::string cause = f.cause ? fmt::format(" (follows from #{})", f.cause) : "";
    if (f.injected) cause += p("36", " [injected by lockstep]");
    else if (f.after_fault) cause += p("36", " [after a fault lockstep injected]");
    fmt::print(out, "   {} {} {}{}{}{}\n", p(severity_color(f.severity), fmt::format("{} #{} {:<7}", severity_mark(f.severity), f.id, to_string(f.severity))),
               p("1", std::string(f.rule->id)), fmt::format("({})", to_string(f.side)), where, proof, cause);
    fmt::print(out, "        {}\n", f.explanation);
    if (!f.bytes.empty()) fmt::print(out, "        bytes: {}\n", f.bytes);
  }
  if (r.findings_dropped) fmt::print(out, "   ... {} more findings not kept\n", r.findings_dropped);
  if (!r.narrative.empty()) {
    fmt::print(out, "   {}\n", p("1", "what the client will mistake each reply for:"));
    for (const auto& n : r.narrative) fmt::print(out, "     - {}\n", n);
  }
  if (!r.statuses.empty()) {
    fmt::print(out, "   the client's delivery status:\n");
    for (const auto& s : r.statuses) fmt::print(out, "     - {}\n", clip(s, 220));
  }
  if (!r.faults.empty()) {
    fmt::print(out, "   faults injected by lockstep:\n");
    for (const auto& s : r.faults) fmt::print(out, "     - {}\n", s);
  }
  const std::string verdict = r.errors ? p("1;31", "FAIL") : (r.warnings ? p("33", "WARN") : p("32", "OK"));
  fmt::print(out, "   {} {} commands, {} replies, {} error(s), {} warning(s), {} note(s){}\n\n", verdict, r.commands,
             r.replies, r.errors, r.warnings, r.notes, r.desynced ? "; lockstep broken" : "");
}

void write_text_summary(std::FILE* out, const Totals& t, const TextOptions& o) {
  const Paint p{o.color};
  fmt::print(out, "{}\n", p("1", fmt::format("{} session(s): {} without errors, {} out of lockstep; {} error(s), {} "
                                             "warning(s), {} note(s); {} commands, {} replies",
                                             t.sessions, t.clean, t.desynced, t.errors, t.warnings, t.notes,
                                             t.commands, t.replies)));
  if (t.skipped_lines) fmt::print(out, "{} input line(s) could not be read and were skipped\n", t.skipped_lines);
}

std::string json_session(const SessionResult& r) {
  std::string s;
  s.reserve(512 + r.ladder.size() * 112);
  {
    json::Object o(s);
    o.str("source", r.source);
    o.str("conn", r.conn);
    o.str("client", r.client);
    o.str("server", r.server);
    o.str("format", r.info.format);
    o.num("ordered", r.info.ordered);
    o.num("commands", r.commands);
    o.num("replies", r.replies);
    o.num("errors", r.errors);
    o.num("warnings", r.warnings);
    o.num("notes", r.notes);
    o.num("desynced", r.desynced);
    o.str("final_state", r.final_state);
    auto strings = [&](std::string_view key, const std::vector<std::string>& v) {
      o.key(key);
      json::Array a(s);
      for (const auto& x : v) a.str(x);
    };
    if (!r.faults.empty()) strings("faults", r.faults);
    {
      o.key("findings");
      json::Array fs(s);
      // Few per session, and shared with the web view and the proxy's JSON lines.
      for (const auto& f : r.findings) fs.sep() += boost::json::serialize(web::finding_json(f));
    }
    {
      o.key("ladder");
      json::Array lad(s);
      for (const auto& l : r.ladder) {
        lad.sep();
        json::Object j(s);
        j.str("dir", to_string(l.dir));
        j.str("text", l.text);
        j.num("offset", l.offset);
        if (l.dir == Dir::server) {
          j.str("client_pair", l.client_pair);
          if (l.true_known) j.str("true_pair", l.true_pair);
        }
        if (!l.findings.empty()) {
          j.key("findings");
          json::Array ids(s);
          for (auto id : l.findings) ids.num(id);
        }
      }
    }
    strings("narrative", r.narrative);
    strings("client_status", r.statuses);
  }
  return s;
}

std::string json_totals(const Totals& t) {
  boost::json::object o;
  o["sessions"] = t.sessions;
  o["clean"] = t.clean;
  o["desynced"] = t.desynced;
  o["errors"] = t.errors;
  o["warnings"] = t.warnings;
  o["notes"] = t.notes;
  o["commands"] = t.commands;
  o["replies"] = t.replies;
  o["skipped_lines"] = t.skipped_lines;
  return boost::json::serialize(o);
}

std::string junit_testcase(const SessionResult& r) {
  std::string s = fmt::format("  <testcase classname=\"lockstep.check\" name=\"{}\" time=\"{:.6f}\">\n",
                              xml_escape(fmt::format("{}:{}", r.source, r.conn)),
                              r.end > r.start ? static_cast<double>(r.end - r.start) / 1e6 : 0.0);
  for (const auto& f : r.findings) {
    if (f.severity != Severity::error) continue;
    s += fmt::format("    <failure type=\"{}\" message=\"{}\">{}</failure>\n", xml_escape(f.rule->id),
                     xml_escape(f.explanation), xml_escape(fmt::format("{} ({}) {}", f.rule->id, to_string(f.side), f.bytes)));
  }
  std::string out;
  for (const auto& n : r.narrative) out += n + "\n";
  if (!out.empty()) s += fmt::format("    <system-out>{}</system-out>\n", xml_escape(out));
  s += "  </testcase>\n";
  return s;
}

}  // namespace lockstep::cli
