#include "web/view.hpp"

#include <fmt/format.h>

#include <set>

#include "web/assets.hpp"

namespace lockstep::web {

namespace json = boost::json;

namespace {
// "AUTH PLAIN secret" -> "AUTH PLAIN xxxxxx"; "334 challenge" -> "334 xxxxxxxxx".
std::string redacted(const LadderEntry& l) {
  std::string t = l.text;
  auto mask_from = [&](std::size_t at) {
    for (std::size_t i = at; i < t.size(); ++i)
      if (t[i] != ' ') t[i] = 'x';
  };
  if (l.dir == Dir::client && !l.content && !l.fault && t.size() > 5 &&
      (t.compare(0, 5, "AUTH ") == 0 || t.compare(0, 5, "auth ") == 0)) {
    const auto sp = t.find(' ', 5);
    if (sp != std::string::npos) mask_from(sp + 1);
  } else if (l.dir == Dir::server && t.compare(0, 4, "334 ") == 0) {
    mask_from(4);
  }
  return t;
}

std::string escape_script(std::string s) {
  // Inside <script>: "</" would end the element; U+2028/9 are fine in JSON but not in
  // older JavaScript string literals.
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<') out += "\\u003c";
    else if (s[i] == '>') out += "\\u003e";
    else if (s[i] == '&') out += "\\u0026";
    else out += s[i];
  }
  return out;
}

// The script itself, inlined: nothing in it may close the element.
std::string escape_script_body(std::string_view js) {
  std::string s(js);
  for (std::size_t at = 0; (at = s.find("</", at)) != std::string::npos; at += 3) s.replace(at, 2, "<\\/");
  return s;
}

std::string replace_once(std::string s, std::string_view what, std::string_view with) {
  const auto at = s.find(what);
  if (at != std::string::npos) s.replace(at, what.size(), with);
  return s;
}
}  // namespace

json::object finding_json(const Finding& f) {
  json::object j{{"id", f.id},
                 {"rule", f.rule->id},
                 {"severity", to_string(f.severity)},
                 {"side", to_string(f.side)},
                 {"explanation", f.explanation},
                 {"stream", to_string(f.stream)},
                 {"offset", f.offset},
                 {"length", f.length},
                 {"bytes", f.bytes},
                 {"command", f.command},
                 {"time_us", f.time},
                 {"proof", to_string(f.proof)}};
  if (f.cause) j["cause"] = f.cause;
  if (f.injected) j["injected"] = true;
  if (f.after_fault) j["after_fault"] = true;
  return j;
}

json::object summary_json(const SessionResult& r) {
  std::set<std::string> rules;
  for (const auto& f : r.findings) rules.insert(std::string(f.rule->id));
  json::array ra;
  for (const auto& x : rules) ra.push_back(json::string(x));
  return json::object{{"conn", r.conn},
                      {"client", r.client},
                      {"upstream", r.server},
                      {"source", r.source},
                      {"state", r.final_state},
                      {"commands", r.commands},
                      {"replies", r.replies},
                      {"errors", r.errors},
                      {"warnings", r.warnings},
                      {"notes", r.notes},
                      {"rules", std::move(ra)},
                      {"desynced", r.desynced},
                      {"faults", r.faults.size()},
                      {"started_us", r.start},
                      {"open", false}};
}

json::object session_json(const SessionResult& r, bool redact) {
  json::object o = summary_json(r);
  o["order_note"] = r.info.order_note;
  json::array ladder;
  for (const auto& l : r.ladder) {
    json::object e{{"dir", l.dir == Dir::client ? "C" : "S"},
                   {"t", l.time},
                   {"text", redact ? redacted(l) : l.text}};
    if (l.content) e["content"] = true;
    if (l.fault) e["fault"] = true;
    if (l.injected) e["injected"] = true;
    if (l.dir == Dir::server && !l.fault) {
      e["pair"] = l.client_pair;
      if (l.true_known) e["answers"] = l.true_pair;
      if (!l.mispair.empty()) e["mispair"] = l.mispair;
    }
    if (!l.findings.empty()) {
      json::array ids;
      for (auto id : l.findings) ids.push_back(id);
      e["findings"] = std::move(ids);
    }
    ladder.push_back(std::move(e));
  }
  o["ladder"] = std::move(ladder);
  o["ladder_dropped"] = r.ladder_dropped;
  json::array findings;
  for (const auto& f : r.findings) {
    json::object j = finding_json(f);
    j["level"] = f.rule->level;
    // The offending client bytes may be message content or a secret.
    if (redact && f.stream == Dir::client) j["bytes"] = "";
    findings.push_back(std::move(j));
  }
  o["findings"] = std::move(findings);
  json::array nar, faults, statuses;
  for (const auto& n : r.narrative) nar.push_back(json::string(n));
  for (const auto& f : r.faults) faults.push_back(json::string(f));
  for (const auto& s : r.statuses) statuses.push_back(json::string(s));
  o["narrative"] = std::move(nar);
  o["fault_log"] = std::move(faults);
  o["statuses"] = std::move(statuses);
  return o;
}

Asset asset(std::string_view name) {
  if (name == "index.html") return {assets::index_html(), "text/html; charset=utf-8"};
  if (name == "app.js") return {assets::app_js(), "text/javascript; charset=utf-8"};
  if (name == "app.css") return {assets::app_css(), "text/css; charset=utf-8"};
  return {};
}

std::string static_page(const json::array& sessions, std::string_view title) {
  std::string page(assets::index_html());
  const std::string data = escape_script(json::serialize(json::object{{"title", title}, {"sessions", sessions}}));
  page = replace_once(page, "<link rel=\"stylesheet\" href=\"app.css\">",
                      fmt::format("<style>\n{}\n</style>", assets::app_css()));
  page = replace_once(page, "<script src=\"app.js\"></script>",
                      fmt::format("<script>window.LOCKSTEP_STATIC = {};</script>\n<script>\n{}\n</script>", data,
                                  escape_script_body(assets::app_js())));
  return page;
}

}  // namespace lockstep::web
