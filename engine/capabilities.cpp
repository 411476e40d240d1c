#include "engine/capabilities.hpp"

#include "engine/command.hpp"

namespace lockstep {

namespace {
bool is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
// ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"); ehlo-param = 1*(%d33-126)
Keyword parse_keyword_line(std::string_view text) {
  Keyword k;
  std::size_t i = 0;
  auto sp = text.find(' ');
  k.name = std::string(text.substr(0, sp));
  if (k.name.empty() || !is_alnum(k.name[0])) k.bad_syntax = true;
  for (char c : k.name)
    if (!is_alnum(c) && c != '-') k.bad_syntax = true;
  while (sp != std::string_view::npos) {
    i = sp + 1;
    sp = text.find(' ', i);
    const std::string_view p = text.substr(i, sp == std::string_view::npos ? sp : sp - i);
    if (p.empty()) { k.bad_syntax = true; continue; }
    for (char c : p)
      if (static_cast<unsigned char>(c) < 33 || static_cast<unsigned char>(c) > 126) k.bad_syntax = true;
    k.params.emplace_back(p);
  }
  return k;
}
}  // namespace

bool Capabilities::has(std::string_view keyword) const {
  for (const auto& k : keywords)
    if (iequals(k.name, keyword)) return true;
  return false;
}

Capabilities Capabilities::assume_all() {
  Capabilities c;
  c.known = false;
  c.pipelining = c.enhanced_codes = c.chunking = c.binarymime = c.eightbit = c.smtputf8 = c.dsn =
      c.auth = c.size = true;
  return c;
}

Capabilities parse_capabilities(const Reply& r) {
  Capabilities c;
  c.known = true;
  for (std::size_t i = 0; i < r.lines.size(); ++i) {
    const std::string_view line = r.lines[i];
    const std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view{};
    if (i == 0) {  // "250-" Domain [ SP ehlo-greet ]
      if (text.empty() || text.front() == ' ') c.greeting_domain_bad = true;
      continue;
    }
    Keyword k = parse_keyword_line(text);
    const std::string& n = k.name;
    if (iequals(n, "PIPELINING")) c.pipelining = true;
    else if (iequals(n, "ENHANCEDSTATUSCODES")) c.enhanced_codes = true;
    else if (iequals(n, "CHUNKING")) c.chunking = true;
    else if (iequals(n, "BINARYMIME")) c.binarymime = true;
    else if (iequals(n, "8BITMIME")) c.eightbit = true;
    else if (iequals(n, "SMTPUTF8")) c.smtputf8 = true;
    else if (iequals(n, "DSN")) c.dsn = true;
    else if (iequals(n, "STARTTLS")) c.starttls = true;
    else if (iequals(n, "AUTH")) c.auth = true;
    else if (iequals(n, "SIZE")) {
      c.size = true;
      if (!k.params.empty()) {
        std::uint64_t v = 0;
        bool ok = !k.params[0].empty() && k.params[0].size() <= 20;
        for (char ch : k.params[0]) {
          if (ch < '0' || ch > '9') { ok = false; break; }
          v = v * 10 + static_cast<std::uint64_t>(ch - '0');
        }
        if (ok && v > 0) c.size_limit = v;
      }
    }
    c.keywords.push_back(std::move(k));
  }
  return c;
}

}  // namespace lockstep
