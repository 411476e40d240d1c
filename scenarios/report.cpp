#include "scenarios/report.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

namespace lockstep::scenarios {

namespace {
std::string xml(std::string_view s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') o += '?';
        else o += c;
    }
  }
  return o;
}
std::string rules_text(const CaseResult& c) {
  std::string s;
  for (const auto& r : c.rules) s += (s.empty() ? "" : ", ") + r;
  return s;
}
}  // namespace

std::size_t SuiteRun::count(Verdict v) const {
  std::size_t n = 0;
  for (const auto& c : cases) n += c.verdict == v ? 1 : 0;
  return n;
}

void write_text(std::FILE* out, const SuiteRun& run, bool color, bool verbose) {
  auto paint = [color](std::string_view code, const std::string& s) {
    return color ? fmt::format("\x1b[{}m{}\x1b[0m", code, s) : s;
  };
  fmt::print(out, "lockstep {}: {}{}\n\n", run.suite, run.target, run.peer.empty() ? "" : fmt::format(" ({})", run.peer));
  for (const auto& c : run.cases) {
    const char* mark = c.verdict == Verdict::pass ? "PASS" : c.verdict == Verdict::fail ? "FAIL" : c.verdict == Verdict::not_applicable ? "N/A " : "ERR ";
    const char* col = c.verdict == Verdict::pass ? "32" : c.verdict == Verdict::not_applicable ? "2" : "1;31";
    fmt::print(out, "  {}  {:<40} {}\n", paint(col, mark), c.id, c.title);
    if (c.verdict == Verdict::pass && !verbose) continue;
    if (!c.rules.empty()) fmt::print(out, "        rules: {}\n", rules_text(c));
    if (!c.reason.empty())
      fmt::print(out, "        {}{}\n", c.line ? fmt::format("{}:{}: ", c.file, c.line) : "", c.reason);
    if (c.verdict != Verdict::fail && !verbose) continue;
    if (!c.requirement.empty()) fmt::print(out, "        requirement: {}\n", c.requirement);
    for (const auto& f : c.findings)
      fmt::print(out, "        {} {}: {}\n", f.severity == Severity::error ? "✗" : "!", f.rule->id, f.explanation);
    for (const auto& t : c.transcript) fmt::print(out, "          {}\n", t);
  }
  fmt::print(out, "\n{} case(s): {} passed, {} failed, {} not applicable, {} could not run\n", run.cases.size(),
             run.count(Verdict::pass), run.count(Verdict::fail), run.count(Verdict::not_applicable), run.count(Verdict::error));
}

std::string to_json(const SuiteRun& run) {
  namespace json = boost::json;
  json::array cases;
  for (const auto& c : run.cases) {
    json::array rules, transcript, findings;
    for (const auto& r : c.rules) rules.push_back(json::string(r));
    for (const auto& t : c.transcript) transcript.push_back(json::string(t));
    for (const auto& f : c.findings)
      findings.push_back(json::object{{"rule", f.rule->id}, {"severity", to_string(f.severity)}, {"explanation", f.explanation}});
    cases.push_back(json::object{{"id", c.id},
                                 {"title", c.title},
                                 {"file", c.file},
                                 {"rules", std::move(rules)},
                                 {"requirement", c.requirement},
                                 {"verdict", to_string(c.verdict)},
                                 {"reason", c.reason},
                                 {"line", c.line},
                                 {"seconds", c.seconds},
                                 {"findings", std::move(findings)},
                                 {"transcript", std::move(transcript)}});
  }
  json::object totals{{"cases", run.cases.size()},
                      {"passed", run.count(Verdict::pass)},
                      {"failed", run.count(Verdict::fail)},
                      {"not_applicable", run.count(Verdict::not_applicable)},
                      {"errors", run.count(Verdict::error)}};
  return json::serialize(json::object{{"suite", run.suite}, {"target", run.target}, {"peer", run.peer},
                                      {"cases", std::move(cases)}, {"totals", std::move(totals)}}) + "\n";
}

std::string to_junit(const SuiteRun& run) {
  std::string s = fmt::format("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n<testsuite name=\"lockstep {}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">\n",
                              xml(run.suite), run.cases.size(), run.count(Verdict::fail), run.count(Verdict::error),
                              run.count(Verdict::not_applicable));
  for (const auto& c : run.cases) {
    s += fmt::format("  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\">\n", xml(rules_text(c)), xml(c.id + ": " + c.title), c.seconds);
    std::string transcript;
    for (const auto& t : c.transcript) transcript += t + "\n";
    if (c.verdict == Verdict::fail)
      s += fmt::format("    <failure message=\"{}\">{}requirement: {}\n{}</failure>\n", xml(c.reason),
                       c.line ? xml(fmt::format("{}:{}\n", c.file, c.line)) : "", xml(c.requirement), xml(transcript));
    else if (c.verdict == Verdict::error)
      s += fmt::format("    <error message=\"{}\"/>\n", xml(c.reason));
    else if (c.verdict == Verdict::not_applicable)
      s += fmt::format("    <skipped message=\"{}\"/>\n", xml(c.reason));
    s += "  </testcase>\n";
  }
  return s + "</testsuite>\n</testsuites>\n";
}

std::string to_html(const SuiteRun& run) {
  std::string s = R"(<!doctype html><html><head><meta charset="utf-8"><title>lockstep report</title><style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}td,th{padding:.25em .6em;border-bottom:1px solid #ddd;text-align:left}
.pass{color:#070}.fail{color:#b00;font-weight:bold}.na{color:#888}.error{color:#b60}
.ladder{display:grid;grid-template-columns:1fr 3em 1fr;font-family:monospace;font-size:.9em;max-width:70em}
.c{grid-column:1;text-align:right}.s{grid-column:3}.arrow{grid-column:2;text-align:center;color:#888}
details{margin:.3em 0}summary{cursor:pointer}
</style></head><body>)";
  s += fmt::format("<h1>lockstep {}</h1><p>target <code>{}</code> {} — {} cases: {} passed, {} failed, {} not applicable, {} could not run</p>",
                   xml(run.suite), xml(run.target), xml(run.peer), run.cases.size(), run.count(Verdict::pass),
                   run.count(Verdict::fail), run.count(Verdict::not_applicable), run.count(Verdict::error));
  s += "<table><tr><th>verdict</th><th>case</th><th>rules</th><th>title</th></tr>";
  for (const auto& c : run.cases) {
    const char* cls = c.verdict == Verdict::pass ? "pass" : c.verdict == Verdict::fail ? "fail" : c.verdict == Verdict::not_applicable ? "na" : "error";
    s += fmt::format("<tr><td class=\"{}\">{}</td><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td></tr>", cls,
                     to_string(c.verdict), xml(c.id), xml(c.id), xml(rules_text(c)), xml(c.title));
  }
  s += "</table>";
  for (const auto& c : run.cases) {
    const char* cls = c.verdict == Verdict::pass ? "pass" : c.verdict == Verdict::fail ? "fail" : c.verdict == Verdict::not_applicable ? "na" : "error";
    s += fmt::format("<details id=\"{}\"{}><summary><span class=\"{}\">{}</span> {} — {}</summary>", xml(c.id),
                     c.verdict == Verdict::fail ? " open" : "", cls, to_string(c.verdict), xml(c.id), xml(c.title));
    if (!c.requirement.empty()) s += fmt::format("<p><i>{}</i></p>", xml(c.requirement));
    if (!c.reason.empty()) s += fmt::format("<p>{}{}</p>", c.line ? xml(fmt::format("{}:{}: ", c.file, c.line)) : "", xml(c.reason));
    for (const auto& f : c.findings) s += fmt::format("<p>{}: {}</p>", xml(std::string(f.rule->id)), xml(f.explanation));
    s += "<div class=\"ladder\">";
    for (const auto& t : c.transcript) {
      const bool client = t.rfind("C: ", 0) == 0;
      const std::string text = xml(t.size() > 3 ? t.substr(3) : t);
      s += client ? fmt::format("<div class=\"c\">{}</div><div class=\"arrow\">→</div><div></div>", text)
                  : fmt::format("<div></div><div class=\"arrow\">←</div><div class=\"s\">{}</div>", text);
    }
    s += "</div></details>";
  }
  return s + "</body></html>\n";
}

}  // namespace lockstep::scenarios
