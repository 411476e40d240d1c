#include "engine/command.hpp"

#include <array>
#include <utility>

namespace lockstep {

namespace {
constexpr std::array<std::pair<std::string_view, Verb>, 17> kVerbs{{
    {"LHLO", Verb::lhlo}, {"HELO", Verb::helo}, {"EHLO", Verb::ehlo}, {"MAIL", Verb::mail},
    {"RCPT", Verb::rcpt}, {"DATA", Verb::data}, {"BDAT", Verb::bdat}, {"RSET", Verb::rset},
    {"NOOP", Verb::noop}, {"QUIT", Verb::quit}, {"VRFY", Verb::vrfy}, {"EXPN", Verb::expn},
    {"HELP", Verb::help}, {"STARTTLS", Verb::starttls}, {"AUTH", Verb::auth},
    {"TURN", Verb::turn}, {"ETRN", Verb::etrn},
}};

constexpr char upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }

// A four-letter verb as one number, in upper case.
constexpr std::uint32_t pack4(std::string_view v) {
  std::uint32_t k = 0;
  for (std::size_t i = 0; i < 4; ++i) k = k << 8 | static_cast<unsigned char>(upper(v[i]));
  return k;
}

// The four-letter verbs packed, in kVerbs' order (0 for STARTTLS).
constexpr auto kPacked = [] {
  std::array<std::uint32_t, kVerbs.size()> a{};
  for (std::size_t i = 0; i < kVerbs.size(); ++i) a[i] = kVerbs[i].first.size() == 4 ? pack4(kVerbs[i].first) : 0;
  return a;
}();

Verb lookup_verb(std::string_view v) {
  if (v.size() == 4) {
    const std::uint32_t k = pack4(v);
    for (std::size_t i = 0; i < kPacked.size(); ++i)
      if (kPacked[i] == k) return kVerbs[i].second;
  } else if (iequals(v, "STARTTLS")) {
    return Verb::starttls;
  }
  return Verb::unknown;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

void parse_params(std::string_view rest, Command& c);

// Splits "<path> P1=V1 P2" after MAIL FROM: / RCPT TO:.
void parse_path_and_params(std::string_view rest, Command& c) {
  if (!rest.empty() && rest.front() == ' ') {
    c.syntax.space_around_colon = true;
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  }
  if (rest.empty() || rest.front() != '<') {
    c.syntax.bad_path = true;
    const auto sp = rest.find(' ');
    c.path = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp);
  } else {
    // A quoted local part may hold '>' or spaces: skip over quoted strings.
    std::size_t i = 1;
    bool quoted = false;
    for (; i < rest.size(); ++i) {
      if (rest[i] == '\\' && quoted) { ++i; continue; }
      if (rest[i] == '"') quoted = !quoted;
      else if (rest[i] == '>' && !quoted) break;
    }
    if (i >= rest.size()) {
      c.syntax.bad_path = true;
      c.path = rest.substr(1);
      return;
    }
    c.path = rest.substr(1, i - 1);
    rest = rest.substr(i + 1);
  }
  parse_params(rest, c);
}

void parse_params(std::string_view rest, Command& c) {
  while (!rest.empty()) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty()) break;
    const auto sp = rest.find(' ');
    const std::string_view tok = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp);
    Param p;
    const auto eq = tok.find('=');
    p.key = tok.substr(0, eq);
    p.id = param_key(p.key);
    if (eq != std::string_view::npos) {
      p.has_value = true;
      p.value = tok.substr(eq + 1);
    }
    c.params.push_back(p);
  }
}
}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (upper(a[i]) != upper(b[i])) return false;
  return true;
}

std::string_view to_string(Verb v) {
  if (v == Verb::unknown) return "unknown";
  for (const auto& [name, verb] : kVerbs)
    if (verb == v) return name;
  return "?";
}

ParamKey param_key(std::string_view k) {
  switch (k.size()) {
    case 3: return iequals(k, "RET") ? ParamKey::ret : ParamKey::other;
    case 4:
      if (iequals(k, "SIZE")) return ParamKey::size;
      if (iequals(k, "BODY")) return ParamKey::body;
      if (iequals(k, "AUTH")) return ParamKey::auth;
      return ParamKey::other;
    case 5:
      if (iequals(k, "ENVID")) return ParamKey::envid;
      if (iequals(k, "ORCPT")) return ParamKey::orcpt;
      return ParamKey::other;
    case 6: return iequals(k, "NOTIFY") ? ParamKey::notify : ParamKey::other;
    case 8: return iequals(k, "SMTPUTF8") ? ParamKey::smtputf8 : ParamKey::other;
    default: return ParamKey::other;
  }
}

Command& Command::operator=(const Command& o) {
  if (this != &o) {
    CommandFields::operator=(o);
    rebase(o.line.data());
  }
  return *this;
}

Command& Command::operator=(Command&& o) noexcept {
  const char* old = o.line.data();
  CommandFields::operator=(static_cast<CommandFields&&>(o));
  rebase(old);
  return *this;
}

void Command::rebase(const char* old) {
  if (old == line.data()) return;
  const auto move = [&](std::string_view& v) {
    if (v.data()) v = std::string_view(line.data() + (v.data() - old), v.size());
  };
  move(verb_text);
  move(arg);
  move(path);
  for (Param& p : params) {
    move(p.key);
    move(p.value);
  }
}

const Param* Command::param(ParamKey id) const {
  for (const auto& p : params)
    if (p.id == id) return &p;
  return nullptr;
}

std::size_t Command::count_param(ParamKey id) const {
  std::size_t n = 0;
  for (const auto& p : params) n += p.id == id ? 1 : 0;
  return n;
}

std::string Command::label(std::size_t max) const {
  const bool cut = line.size() > max;
  std::string s(line, 0, cut ? max : line.size());
  for (char& ch : s) {  // without a branch per octet, which the compiler vectorises
    const auto c = static_cast<unsigned char>(ch);
    ch = ((c < 0x20) | (c == 0x7f)) ? '?' : ch;
  }
  if (cut) s += "...";
  return s;
}

Command parse_command(std::string_view line) {
  Command c;
  c.syntax.non_ascii = has_high_octet(line);
  c.line.assign(line.substr(0, Command::kMaxLine));
  const std::string_view kept = c.line;
  const auto sp = kept.find(' ');
  const std::string_view verb = kept.substr(0, sp);
  c.verb_text = verb.substr(0, 32);
  c.arg = sp == std::string_view::npos ? kept.substr(kept.size()) : kept.substr(sp + 1);
  c.verb = lookup_verb(verb);
  const std::string_view arg = c.arg;

  switch (c.verb) {
    case Verb::mail:
    case Verb::rcpt: {
      const std::string_view kw = c.verb == Verb::mail ? "FROM" : "TO";
      std::string_view rest = arg;
      if (!istarts_with(rest, kw)) { c.syntax.bad_path = true; break; }
      rest.remove_prefix(kw.size());
      if (!rest.empty() && rest.front() == ' ') {  // "FROM :<a>"
        c.syntax.space_around_colon = true;
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
      }
      if (rest.empty() || rest.front() != ':') { c.syntax.bad_path = true; break; }
      rest.remove_prefix(1);
      parse_path_and_params(rest, c);
      break;
    }
    case Verb::rset:
    case Verb::data:
    case Verb::quit:
      if (!arg.empty()) c.syntax.args_not_allowed = true;
      break;
    case Verb::bdat: {
      // "BDAT" SP chunk-size [SP "LAST"] (RFC 3030 §2)
      std::string_view rest = arg;
      std::size_t i = 0;
      std::uint64_t n = 0;
      bool overflow = false;
      while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') {
        if (n > (UINT64_MAX - 9) / 10) overflow = true;
        n = n * 10 + static_cast<std::uint64_t>(rest[i] - '0');
        ++i;
      }
      if (i == 0 || overflow) { c.syntax.bad_bdat = true; break; }
      c.bdat_size = n;
      rest.remove_prefix(i);
      if (rest.empty()) break;
      if (iequals(rest, " LAST")) c.bdat_last = true;
      else c.syntax.bad_bdat = true;
      break;
    }
    case Verb::vrfy:
    case Verb::expn: {
      const auto s2 = arg.find(' ');
      c.path = arg.substr(0, s2);
      if (s2 != std::string_view::npos) parse_params(arg.substr(s2), c);
      break;
    }
    default:
      break;
  }
  return c;
}

}  // namespace lockstep
