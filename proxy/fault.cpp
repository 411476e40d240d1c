#include "proxy/fault.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace lockstep::proxy {

namespace {
struct ActionName {
  std::string_view name;
  FaultAction action;
};
constexpr ActionName kActions[] = {
    {"inject", FaultAction::inject},       {"inject-after", FaultAction::inject_after},
    {"replace", FaultAction::replace},     {"drop", FaultAction::drop},
    {"dup", FaultAction::dup},             {"swap", FaultAction::swap},
    {"split", FaultAction::split},         {"delay", FaultAction::delay},
    {"fragment", FaultAction::fragment},   {"coalesce", FaultAction::coalesce},
    {"close", FaultAction::close},         {"reset", FaultAction::reset},
    {"shutdown", FaultAction::shutdown},   {"early", FaultAction::early},
    {"bare-lf", FaultAction::bare_lf},
    {"bare-cr", FaultAction::bare_cr},     {"smuggle", FaultAction::smuggle},
    {"long-line", FaultAction::long_line}, {"after-quit", FaultAction::after_quit},
    {"pipeline-body", FaultAction::pipeline_body},
};

struct Variant {
  std::string_view name, bytes;
};
// The smtpsmug variants, named as the engine's content scanner names them.
constexpr Variant kVariants[] = {
    {"lflf", "\n.\n"},     {"crcr", "\r.\r"},     {"crlf", "\r.\n"},       {"lfcr", "\n.\r"},
    {"lfcrlf", "\n.\r\n"}, {"crlflf", "\r\n.\n"}, {"crcrlf", "\r.\r\n"}, {"crlfcr", "\r\n.\r"},
};

bool client_action(FaultAction a) {
  switch (a) {
    case FaultAction::bare_lf:
    case FaultAction::bare_cr:
    case FaultAction::smuggle:
    case FaultAction::long_line:
    case FaultAction::after_quit:
    case FaultAction::pipeline_body:
      return true;
    default:
      return false;
  }
}
// Actions that make sense on both streams; the position decides.
bool either_action(FaultAction a) {
  return a == FaultAction::delay || a == FaultAction::fragment || a == FaultAction::close || a == FaultAction::reset;
}

template <typename T>
bool number(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// "text" values: \n separates lines, \\ is a backslash, \r and \t as usual.
std::vector<std::string> text_lines(std::string_view v) {
  std::vector<std::string> lines(1);
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) {
      const char n = v[++i];
      if (n == 'n') lines.emplace_back();
      else if (n == 'r') lines.back() += '\r';
      else if (n == 't') lines.back() += '\t';
      else lines.back() += n;
    } else {
      lines.back() += v[i];
    }
  }
  return lines;
}

// Splits at commas outside quotes; quotes are removed.
std::vector<std::string> split_options(std::string_view s) {
  std::vector<std::string> out(1);
  char quote = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    if (quote) {
      if (ch == quote) quote = 0;
      else out.back() += ch;
    } else if (ch == '\'' || ch == '"') {
      quote = ch;
    } else if (ch == ',') {
      out.emplace_back();
    } else {
      out.back() += ch;
    }
  }
  return out;
}

std::string ordinal(std::uint32_t n) {
  const char* suffix = (n % 100 >= 11 && n % 100 <= 13) ? "th" : n % 10 == 1 ? "st" : n % 10 == 2 ? "nd" : n % 10 == 3 ? "rd" : "th";
  return fmt::format("{}{}", n, suffix);
}
}  // namespace

std::string_view to_string(FaultAction a) {
  for (const auto& x : kActions)
    if (x.action == a) return x.name;
  return "?";
}

std::string_view smuggle_bytes(std::string_view variant) {
  for (const auto& v : kVariants)
    if (v.name == variant) return v.bytes;
  return {};
}

const std::vector<FaultPreset>& fault_presets() {
  static const std::vector<FaultPreset> presets = {
      {"cyrus-lockers", "inject@eod#1,text=350 lockers",
       "Cyrus lmtpd let '350 lockers' (lock contention) out before the end-of-data replies"},
      {"dovecot-multiline-split", "split@lhlo,line=1",
       "a multi-line reply (LHLO's) sent as two replies: the second answers the next command"},
      {"spampd-single-data-reply", "drop@eod#2+",
       "one reply after end of data however many recipients were accepted"},
      {"lost-final-reply", "close@eod#1",
       "the connection lost after end of data, before the per-recipient replies: delivered but not "
       "acknowledged, so the client delivers again"},
      {"exim-452-then-250", "replace@rcpt#2,code=452,text=4.5.3 Too many recipients",
       "a RCPT answered 452 that the server still counts as accepted: one reply too many after end of data"},
      {"slow-data-done", "delay@eod#1,ms=610000",
       "the first end-of-data reply delayed past Postfix's lmtp_data_done_timeout (600 s; shorten with ms=)"},
  };
  return presets;
}

std::optional<FaultSpec> parse_fault(std::string_view input, std::string& error) {
  auto fail = [&](std::string msg) -> std::optional<FaultSpec> {
    error = fmt::format("--fault '{}': {}", input, msg);
    return std::nullopt;
  };
  std::string text(input);
  std::string name;
  // NAME=ACTION@..., but not "text=..." inside options: a name comes before any '@' or ','.
  const std::size_t eq = text.find('='), at = text.find('@'), comma = text.find(',');
  if (eq != std::string::npos && eq < std::min(at, comma)) {
    name = text.substr(0, eq);
    text = text.substr(eq + 1);
  }
  // A preset, with options that override its own.
  const std::string head = text.substr(0, text.find(','));
  if (head.find('@') == std::string::npos) {
    const auto& ps = fault_presets();
    auto it = std::find_if(ps.begin(), ps.end(), [&](const FaultPreset& p) { return p.name == head; });
    if (it == ps.end()) {
      std::string names;
      for (const auto& p : ps) names += fmt::format("{}{}", names.empty() ? "" : ", ", p.name);
      return fail(fmt::format("'{}' is neither ACTION@WHERE nor a preset ({})", head, names));
    }
    if (name.empty()) name = head;
    text = std::string(it->spec) + text.substr(head.size());
  }
  auto opts = split_options(text);
  FaultSpec f;
  f.spec = text;
  f.name = name.empty() ? std::string(input) : name;
  const std::string& main = opts[0];
  const std::size_t a = main.find('@');
  if (a == std::string::npos) return fail("expected ACTION@WHERE");
  const std::string act = main.substr(0, a), where = main.substr(a + 1);
  auto ai = std::find_if(std::begin(kActions), std::end(kActions), [&](const ActionName& x) { return x.name == act; });
  if (ai == std::end(kActions)) {
    std::string names;
    for (const auto& x : kActions) names += fmt::format("{}{}", names.empty() ? "" : ", ", x.name);
    return fail(fmt::format("unknown action '{}' (one of {})", act, names));
  }
  f.action = ai->action;

  // WHERE
  std::string w = where, count;
  if (auto h = w.find('#'); h != std::string::npos) {
    count = w.substr(h + 1);
    w = w.substr(0, h);
    if (!count.empty() && count.back() == '+') {
      f.and_later = true;
      count.pop_back();
    }
    if (!number(count, f.nth) || f.nth == 0) return fail(fmt::format("'#{}': a count from 1 is expected", count));
  }
  std::string lw = w;
  std::transform(lw.begin(), lw.end(), lw.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lw == "greeting") f.where = FaultWhere::greeting;
  else if (lw == "eod") f.where = FaultWhere::eod;
  else if (lw == "any") f.where = FaultWhere::any;
  else if (lw == "content") f.where = FaultWhere::content;
  else if (lw.rfind("data+", 0) == 0) {
    f.where = FaultWhere::data_octets;
    if (!number(std::string_view(lw).substr(5), f.octets)) return fail("data+N: N octets of content expected");
  } else {
    const Command c = parse_command(w);
    if (c.verb == Verb::unknown || w.find(' ') != std::string::npos)
      return fail(fmt::format("unknown position '{}' (greeting, a verb such as rcpt, eod, any, content, data+N)", w));
    f.where = FaultWhere::command;
    f.verb = c.verb;
  }
  if ((f.where == FaultWhere::greeting || f.where == FaultWhere::content || f.where == FaultWhere::data_octets) &&
      f.nth)
    return fail("#N does not apply to this position");

  // Options
  bool dir_set = false;
  for (std::size_t i = 1; i < opts.size(); ++i) {
    const std::string& o = opts[i];
    const std::size_t e = o.find('=');
    if (e == std::string::npos) return fail(fmt::format("option '{}' needs a value (KEY=VALUE)", o));
    const std::string k = o.substr(0, e), v = o.substr(e + 1);
    bool ok = true;
    std::uint64_t u = 0;
    if (k == "text") f.text = text_lines(v);
    else if (k == "code") ok = number(v, f.code) && f.code >= 100 && f.code <= 599;
    else if (k == "line") ok = number(v, f.line) && f.line > 0;
    else if (k == "txn") ok = number(v, f.txn) && f.txn > 0;
    else if (k == "ms") ok = number(v, u) && (f.ms = std::chrono::milliseconds(u), true);
    else if (k == "jitter") ok = number(v, u) && (f.jitter = std::chrono::milliseconds(u), true);
    else if (k == "size") ok = number(v, f.size) && f.size > 0;
    else if (k == "len") ok = number(v, f.len) && f.len >= 3 && f.len <= (1u << 20);
    else if (k == "variant") ok = !smuggle_bytes(v).empty() && (f.variant = v, true);
    else if (k == "conn") ok = number(v, f.conn) && f.conn > 0;
    else if (k == "every") ok = number(v, f.every) && f.every > 0;
    else if (k == "times") ok = number(v, f.times);
    else if (k == "p") {
      char* end = nullptr;
      f.probability = std::strtod(v.c_str(), &end);
      ok = !v.empty() && end == v.c_str() + v.size() && f.probability >= 0 && f.probability <= 1;
    } else if (k == "dir") {
      ok = v == "c" || v == "s" || v == "client" || v == "server";
      f.dir = (v == "c" || v == "client") ? Dir::client : Dir::server;
      dir_set = true;
    } else {
      return fail(fmt::format("unknown option '{}' (text, code, line, txn, ms, jitter, size, len, variant, conn, "
                              "every, p, times, dir)",
                              k));
    }
    if (!ok) return fail(fmt::format("bad value in '{}'", o));
  }

  // Which stream, and whether the action fits the position.
  const bool at_content = f.where == FaultWhere::content || f.where == FaultWhere::data_octets;
  if (client_action(f.action)) {
    f.dir = Dir::client;
    if (f.where == FaultWhere::greeting || f.where == FaultWhere::eod)
      return fail(fmt::format("{} changes the client's bytes: use a command position or content", act));
  } else if (either_action(f.action)) {
    if (at_content) f.dir = Dir::client;
    else if (!dir_set) f.dir = Dir::server;
    if (f.dir == Dir::server && at_content) return fail("content is the client's: dir=s does not apply");
  } else {
    if (at_content) return fail(fmt::format("{} acts on replies: content is not a reply position", act));
    f.dir = Dir::server;
  }
  switch (f.action) {
    case FaultAction::inject:
    case FaultAction::inject_after:
      if (f.text.empty()) return fail("text= is required (the reply or line to inject)");
      break;
    case FaultAction::replace:
      if (!f.code && f.text.empty()) return fail("code= or text= is required");
      break;
    case FaultAction::split:
      if (!f.line) f.line = 1;
      break;
    case FaultAction::early:
      if (f.where != FaultWhere::any || f.nth == 0 || f.and_later)
        return fail("early needs the command's number: early@any#N");
      if (f.text.empty()) f.text = {"250 2.0.0 ok (lockstep: an early reply)"};
      break;
    case FaultAction::delay:
      if (f.ms.count() == 0 && f.jitter.count() == 0) return fail("ms= (and optionally jitter=) is required");
      break;
    case FaultAction::smuggle:
      if (f.where != FaultWhere::content) return fail("smuggle acts at the end of the content: use smuggle@content");
      break;
    case FaultAction::pipeline_body:
      if (f.where != FaultWhere::command || f.verb != Verb::data) return fail("pipeline-body applies to data");
      break;
    case FaultAction::after_quit:
      if (f.where != FaultWhere::command || f.verb != Verb::quit) return fail("after-quit applies to quit");
      if (f.text.empty()) f.text = {"NOOP"};
      break;
    case FaultAction::bare_lf:
    case FaultAction::bare_cr:
      if (f.where == FaultWhere::data_octets) return fail("use content for the content's line ends");
      break;
    case FaultAction::long_line:
      if (at_content) return fail("long-line pads command lines: use a command position");
      break;
    case FaultAction::close:
    case FaultAction::reset:
      if (f.where == FaultWhere::content) return fail("use data+N to cut the content after N octets");
      break;
    case FaultAction::fragment:
    case FaultAction::coalesce:
    case FaultAction::dup:
    case FaultAction::swap:
    case FaultAction::drop:
    case FaultAction::shutdown:
      break;
  }
  if (f.where == FaultWhere::data_octets && f.action != FaultAction::close && f.action != FaultAction::reset &&
      f.action != FaultAction::delay)
    return fail("data+N takes close, reset or delay");
  if (f.line && f.dir == Dir::client) return fail("line= is for multi-line replies");
  return f;
}

std::string describe(const FaultSpec& f) {
  std::string pos;
  const std::string nth = f.nth ? ordinal(f.nth) + (f.and_later ? " and later" : "") + " " : "";
  switch (f.where) {
    case FaultWhere::greeting: pos = "the greeting"; break;
    case FaultWhere::command:
      pos = f.dir == Dir::server ? fmt::format("the reply to the {}{} command", nth.empty() ? "every " : nth, to_string(f.verb))
                                 : fmt::format("the {}{} command", nth.empty() ? "every " : nth, to_string(f.verb));
      break;
    case FaultWhere::any: pos = fmt::format("the reply to the {}command", nth.empty() ? "every " : nth); break;
    case FaultWhere::eod:
      pos = fmt::format("the {}per-recipient reply after end of data{}", nth.empty() ? "every " : nth,
                        f.txn ? fmt::format(" (transaction {})", f.txn) : "");
      break;
    case FaultWhere::content: pos = "the message content"; break;
    case FaultWhere::data_octets: pos = fmt::format("the content after {} octets", f.octets); break;
  }
  if (f.line) pos = fmt::format("line {} of {}", f.line, pos);
  std::string text;
  for (const auto& l : f.text) text += fmt::format("{}{}", text.empty() ? "" : "\\n", l);
  std::string what;
  switch (f.action) {
    case FaultAction::inject: what = fmt::format("inject '{}' before {}", text, pos); break;
    case FaultAction::inject_after: what = fmt::format("inject '{}' after {}", text, pos); break;
    case FaultAction::replace:
      what = f.code ? fmt::format("answer {} with code {}{}", pos, f.code, text.empty() ? "" : fmt::format(" '{}'", text))
                    : fmt::format("replace {} with '{}'", pos, text);
      break;
    case FaultAction::drop: what = fmt::format("drop {}", pos); break;
    case FaultAction::dup: what = fmt::format("send {} twice", pos); break;
    case FaultAction::swap: what = fmt::format("send {} after the next reply", pos); break;
    case FaultAction::split: what = fmt::format("split {} into two replies after line {}", pos, f.line); pos.clear(); break;
    case FaultAction::delay:
      what = fmt::format("delay {} by {} ms{}", pos, f.ms.count(), f.jitter.count() ? fmt::format(" (+ up to {} ms)", f.jitter.count()) : "");
      break;
    case FaultAction::fragment: what = fmt::format("write {} {} octet(s) at a time", pos, f.size); break;
    case FaultAction::coalesce: what = fmt::format("hold {} until no reply is owed, then write it with the others", pos); break;
    case FaultAction::close: what = fmt::format("close both connections at {}", pos); break;
    case FaultAction::reset: what = fmt::format("reset the client's connection at {}", pos); break;
    case FaultAction::shutdown: what = fmt::format("answer {} with 421 and close", pos); break;
    case FaultAction::early:
      what = fmt::format("send '{}' as the reply to command {} before the client sends it, and drop the server's", text, f.nth);
      break;
    case FaultAction::bare_lf: what = fmt::format("end the lines of {} with a bare LF", pos); break;
    case FaultAction::bare_cr: what = fmt::format("end the lines of {} with a bare CR", pos); break;
    case FaultAction::smuggle:
      what = fmt::format("send the ambiguous end of data '{}' before the real one{}", f.variant,
                         text.empty() ? "" : fmt::format(", followed by '{}'", text));
      break;
    case FaultAction::long_line: what = fmt::format("pad {} to {} octets", pos, f.len); break;
    case FaultAction::after_quit: what = fmt::format("send '{}' after QUIT", text); break;
    case FaultAction::pipeline_body: what = "answer DATA with 354 and send the content before the server's reply"; break;
  }
  std::string which;
  if (f.conn) which += fmt::format(", connection {} only", f.conn);
  if (f.every) which += fmt::format(", every {} connection", ordinal(static_cast<std::uint32_t>(f.every)));
  if (f.probability < 1) which += fmt::format(", with probability {}", f.probability);
  if (f.times) which += fmt::format(", at most {} time(s) per connection", f.times);
  return what + which;
}

bool selects(const FaultSpec& f, std::uint64_t conn, double draw) {
  if (f.conn && conn != f.conn) return false;
  if (f.every && conn % f.every != 0) return false;
  return f.probability >= 1 || draw < f.probability;
}

}  // namespace lockstep::proxy
