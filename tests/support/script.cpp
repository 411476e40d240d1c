#include "tests/support/script.hpp"

#include <fmt/format.h>

namespace lockstep::test {

std::string unescape(std::string_view s) {
  std::string o;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      const char n = s[++i];
      switch (n) {
        case 'r': o += '\r'; break;
        case 'n': o += '\n'; break;
        case 't': o += '\t'; break;
        case '\\': o += '\\'; break;
        case 'x':
          o += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
          i += 2;
          break;
        default: o += '\\'; o += n;
      }
    } else {
      o += s[i];
    }
  }
  return o;
}

std::vector<Step> parse_script(const std::vector<std::string>& lines) {
  std::vector<Step> steps;
  for (const auto& l : lines) {
    Step st;
    if (l == "TIMEOUT") {
      st.kind = Step::timeout;
      steps.push_back(st);
      continue;
    }
    if (l == "CLOSE C" || l == "CLOSE S") {
      st.kind = Step::close;
      st.dir = l.back() == 'C' ? Dir::client : Dir::server;
      steps.push_back(st);
      continue;
    }
    if (l.size() < 2) throw std::runtime_error("bad script line: " + l);
    st.dir = l[0] == 'C' ? Dir::client : Dir::server;
    const bool raw = l[1] == '|';
    std::string text = l.substr(l.size() > 2 && l[2] == ' ' ? 3 : 2);
    st.bytes = unescape(text);
    if (!raw) st.bytes += "\r\n";
    steps.push_back(std::move(st));
  }
  return steps;
}

bool RunResult::has(std::string_view rule) const { return count(rule) > 0; }
std::size_t RunResult::count(std::string_view rule) const {
  std::size_t n = 0;
  for (const auto& f : findings) n += f.rule->id == rule ? 1 : 0;
  return n;
}
const Finding* RunResult::first(std::string_view rule) const {
  for (const auto& f : findings)
    if (f.rule->id == rule) return &f;
  return nullptr;
}
std::string RunResult::dump() const {
  std::string s;
  for (const auto& f : findings)
    s += fmt::format("#{} {} {} {}: {}\n", f.id, f.rule->id, to_string(f.severity), to_string(f.side), f.explanation);
  for (const auto& n : narrative) s += "  ~ " + n + "\n";
  return s.empty() ? "(no findings)" : s;
}

RunResult run_steps(const std::vector<Step>& steps, SessionOptions opts, bool capture_ended,
                    const std::pair<std::string, std::string>& peers) {
  Session s(opts);
  RunResult r;
  if (!peers.first.empty() || !peers.second.empty()) s.set_peers(peers.first, peers.second);
  Time t = 1000000;
  auto drain = [&] {
    while (auto e = s.next()) {
      if (auto* f = std::get_if<Finding>(&*e)) r.findings.push_back(*f);
      if (auto* m = std::get_if<MispairEvent>(&*e)) r.narrative.push_back(m->text);
      r.events.push_back(std::move(*e));
    }
  };
  for (const auto& st : steps) {
    t += 1000;
    if (st.kind == Step::close) s.close(st.dir, t);
    else if (st.kind == Step::timeout) s.timeout(t);
    else s.feed(st.dir, st.bytes, t);
    drain();
  }
  s.finish(t + 1000, capture_ended);
  drain();
  r.final_state = s.state();
  r.desynced = s.desynced();
  return r;
}

RunResult run_script(const std::vector<std::string>& lines, SessionOptions opts, bool capture_ended,
                     const std::pair<std::string, std::string>& peers) {
  return run_steps(parse_script(lines), opts, capture_ended, peers);
}

std::vector<std::string> hello(std::vector<std::string> rest, std::string caps) {
  std::vector<std::string> v{"S: 220 lmtp.example.test LMTP ready", "C: LHLO client.example.test"};
  std::vector<std::string> kw;
  std::size_t pos = 0;
  while (pos <= caps.size()) {
    auto c = caps.find(',', pos);
    if (c == std::string::npos) c = caps.size();
    if (c > pos) kw.push_back(caps.substr(pos, c - pos));
    pos = c + 1;
  }
  v.push_back(kw.empty() ? "S: 250 lmtp.example.test" : "S: 250-lmtp.example.test");
  for (std::size_t i = 0; i < kw.size(); ++i) v.push_back((i + 1 == kw.size() ? "S: 250 " : "S: 250-") + kw[i]);
  v.insert(v.end(), rest.begin(), rest.end());
  return v;
}

void for_each_split(std::string_view data, const std::function<void(std::vector<std::string_view>)>& f) {
  f({data});
  for (std::size_t i = 1; i < data.size(); ++i) f({data.substr(0, i), data.substr(i)});
}

std::vector<std::string_view> bytewise(std::string_view data) {
  std::vector<std::string_view> v;
  for (std::size_t i = 0; i < data.size(); ++i) v.push_back(data.substr(i, 1));
  return v;
}

}  // namespace lockstep::test
