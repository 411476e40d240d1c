#include "scenarios/scenario.hpp"

#include <yaml-cpp/yaml.h>
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace lockstep::scenarios {

namespace {
[[noreturn]] void fail(const std::string& name, const YAML::Node& n, const std::string& what) {
  const int line = n.IsDefined() ? n.Mark().line + 1 : 0;
  throw std::runtime_error(line > 0 ? fmt::format("{}:{}: {}", name, line, what) : fmt::format("{}: {}", name, what));
}

std::string scalar(const std::string& name, const YAML::Node& n, const char* what) {
  if (!n.IsScalar()) fail(name, n, fmt::format("{} must be a string", what));
  return n.as<std::string>();
}

// Escapes in raw bytes: \r \n \t \\ \xHH.
std::string unescape(const std::string& name, const YAML::Node& n, const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char c = s[++i];
    if (c == 'r') out += '\r';
    else if (c == 'n') out += '\n';
    else if (c == 't') out += '\t';
    else if (c == '\\') out += '\\';
    else if (c == 'x' && i + 2 < s.size()) {
      unsigned v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + std::min(s.size(), i + 3), v, 16);
      if (ec != std::errc() || p != s.data() + i + 3) fail(name, n, "\\x needs two hex digits");
      out += static_cast<char>(v);
      i += 2;
    } else {
      fail(name, n, fmt::format("unknown escape \\{}", c));
    }
  }
  return out;
}

// What a scenario may make lockstep hold: its steps and their octets, repeats and
// {x*N} fills included (a 4 MiB file must not expand into terabytes).
constexpr std::size_t kMaxSteps = 200000;
constexpr std::uint64_t kMaxOctets = 256ull << 20;
thread_local std::uint64_t t_octets = 0;  // charged so far by the scenario being parsed

void charge(const std::string& name, const YAML::Node& n, std::uint64_t octets) {
  t_octets += octets;
  if (t_octets > kMaxOctets) fail(name, n, "the scenario expands to more than 256 MiB of data (fills, sizes and repeats together)");
}

// Raw bytes as one transcript line: CR, LF and other controls written as escapes.
std::string visible(const std::string& raw) {
  std::string out;
  for (const char c : raw) {
    if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else if (static_cast<unsigned char>(c) < 0x20 && c != '\t') out += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    else out += c;
  }
  return out;
}

// {x*N} expands to N octets 'x' (long lines and large values without pasting them).
std::string expand_fill(const std::string& name, const YAML::Node& n, std::string s) {
  constexpr std::size_t kMaxFill = 16u << 20;
  for (auto at = s.find("{x*"); at != std::string::npos; at = s.find("{x*", at)) {
    const auto close = s.find('}', at);
    std::size_t count = 0;
    const char* first = s.data() + at + 3;
    const char* last = close == std::string::npos ? first : s.data() + close;
    auto [p, ec] = std::from_chars(first, last, count);
    if (close == std::string::npos || ec != std::errc() || p != last || count > kMaxFill)
      fail(name, n, "{x*N} needs a count of octets up to 16 MiB, e.g. {x*10000}");
    charge(name, n, count);
    s.replace(at, close + 1 - at, std::string(count, 'x'));
    at += count;
  }
  return s;
}

std::string substitute(const std::string& name, const YAML::Node& n, std::string s, const Placeholders& ph) {
  s = expand_fill(name, n, std::move(s));
  auto put = [&](const std::string& key, const std::string& value) {
    for (auto at = s.find(key); at != std::string::npos; at = s.find(key, at + value.size())) s.replace(at, key.size(), value);
  };
  for (std::size_t i = 0; i < ph.rcpts.size(); ++i) put(fmt::format("{{rcpt{}}}", i + 1), ph.rcpts[i]);
  put("{bad_rcpt}", ph.bad_rcpt);
  put("{from}", ph.from);
  put("{helo}", ph.helo);
  return s;
}

std::chrono::milliseconds duration(const std::string& name, const YAML::Node& n) {
  std::string s = scalar(name, n, "a duration");
  double scale = 1;
  if (s.size() > 2 && s.substr(s.size() - 2) == "ms") s.resize(s.size() - 2);
  else if (!s.empty() && s.back() == 's') {
    s.pop_back();
    scale = 1000;
  }
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || v < 0 || v > 3600e3) fail(name, n, "a duration such as 200ms or 2s is expected");
  return std::chrono::milliseconds(static_cast<long long>(v * scale));
}

bool valid_code(const std::string& c) {
  if (c.size() != 3 || c[0] < '1' || c[0] > '5') return false;
  if (c.substr(1) == "xx") return true;
  return std::all_of(c.begin(), c.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

// A `~ REGEX` of a pattern. libstdc++ compiles and matches regexes recursively: their
// size and nesting are bounded.
std::regex compile_regex(const std::string& name, const YAML::Node& n, const std::string& re) {
  int depth = 0, deepest = 0;
  for (const char c : re) deepest = std::max(deepest, depth += c == '(' ? 1 : c == ')' ? -1 : 0);
  if (re.size() > 512 || deepest > 16) fail(name, n, "a regular expression may have 512 characters and 16 nested groups at most");
  // Counted repetitions are compiled into copies: "(a{999}){999}" would be a million
  // states. Their product is bounded.
  std::uint64_t copies = 1;
  for (std::size_t i = 0; i < re.size(); ++i) {
    if (re[i] != '{' || (i > 0 && re[i - 1] == '\\')) continue;
    std::uint64_t most = 0, v = 0;
    for (std::size_t k = i + 1; k < re.size() && re[k] != '}'; ++k) {
      if (re[k] >= '0' && re[k] <= '9') v = std::min<std::uint64_t>(v * 10 + static_cast<std::uint64_t>(re[k] - '0'), 100000);
      else v = 0;
      most = std::max(most, v);
    }
    copies *= std::max<std::uint64_t>(most, 1);
    if (copies > 10000) fail(name, n, "counted repetitions in a regular expression may multiply to 10000 at most");
  }
  // Stacked quantifiers ("x***", "a+*") make libstdc++'s compiler explode; a lazy "*?" is fine.
  for (std::size_t i = 1; i < re.size(); ++i) {
    const bool prev = re[i - 1] == '*' || re[i - 1] == '+' || re[i - 1] == '?' || re[i - 1] == '}';
    const bool here = re[i] == '*' || re[i] == '+' || re[i] == '{';
    if (prev && here && (i < 2 || re[i - 2] != '\\')) fail(name, n, fmt::format("stacked quantifiers in '{}': write one quantifier per atom", re));
  }
  try {
    return std::regex(re, std::regex::ECMAScript | std::regex::icase);
  } catch (const std::regex_error& e) {
    fail(name, n, fmt::format("bad regular expression '{}': {}", re, e.what()));
  }
}

ReplyPattern pattern(const std::string& name, const YAML::Node& n) {
  ReplyPattern p;
  std::string s;
  if (n.IsMap()) {
    for (const auto& kv : n) {
      const std::string k = kv.first.as<std::string>();
      if (k == "code") s = scalar(name, kv.second, "code");
      else if (k == "count") {
        const std::string c = scalar(name, kv.second, "count");
        auto [ptr, ec] = std::from_chars(c.data(), c.data() + c.size(), p.count);
        if (ec != std::errc() || ptr != c.data() + c.size() || p.count == 0 || p.count > 10000)
          fail(name, kv.second, "count must be a number from 1 to 10000");
      } else {
        fail(name, kv.first, fmt::format("unknown key '{}' in a reply pattern (code, count)", k));
      }
    }
  } else {
    s = scalar(name, n, "a reply pattern");
  }
  p.text = s;
  if (s == "none") {
    p.none = true;
    return p;
  }
  std::string codes = s, re;
  if (auto t = s.find('~'); t != std::string::npos) {
    codes = s.substr(0, t);
    re = s.substr(t + 1);
    while (!re.empty() && re.front() == ' ') re.erase(0, 1);
  }
  while (!codes.empty() && codes.back() == ' ') codes.pop_back();
  if (codes != "any" && !codes.empty()) {
    std::size_t at = 0;
    while (at <= codes.size()) {
      const std::size_t bar = codes.find('|', at);
      const std::string c = codes.substr(at, bar == std::string::npos ? std::string::npos : bar - at);
      if (!valid_code(c)) fail(name, n, fmt::format("'{}' is not a reply code (250), class (2xx), any or none", c));
      p.codes.push_back(c);
      if (bar == std::string::npos) break;
      at = bar + 1;
    }
  }
  if (!re.empty()) {
    p.regex = compile_regex(name, n, re);
    p.regex_text = re;
  }
  return p;
}

// repeat: {times: N, steps: [...]}: the body parsed once, appended N times.
template <class ParseBody>
void repeat(const std::string& name, const YAML::Node& v, std::vector<ScenarioStep>& out, ParseBody parse_body) {
  if (!v.IsMap() || !v["times"] || !v["steps"]) fail(name, v, "repeat needs times: N and steps: [...]");
  unsigned times = 0;
  const std::string t = scalar(name, v["times"], "times");
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), times);
  if (ec != std::errc() || p != t.data() + t.size() || times == 0 || times > 100000) fail(name, v["times"], "times must be from 1 to 100000");
  std::vector<ScenarioStep> body;
  parse_body(body);
  if (out.size() + body.size() * std::uint64_t{times} > kMaxSteps)
    fail(name, v, fmt::format("the scenario expands to more than {} steps", kMaxSteps));
  std::uint64_t octets = 0;
  for (const auto& b : body) octets += b.bytes.size();
  charge(name, v, octets * (times - 1));
  for (unsigned i = 0; i < times; ++i) out.insert(out.end(), body.begin(), body.end());
}

// Content: text lines sent with CRLF, dot-stuffed, then the end of data.
std::string content(const std::string& name, const YAML::Node& n) {
  std::string body;
  if (n.IsMap()) {
    const auto size = n["size"];
    if (!size || !size.IsScalar()) fail(name, n, "data: needs text or {size: N}");
    std::uint64_t want = 0;
    const std::string v = size.as<std::string>();
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), want);
    if (ec != std::errc() || p != v.data() + v.size() || want > (64u << 20)) fail(name, size, "size must be a number up to 64 MiB");
    charge(name, size, want);
    body = "Subject: lockstep generated content\r\n\r\n";
    std::uint64_t line = 0;
    while (body.size() + 2 < want) body += fmt::format("{:08} the quick brown fox jumps over the lazy dog 0123456789 abcdefghij\r\n", line++);
    return body + ".\r\n";
  }
  std::istringstream in(scalar(name, n, "data"));
  std::string l;
  while (std::getline(in, l)) {
    if (!l.empty() && l[0] == '.') l.insert(0, ".");  // RFC 5321 §4.5.2
    body += l + "\r\n";
  }
  return body + ".\r\n";
}

void steps(const std::string& name, const YAML::Node& list, const Placeholders& ph, std::vector<ScenarioStep>& out, int depth) {
  if (!list.IsSequence()) fail(name, list, "steps must be a list");
  if (depth > 4) fail(name, list, "repeat nested too deep");
  for (const auto& item : list) {
    if (!item.IsMap() || item.size() != 1) fail(name, item, "each step is one 'KEY: value' (C:, C|:, C/1:, data:, S:, S?:, wait:, replies:, close:, repeat:)");
    const auto kv = *item.begin();
    const std::string key = kv.first.as<std::string>();
    const YAML::Node v = kv.second;
    ScenarioStep s;
    s.line = item.Mark().line + 1;
    if (key == "C") {
      s.kind = ScenarioStep::Kind::send;
      if (v.IsSequence()) {  // a pipelined group: one write
        for (const auto& c : v) {
          const std::string line = substitute(name, c, scalar(name, c, "a command"), ph);
          s.bytes += line + "\r\n";
          s.shown += (s.shown.empty() ? "" : " | ") + line;
        }
      } else {
        s.shown = substitute(name, v, scalar(name, v, "a command"), ph);
        s.bytes = s.shown + "\r\n";
      }
      out.push_back(std::move(s));
    } else if (key == "C/1") {  // one octet per write
      s.kind = ScenarioStep::Kind::send;
      s.shown = substitute(name, v, scalar(name, v, "a command"), ph);
      s.bytes = s.shown + "\r\n";
      s.fragment = 1;
      out.push_back(std::move(s));
    } else if (key == "C|") {
      s.kind = ScenarioStep::Kind::send;
      s.bytes = unescape(name, v, substitute(name, v, scalar(name, v, "raw bytes"), ph));
      s.shown = visible(substitute(name, v, scalar(name, v, "raw bytes"), ph));
      out.push_back(std::move(s));
    } else if (key == "data") {
      s.kind = ScenarioStep::Kind::send;
      s.bytes = content(name, v);
      s.shown = fmt::format("[content: {} octets] .", s.bytes.size() - 3);
      out.push_back(std::move(s));
    } else if (key == "S" || key == "S?") {
      if (key == "S?") {
        s.kind = ScenarioStep::Kind::expect;
        s.expect = pattern(name, v);
        if (s.expect.none || s.expect.count != 1) fail(name, v, "S? takes one reply pattern");
        s.expect.optional = true;
        out.push_back(std::move(s));
        continue;
      }
      if (v.IsScalar() && v.as<std::string>() == "closed") {
        s.kind = ScenarioStep::Kind::expect_close;
        out.push_back(std::move(s));
        continue;
      }
      if (v.IsSequence()) {
        for (const auto& p : v) {
          ScenarioStep e;
          e.kind = ScenarioStep::Kind::expect;
          e.line = p.Mark().line + 1;
          e.expect = pattern(name, p);
          out.push_back(std::move(e));
        }
        continue;
      }
      s.kind = ScenarioStep::Kind::expect;
      s.expect = pattern(name, v);
      out.push_back(std::move(s));
    } else if (key == "wait") {
      s.kind = ScenarioStep::Kind::wait;
      s.wait = duration(name, v);
      out.push_back(std::move(s));
    } else if (key == "close") {
      s.kind = ScenarioStep::Kind::close;
      out.push_back(std::move(s));
    } else if (key == "replies") {  // whatever the server owes, however many: the engine judges
      s.kind = ScenarioStep::Kind::replies;
      s.wait = duration(name, v);
      out.push_back(std::move(s));
    } else if (key == "repeat") {
      repeat(name, v, out, [&](std::vector<ScenarioStep>& body) { steps(name, v["steps"], ph, body, depth + 1); });
    } else {
      fail(name, kv.first, fmt::format("unknown step '{}' (C, C|, C/1, data, S, S?, wait, replies, close, repeat)", key));
    }
  }
}
CommandPattern command_pattern(const std::string& name, const YAML::Node& n, const Placeholders& ph) {
  CommandPattern p;
  std::string s;
  if (n.IsMap()) {
    for (const auto& kv : n) {
      const std::string k = kv.first.as<std::string>();
      if (k == "verb") s = scalar(name, kv.second, "verb");
      else if (k == "count") {
        const std::string c = scalar(name, kv.second, "count");
        auto [ptr, ec] = std::from_chars(c.data(), c.data() + c.size(), p.count);
        if (ec != std::errc() || ptr != c.data() + c.size() || p.count == 0 || p.count > 10000)
          fail(name, kv.second, "count must be a number from 1 to 10000");
      } else {
        fail(name, kv.first, fmt::format("unknown key '{}' in a command pattern (verb, count)", k));
      }
    }
  } else {
    s = scalar(name, n, "a command pattern");
  }
  s = substitute(name, n, s, ph);
  p.text = s;
  if (s == "content") {
    p.content = true;
    return p;
  }
  if (s == "none") {
    p.none = true;
    return p;
  }
  std::string verbs = s, re;
  if (auto t = s.find('~'); t != std::string::npos) {
    verbs = s.substr(0, t);
    re = s.substr(t + 1);
    while (!re.empty() && re.front() == ' ') re.erase(0, 1);
  }
  while (!verbs.empty() && verbs.back() == ' ') verbs.pop_back();
  if (verbs != "any" && !verbs.empty()) {
    std::size_t at = 0;
    for (;;) {
      const std::size_t bar = verbs.find('|', at);
      std::string v = verbs.substr(at, bar == std::string::npos ? std::string::npos : bar - at);
      std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      if (v.empty() || v.size() > 12 || !std::all_of(v.begin(), v.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
        fail(name, n, fmt::format("'{}' is not a command verb (MAIL, RCPT|DATA, any, content, none, closed)", v));
      p.verbs.push_back(v);
      if (bar == std::string::npos) break;
      at = bar + 1;
    }
  }
  if (!re.empty()) {
    p.regex = compile_regex(name, n, re);
    p.regex_text = re;
  }
  return p;
}

// Steps of a scenario in which lockstep is the server: S: sends, C: expects.
void server_steps(const std::string& name, const YAML::Node& list, const Placeholders& ph, std::vector<ScenarioStep>& out, int depth) {
  if (!list.IsSequence()) fail(name, list, "steps must be a list");
  if (depth > 4) fail(name, list, "repeat nested too deep");
  for (const auto& item : list) {
    if (!item.IsMap() || item.size() != 1)
      fail(name, item, "each step is one 'KEY: value' (S:, S?:, S|:, C:, C?:, wait:, accept:, trigger:, no-connection:, close:, repeat:)");
    const auto kv = *item.begin();
    const std::string key = kv.first.as<std::string>();
    const YAML::Node v = kv.second;
    ScenarioStep s;
    s.line = item.Mark().line + 1;
    if (key == "S" || key == "S?") {  // a reply: one line, or the lines of a multi-line reply
      s.kind = ScenarioStep::Kind::send;
      s.if_matched = key == "S?";
      if (s.if_matched && (out.empty() || out.back().kind != ScenarioStep::Kind::expect_command || !out.back().command.optional))
        fail(name, item, "S? answers the optional command just before it: put it after a C? step");
      if (v.IsSequence()) {
        for (const auto& l : v) s.bytes += substitute(name, l, scalar(name, l, "a reply line"), ph) + "\r\n";
      } else {
        s.bytes = substitute(name, v, scalar(name, v, "a reply"), ph) + "\r\n";
      }
      out.push_back(std::move(s));
    } else if (key == "S|") {
      s.kind = ScenarioStep::Kind::send;
      s.bytes = unescape(name, v, substitute(name, v, scalar(name, v, "raw bytes"), ph));
      out.push_back(std::move(s));
    } else if (key == "C" || key == "C?") {
      if (v.IsScalar() && v.as<std::string>() == "closed") {
        s.kind = ScenarioStep::Kind::expect_close;
        out.push_back(std::move(s));
        continue;
      }
      const bool optional = key == "C?";
      if (v.IsSequence()) {
        for (const auto& p : v) {
          ScenarioStep e;
          e.kind = ScenarioStep::Kind::expect_command;
          e.line = p.Mark().line + 1;
          e.command = command_pattern(name, p, ph);
          e.command.optional = optional;
          out.push_back(std::move(e));
        }
        continue;
      }
      s.kind = ScenarioStep::Kind::expect_command;
      s.command = command_pattern(name, v, ph);
      s.command.optional = optional;
      if (optional && (s.command.count != 1 || s.command.content || s.command.none)) fail(name, v, "C? takes one command pattern");
      out.push_back(std::move(s));
    } else if (key == "wait") {
      s.kind = ScenarioStep::Kind::wait;
      s.wait = duration(name, v);
      out.push_back(std::move(s));
    } else if (key == "accept") {
      s.kind = ScenarioStep::Kind::accept;
      out.push_back(std::move(s));
    } else if (key == "trigger") {
      s.kind = ScenarioStep::Kind::trigger;
      out.push_back(std::move(s));
    } else if (key == "no-connection") {
      s.kind = ScenarioStep::Kind::no_connection;
      s.wait = duration(name, v);
      out.push_back(std::move(s));
    } else if (key == "close") {
      s.kind = ScenarioStep::Kind::close;
      out.push_back(std::move(s));
    } else if (key == "repeat") {
      repeat(name, v, out, [&](std::vector<ScenarioStep>& body) { server_steps(name, v["steps"], ph, body, depth + 1); });
    } else {
      fail(name, kv.first, fmt::format("unknown step '{}' for role server (S, S?, S|, C, C?, wait, accept, trigger, no-connection, close, repeat)", key));
    }
  }
}
}  // namespace

// libstdc++'s regex matcher recurses per character (several frames each, larger still
// under ASan): a pattern sees the first 512 octets of a line or reply (a command line's
// limit), which keeps the stack bounded whatever the peer sends.
constexpr std::size_t kRegexScope = 512;

bool CommandPattern::matches(const std::string& line) const {
  if (!verbs.empty()) {
    std::string verb = line.substr(0, line.find(' '));
    std::transform(verb.begin(), verb.end(), verb.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (std::find(verbs.begin(), verbs.end(), verb) == verbs.end()) return false;
  }
  return !regex || std::regex_search(line.substr(0, kRegexScope), *regex);
}

bool ReplyPattern::matches(int code, const std::string& reply_text) const {
  if (none) return false;
  if (!codes.empty()) {
    const std::string c = fmt::format("{:03}", code);
    const bool ok = std::any_of(codes.begin(), codes.end(), [&](const std::string& want) {
      return want.substr(1) == "xx" ? want[0] == c[0] : want == c;
    });
    if (!ok) return false;
  }
  return !regex || std::regex_search(reply_text.substr(0, kRegexScope), *regex);
}

Scenario parse_scenario_node(const std::string& text, const std::string& name, const Placeholders& ph);

Scenario parse_scenario(const std::string& text, const std::string& name, const Placeholders& ph) {
  try {
    return parse_scenario_node(text, name, ph);
  } catch (const YAML::Exception& e) {  // a conversion yaml-cpp refused (a list used as a key...)
    throw std::runtime_error(fmt::format("{}:{}: {}", name, e.mark.line + 1, e.msg));
  }
}

Scenario parse_scenario_node(const std::string& text, const std::string& name, const Placeholders& ph) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw std::runtime_error(fmt::format("{}:{}: {}", name, e.mark.line + 1, e.msg));
  }
  if (!root.IsMap()) throw std::runtime_error(fmt::format("{}: a scenario is a YAML mapping (id, title, steps, ...)", name));
  Scenario sc;
  sc.file = name;
  t_octets = 0;
  YAML::Node steps_node, faults_node;
  for (const auto& kv : root) {
    const std::string k = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (k == "id") sc.id = scalar(name, v, "id");
    else if (k == "title") sc.title = scalar(name, v, "title");
    else if (k == "role") {
      sc.role = scalar(name, v, "role");
      if (sc.role != "client" && sc.role != "server")
        fail(name, v, "role is client (lockstep is the client and tests a server) or server (lockstep tests a client)");
    } else if (k == "source") sc.source = scalar(name, v, "source");
    else if (k == "requirement") sc.requirement = scalar(name, v, "requirement");
    else if (k == "timeout") sc.timeout = duration(name, v);
    else if (k == "rules" || k == "requires") {
      if (!v.IsSequence()) fail(name, v, fmt::format("{} must be a list", k));
      for (const auto& r : v) (k == "rules" ? sc.rules : sc.needs).push_back(scalar(name, r, k.c_str()));
    } else if (k == "steps") {
      steps_node = v;
    } else if (k == "faults") {
      faults_node = v;
      if (!v.IsSequence()) fail(name, v, "faults must be a list of fault rules (as for --fault)");
      for (const auto& f : v) {
        std::string error;
        auto spec = proxy::parse_fault(scalar(name, f, "a fault rule"), error);
        if (!spec) fail(name, f, fmt::format("bad fault: {}", error));
        sc.faults.push_back(std::move(*spec));
      }
    } else {
      fail(name, kv.first, fmt::format("unknown key '{}' (id, title, role, source, requirement, rules, requires, timeout, faults, steps)", k));
    }
  }
  // lockstep writes one stream: the commands when it is the client, the replies when it
  // is the server. A fault on the other stream would change nothing.
  for (const auto& f : sc.faults) {
    const Dir writes = sc.role == "server" ? Dir::server : Dir::client;
    if (f.dir != writes)
      fail(name, faults_node, fmt::format("fault '{}' changes the {}, but in a role: {} scenario lockstep writes the {}", f.spec,
                                          f.dir == Dir::server ? "replies" : "commands", sc.role,
                                          writes == Dir::server ? "replies" : "commands"));
  }
  if (steps_node) {
    if (sc.role == "server") server_steps(name, steps_node, ph, sc.steps, 0);
    else steps(name, steps_node, ph, sc.steps, 0);
  }
  if (sc.id.empty()) throw std::runtime_error(fmt::format("{}: the scenario has no id", name));
  if (sc.steps.empty()) throw std::runtime_error(fmt::format("{}: the scenario has no steps", name));
  return sc;
}

std::string read_scenario_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot read it", path));
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > (4u << 20)) throw std::runtime_error(fmt::format("{}: over 4 MiB, not a scenario", path));
  return ss.str();
}

Scenario load_scenario(const std::string& path, const Placeholders& ph) {
  return parse_scenario(read_scenario_file(path), path, ph);
}

std::vector<std::string> scenario_files(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return {path};
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const auto ext = it->path().extension();
    if (it->is_regular_file() && (ext == ".yaml" || ext == ".yml")) out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace lockstep::scenarios
