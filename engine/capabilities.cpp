#include "engine/capabilities.hpp"

#include "engine/command.hpp"

namespace lockstep {

namespace {
bool is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
// Which known keyword `name` is.
Kw classify(std::string_view name) {
  struct Known {
    std::string_view name;
    Kw kw;
  };
  static constexpr Known kKnown[] = {
      {"PIPELINING", Kw::pipelining}, {"ENHANCEDSTATUSCODES", Kw::enhancedstatuscodes}, {"CHUNKING", Kw::chunking},
      {"BINARYMIME", Kw::binarymime}, {"8BITMIME", Kw::eightbitmime}, {"SMTPUTF8", Kw::smtputf8}, {"DSN", Kw::dsn},
      {"STARTTLS", Kw::starttls}, {"AUTH", Kw::auth}, {"SIZE", Kw::size}, {"EXPN", Kw::expn}, {"ETRN", Kw::etrn},
      {"HELP", Kw::help}};
  // The length and the first letter rule out all but one, mostly, before any comparison.
  for (const Known& k : kKnown)
    if (k.name.size() == name.size() && (k.name[0] | 0x20) == (name[0] | 0x20) && iequals(name, k.name)) return k.kw;
  return Kw::other;
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
  k.kw = classify(k.name);
  return k;
}
}  // namespace

const std::vector<Keyword>& Capabilities::keywords() const {
  static const std::vector<Keyword> kNone;
  return list_ ? *list_ : kNone;
}

bool Capabilities::has(std::string_view keyword) const {
  for (const auto& k : keywords())
    if (iequals(k.name, keyword)) return true;
  return false;
}

bool Capabilities::has(Kw kw) const {
  for (const auto& k : keywords())
    if (k.kw == kw) return true;
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
  auto list = std::make_shared<std::vector<Keyword>>();
  list->reserve(r.lines.size());
  for (std::size_t i = 0; i < r.lines.size(); ++i) {
    const std::string_view line = r.lines[i];
    const std::string_view text = line.size() > 4 ? line.substr(4) : std::string_view{};
    if (i == 0) {  // "250-" Domain [ SP ehlo-greet ]
      if (text.empty() || text.front() == ' ') c.greeting_domain_bad = true;
      continue;
    }
    Keyword& k = list->emplace_back(parse_keyword_line(text));
    switch (k.kw) {
      case Kw::pipelining: c.pipelining = true; break;
      case Kw::enhancedstatuscodes: c.enhanced_codes = true; break;
      case Kw::chunking: c.chunking = true; break;
      case Kw::binarymime: c.binarymime = true; break;
      case Kw::eightbitmime: c.eightbit = true; break;
      case Kw::smtputf8: c.smtputf8 = true; break;
      case Kw::dsn: c.dsn = true; break;
      case Kw::starttls: c.starttls = true; break;
      case Kw::auth: c.auth = true; break;
      case Kw::size:
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
        break;
      case Kw::expn: case Kw::etrn: case Kw::help: case Kw::other: break;
    }
  }
  c.list_ = std::move(list);
  return c;
}

}  // namespace lockstep
