#include "scenarios/campaign.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <cstring>
#include <random>
#include <sstream>
#include <stdexcept>
#include <set>
#include <thread>

#include "engine/session.hpp"
#include "scenarios/runner.hpp"
#include "scenarios/server_runner.hpp"

namespace lockstep::scenarios {
namespace {
using Clock = std::chrono::steady_clock;
using Rng = std::mt19937_64;

Time now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::size_t pick(Rng& rng, std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); }
bool chance(Rng& rng, unsigned percent) { return rng() % 100 < percent; }

// One write of the session: a command line, a pipelined group or content.
struct Group {
  std::string bytes;
  std::size_t frag = 0;   // octets per write (0: one write)
  unsigned delay_ms = 0;  // pause before it
};

// A command of the generated session before grouping.
struct Cmd {
  std::string line;       // with its line end; for content, the whole content with its end
  bool content = false;   // message content (after DATA) or a BDAT chunk's octets
  bool pipelined = false; // goes in the same write as the command before it
};

struct Plan {
  std::vector<Group> groups;
  std::vector<std::string> mutations;
};

std::string verb_of(std::string_view bytes) {
  while (!bytes.empty() && !std::isalpha(static_cast<unsigned char>(bytes.front()))) bytes.remove_prefix(1);  // "'QUIT'" -> QUIT
  std::string v(bytes.substr(0, std::min<std::size_t>(bytes.find_first_of(" \r\n'<:"), 12)));
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return v.empty() ? "?" : v;
}

std::string content_text(Rng& rng) {
  std::string c = "From: <fuzz@lockstep.test>\r\nSubject: lockstep fuzz\r\n\r\n";
  const std::size_t lines = 1 + pick(rng, 6);
  for (std::size_t i = 0; i < lines; ++i) c += chance(rng, 20) ? "..dot-stuffed\r\n" : fmt::format("line {}\r\n", i);
  return c;
}

// A well-formed session from the state model.
std::vector<Cmd> generate(Rng& rng, const Placeholders& ph) {
  std::vector<Cmd> s;
  s.push_back({fmt::format("LHLO {}\r\n", ph.helo)});
  const std::size_t txns = pick(rng, 3) + (chance(rng, 80) ? 1 : 0);
  for (std::size_t t = 0; t < txns; ++t) {
    const bool pipe = chance(rng, 70);
    s.push_back({fmt::format("MAIL FROM:<{}>{}\r\n", ph.from, chance(rng, 30) ? " BODY=8BITMIME" : "")});
    const std::size_t rcpts = pick(rng, 4) + (chance(rng, 85) ? 1 : 0);
    for (std::size_t r = 0; r < rcpts; ++r) {
      const std::string& to = chance(rng, 20) ? ph.bad_rcpt : ph.rcpts[pick(rng, ph.rcpts.size())];
      s.push_back({fmt::format("RCPT TO:<{}>\r\n", to), false, pipe});
    }
    if (chance(rng, 20)) {  // BDAT: the chunk follows its command at once
      const std::string body = content_text(rng);
      s.push_back({fmt::format("BDAT {} LAST\r\n", body.size()), false, pipe});
      s.push_back({body, true, true});
    } else {
      s.push_back({"DATA\r\n", false, pipe});
      s.push_back({content_text(rng) + ".\r\n", true, false});
    }
    if (chance(rng, 20)) s.push_back({chance(rng, 50) ? "RSET\r\n" : "NOOP\r\n"});
  }
  if (chance(rng, 15)) s.push_back({"VRFY postmaster\r\n"});
  s.push_back({"QUIT\r\n", false, chance(rng, 50)});
  return s;
}

// Indexes of the commands (not content) of a session.
std::vector<std::size_t> commands(const std::vector<Cmd>& s, const char* verb = nullptr) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (!s[i].content && (!verb || verb_of(s[i].line) == verb)) out.push_back(i);
  return out;
}

void set_line(std::string& line, const std::string& text) {  // keeps the line end
  const auto end = line.find_first_of("\r\n");
  line = text + (end == std::string::npos ? "" : line.substr(end));
}
std::string text_of_line(const std::string& line) { return line.substr(0, line.find_first_of("\r\n")); }

// One mutation of the session; its name goes to the plan.
std::string mutate(Rng& rng, std::vector<Cmd>& s, const Placeholders& ph) {
  const auto cmds = commands(s);
  auto any_cmd = [&]() -> Cmd& { return s[cmds[pick(rng, cmds.size())]]; };
  auto with_verb = [&](std::initializer_list<const char*> verbs) -> Cmd* {
    std::vector<std::size_t> c;
    for (const char* v : verbs)
      for (auto i : commands(s, v)) c.push_back(i);
    return c.empty() ? nullptr : &s[c[pick(rng, c.size())]];
  };
  static const char* kParams[] = {" SIZE=99999999999999999999", " SIZE=-1", " SIZE=abc", " SIZE=", " BODY=FOO", " BODY=BINARYMIME",
                                  " X-UNKNOWN=1", " SIZE=10 SIZE=20", " NOTIFY=GARBAGE", " NOTIFY=NEVER,SUCCESS", " ORCPT=alice",
                                  " RET=NONE", " ENVID=x+2By", " SMTPUTF8",
                                  " AUTH=<>", " =", " SIZE=0"};
  static const char* kPaths[] = {"<>", "", "<@relay.test:{r}>", "<\"quoted local\"@lab.test>", "{r}", "<{r}", "{r}>",
                                 "<{r}> <{r}>", "<ali\xc3\xa9@lab.test>", "<a@[127.0.0.1]>", "<a@b@c>", "< {r} >"};
  static const std::string_view kDots[] = {"\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r.\n", "\n.\r", "\r.\r\n", "\r\n.\r",
                                          ". \r\n", "\r\n..\r\n", "\r\n.x\r\n", std::string_view("\0", 1)};
  switch (pick(rng, 16)) {
    case 0: {
      Cmd& c = any_cmd();
      std::string t = text_of_line(c.line);
      for (std::size_t i = 0; i < t.size() && t[i] != ' '; ++i) t[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(t[i])));
      set_line(c.line, t);
      return "verb-case";
    }
    case 1: {
      static const char* kVerbs[] = {"XYZZY", "MAIL2", "RCTP", "DAT", "EHLO x", "HELO x", "STARTTLS", "AUTH PLAIN AGFsaWNlAHg=",
                                     "ETRN lab.test", "TURN", "BDAT", "BDAT x", "HELP", "EXPN list", "\x01\x02"};
      s.insert(s.begin() + static_cast<long>(cmds[pick(rng, cmds.size())]), Cmd{std::string(kVerbs[pick(rng, std::size(kVerbs))]) + "\r\n"});
      return "odd-command";
    }
    case 2: {
      if (Cmd* c = with_verb({"MAIL", "RCPT"})) {
        set_line(c->line, text_of_line(c->line) + kParams[pick(rng, std::size(kParams))]);
        return "parameter";
      }
      return "";
    }
    case 3: {
      if (Cmd* c = with_verb({"MAIL", "RCPT"})) {
        std::string p = kPaths[pick(rng, std::size(kPaths))];
        for (auto at = p.find("{r}"); at != std::string::npos; at = p.find("{r}")) p.replace(at, 3, ph.rcpts[0]);
        const std::string t = text_of_line(c->line);
        set_line(c->line, t.substr(0, t.find(':') + 1) + (chance(rng, 30) ? " " : "") + p);
        return "path";
      }
      return "";
    }
    case 4: {
      Cmd& c = any_cmd();
      static const char* kEnds[] = {"\n", "\r", "\r\r\n", "\n\r"};
      c.line = text_of_line(c.line) + kEnds[pick(rng, std::size(kEnds))];
      return "line-end";
    }
    case 5: {
      Cmd& c = any_cmd();
      static const std::size_t kLens[] = {511, 513, 1001, 4097, 20000};
      const std::size_t len = kLens[pick(rng, std::size(kLens))];
      std::string t = text_of_line(c.line);
      t += (t.find(' ') == std::string::npos ? " " : "") + std::string(len > t.size() + 3 ? len - t.size() - 3 : 1, 'x');
      set_line(c.line, t);
      return "long-line";
    }
    case 6: case 7: {
      std::vector<std::size_t> data;
      for (std::size_t i = 0; i < s.size(); ++i)
        if (s[i].content && s[i].line.size() > 5 && s[i].line.compare(s[i].line.size() - 5, 5, "\r\n.\r\n") == 0) data.push_back(i);
      if (data.empty()) return "";
      std::string& body = s[data[pick(rng, data.size())]].line;
      const std::size_t at = 1 + pick(rng, body.size() - 5);
      if (chance(rng, 60)) {
        body.insert(at, std::string(kDots[pick(rng, std::size(kDots))]));
        return "dots";
      }
      static const char* kBytes[] = {"\n", "\r", "\x80\xff", "\r\n\r\n", "\t"};
      body.insert(at, chance(rng, 30) ? std::string(2000, 'y') : std::string(kBytes[pick(rng, std::size(kBytes))]));
      return "content-bytes";
    }
    case 8: {
      if (Cmd* c = with_verb({"BDAT"})) {
        const std::string t = text_of_line(c->line);
        std::uint64_t n = std::strtoull(t.c_str() + 5, nullptr, 10);
        static const long kDelta[] = {-1, 1, -100000, 0};
        const long d = kDelta[pick(rng, std::size(kDelta))];
        n = d == -100000 ? 0 : d == 0 ? 99999999 : static_cast<std::uint64_t>(static_cast<long>(n) + d);
        set_line(c->line, fmt::format("BDAT {}{}", n, chance(rng, 70) ? " LAST" : ""));
        return "bdat-size";
      }
      return "";
    }
    case 9: {
      if (cmds.size() < 3) return "";
      const std::size_t i = cmds[1 + pick(rng, cmds.size() - 1)];
      const bool data = verb_of(s[i].line) == "DATA" || verb_of(s[i].line) == "BDAT";
      s.erase(s.begin() + static_cast<long>(i), s.begin() + static_cast<long>(i + (data && i + 1 < s.size() && s[i + 1].content ? 2 : 1)));
      return "drop-command";
    }
    case 10: {
      const std::size_t i = cmds[pick(rng, cmds.size())];
      if (verb_of(s[i].line) == "DATA" || verb_of(s[i].line) == "BDAT") return "";
      s.insert(s.begin() + static_cast<long>(i), s[i]);
      return "dup-command";
    }
    case 11: {
      std::string g;
      const std::size_t n = 1 + pick(rng, 40);
      for (std::size_t k = 0; k < n; ++k) g += static_cast<char>(rng() & 0xff);
      s.insert(s.begin() + static_cast<long>(cmds[pick(rng, cmds.size())]), Cmd{g + "\r\n"});
      return "garbage";
    }
    case 12:
      s.push_back({"NOOP\r\n", false, chance(rng, 50)});
      return "after-quit";
    case 13:
      if (verb_of(s.back().line) == "QUIT") s.pop_back();
      return "no-quit";
    case 14:
      for (std::size_t i = 1; i < s.size(); ++i) s[i].pipelined = true;
      return "one-write";
    default:
      for (auto& c : s) c.pipelined = false;
      return "no-pipelining";
  }
}

Plan plan_session(std::uint64_t seed, std::uint64_t n, const Placeholders& ph) {
  Rng rng(seed ^ (n * 0x9E3779B97F4A7C15ull));
  std::vector<Cmd> s = generate(rng, ph);
  Plan p;
  const std::size_t mutations = pick(rng, 4);
  for (std::size_t i = 0; i < mutations; ++i)
    if (auto m = mutate(rng, s, ph); !m.empty()) p.mutations.push_back(m);
  for (const auto& c : s) {
    if (c.pipelined && !p.groups.empty()) p.groups.back().bytes += c.line;
    else p.groups.push_back({c.line});
  }
  // Timing and fragmentation.
  for (auto& g : p.groups) {
    if (chance(rng, 6)) {
      g.frag = 1 + pick(rng, 7);
      p.mutations.push_back("fragment");
    }
    if (chance(rng, 3)) {
      g.delay_ms = 50 + static_cast<unsigned>(pick(rng, 500));
      p.mutations.push_back("delay");
    }
  }
  if (p.mutations.empty()) p.mutations.push_back("none");
  return p;
}

// What one session showed.
struct Outcome {
  std::map<std::string, std::pair<std::string, std::string>> keys;  // key -> (rule, explanation)
  std::string anomaly;          // reset, closed, hang (empty: none)
  std::set<std::string> states;
  std::vector<std::size_t> replies;  // replies received after each group
  bool connected = false;
  std::string connect_error;
};

class Driver {
 public:
  Driver(int fd, const CampaignOptions& o) : fd_(fd), o_(o), engine_(SessionOptions{true, false, true, false, false}) {}
  ~Driver() { ::close(fd_); }

  // Reads until the engine owes no reply, or `timeout` passes without one. False on hang.
  bool settle(Outcome& out) {
    auto deadline = Clock::now() + o_.reply_timeout;
    while (engine_.reply_wait_minimum() > 0 && !closed_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) {
        // The server may rightly wait: for the rest of a line lockstep ended with a bare CR,
        // or for the octets of a BDAT chunk lockstep announced but did not send.
        if (engine_.client_parsed() < sent_ || short_bdat_) return true;
        out.anomaly = "hang";
        return false;
      }
      if (read(static_cast<int>(left), out) > 0) deadline = Clock::now() + o_.reply_timeout;
    }
    read(10, out);  // a late surplus reply
    return true;
  }
  bool send(const Group& g, Outcome& out) {
    if (g.delay_ms) std::this_thread::sleep_for(std::chrono::milliseconds(g.delay_ms));
    sent_ += g.bytes.size();
    short_bdat_ = short_bdat_ || announces_more(g.bytes);
    const std::size_t step = g.frag ? g.frag : g.bytes.size();
    for (std::size_t at = 0; at < g.bytes.size(); at += step) {
      const std::string_view part = std::string_view(g.bytes).substr(at, step);
      engine_.feed(Dir::client, part, now_us());
      std::size_t done = 0;
      while (done < part.size()) {
        const ssize_t n = ::send(fd_, part.data() + done, part.size() - done, MSG_NOSIGNAL);
        if (n > 0) {
          done += static_cast<std::size_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
          pollfd p{fd_, POLLOUT, 0};
          ::poll(&p, 1, 100);
          read(0, out);  // never deadlock on a server that answers while we write
          if (closed_) return false;
        } else {
          if (errno == ECONNRESET || errno == EPIPE) reset_ = true;
          closed_ = true;
          return false;
        }
      }
      if (g.frag) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }
  void finish(Outcome& out) {
    if (!closed_) {  // after QUIT the server closes; otherwise lockstep does
      const auto until = Clock::now() + std::chrono::milliseconds(engine_.state() == State::closing ? 1000 : 0);
      while (!closed_ && Clock::now() < until) read(50, out);
    }
    engine_.finish(now_us(), !closed_);
    drain(out);
  }
  State state() const { return engine_.state(); }
  bool closed() const { return closed_; }
  bool reset() const { return reset_; }
  std::size_t replies() const { return static_cast<std::size_t>(engine_.replies()); }

  std::string last_verb = "greeting";

 private:
  // Returns the octets read (0 on timeout or close).
  std::size_t read(int timeout_ms, Outcome& out) {
    if (closed_) return 0;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return 0;
    char buf[16384];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
      if (n < 0 && errno == ECONNRESET) reset_ = true;
      closed_ = true;
      engine_.close(Dir::server, now_us());
      drain(out);
      return 0;
    }
    engine_.feed(Dir::server, std::string_view(buf, static_cast<std::size_t>(n)), now_us());
    drain(out);
    return static_cast<std::size_t>(n);
  }
  void drain(Outcome& out) {
    while (auto ev = engine_.next()) {
      const auto* f = std::get_if<Finding>(&*ev);
      // Root causes only: the consequences of a desync follow from its first finding.
      if (!f || f->side != Dir::server || f->severity != Severity::error || !f->rule || f->cause != 0) continue;
      // Keyed by rule and verb; content lines read as commands after a desync are "other".
      static const std::set<std::string> kVerbs = {"LHLO", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET",
                                                   "NOOP", "QUIT", "VRFY", "EXPN", "HELP", "STARTTLS", "AUTH"};
      std::string verb = f->command.empty() ? last_verb : verb_of(f->command);
      if (!kVerbs.count(verb)) verb = "other";
      const std::string key = fmt::format("{}@{}", f->rule->id, verb);
      out.keys.try_emplace(key, std::string(f->rule->id), f->explanation);
    }
  }

  // A BDAT in `bytes` announcing more octets than follow it.
  static bool announces_more(std::string_view bytes) {
    for (auto at = bytes.find("BDAT "); at != std::string_view::npos; at = bytes.find("BDAT ", at + 1)) {
      const auto eol = bytes.find('\n', at);
      if (eol == std::string_view::npos) return false;
      const std::uint64_t n = std::strtoull(std::string(bytes.substr(at + 5, eol - at - 5)).c_str(), nullptr, 10);
      if (n > bytes.size() - eol - 1) return true;
    }
    return false;
  }

  int fd_;
  const CampaignOptions& o_;
  Session engine_;
  std::uint64_t sent_ = 0;
  bool closed_ = false, reset_ = false, short_bdat_ = false;
};

Outcome execute(const Plan& plan, const CampaignOptions& o) {
  Outcome out;
  const int fd = connect_to(o.target, o.connect_timeout, out.connect_error);
  if (fd < 0) return out;
  out.connected = true;
  Driver d(fd, o);
  bool ok = d.settle(out);  // the greeting
  bool quit_sent = false;
  for (const auto& g : plan.groups) {
    if (!ok || d.closed()) break;
    const State before = d.state();
    d.last_verb = verb_of(g.bytes);
    if (!d.send(g, out)) break;
    ok = d.settle(out);
    out.replies.push_back(d.replies());
    out.states.insert(fmt::format("{}/{}", to_string(before), d.last_verb));
    quit_sent = quit_sent || g.bytes.find("QUIT\r\n") != std::string::npos;
  }
  const bool hang = !ok;
  const bool server_ended = d.state() == State::closing;
  d.finish(out);
  if (hang) out.anomaly = "hang";
  else if (d.reset()) out.anomaly = "reset";
  else if (d.closed() && !server_ended && !quit_sent) out.anomaly = "closed";
  if (!out.anomaly.empty())
    out.keys.try_emplace(fmt::format("anomaly:{}@{}", out.anomaly, d.last_verb), "anomaly",
                         out.anomaly == "hang" ? fmt::format("no reply within {} ms although one was owed", o.reply_timeout.count())
                         : out.anomaly == "reset" ? "the server reset the connection"
                                                  : "the server closed the connection without 221 or 421");
  return out;
}

// A clean delivery: does the server still work?
bool healthy(const CampaignOptions& o) {
  Plan p;
  p.groups = {{fmt::format("LHLO {}\r\n", o.placeholders.helo)},
              {fmt::format("MAIL FROM:<{}>\r\nRCPT TO:<{}>\r\nDATA\r\n", o.placeholders.from, o.placeholders.rcpts[0])},
              {"Subject: lockstep fuzz health check\r\n\r\nok\r\n.\r\n"},
              {"QUIT\r\n"}};
  const Outcome out = execute(p, o);
  // It answers (its usual deviations are allowed: the question is whether it still works).
  return out.connected && out.anomaly.empty() && out.replies.size() == 4;
}

std::string yaml_quote(std::string_view raw) {
  std::string s = "\"";
  for (const char c : raw) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"') s += "\\\"";
    else if (c == '\\') s += "\\\\\\\\";  // the scenario's own escape of a backslash, in YAML
    else if (c == '\r') s += "\\\\r";
    else if (c == '\n') s += "\\\\n";
    else if (c == '\t') s += "\\\\t";
    else if (u < 0x20 || u >= 0x7f) s += fmt::format("\\\\x{:02x}", u);
    else if (c == '{') s += "\\\\x7b";  // never a placeholder
    else s += c;
  }
  return s + "\"";
}

// Text for the metadata (title, requirement, source): YAML's own escapes only.
std::string yaml_text(std::string_view text) {
  std::string s = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') s += '\\';
    s += (c == '\n' || c == '\r') ? ' ' : c;
  }
  return s + "\"";
}

std::string reproducer(const Plan& p, const CampaignFinding& f, const CampaignOptions& o, const std::string& id) {
  std::string y = fmt::format("id: {}\ntitle: {}\n", id, yaml_text(fmt::format("fuzz: {} after {}", f.rule, f.key.substr(f.key.find('@') + 1))));
  if (f.rule != "anomaly") y += fmt::format("rules: [{}]\n", f.rule);
  y += fmt::format("requirement: {}\n", yaml_text(f.explanation));
  y += fmt::format("source: {}\n", yaml_text(fmt::format("lockstep fuzz --target {} --seed {}: session {}, mutations {}; minimised from {} writes to {}",
                                                          o.target, o.seed, f.session, f.mutation, f.groups_before, p.groups.size())));
  y += fmt::format("timeout: {}ms\nsteps:\n  - S: any\n", o.reply_timeout.count());
  for (std::size_t i = 0; i < p.groups.size(); ++i) {
    const auto& g = p.groups[i];
    if (g.delay_ms) y += fmt::format("  - wait: {}ms\n", g.delay_ms);
    const std::size_t step = g.frag ? g.frag : g.bytes.size();
    for (std::size_t at = 0; at < g.bytes.size(); at += step) y += fmt::format("  - C|: {}\n", yaml_quote(std::string_view(g.bytes).substr(at, step)));
    // An anomaly shows at the last write: a reply must come (a hang or a close fails it).
    y += i + 1 == p.groups.size() && f.rule == "anomaly" ? "  - S: any\n" : fmt::format("  - replies: {}ms\n", o.reply_timeout.count());
  }
  return y;
}

// Drops writes, fragmentation and delays while the finding still shows (bounded).
Plan minimise(Plan p, const std::string& key, const CampaignOptions& o, std::size_t budget = 48) {
  auto still = [&](const Plan& c) { return budget > 0 && (--budget, execute(c, o).keys.count(key) > 0); };
  for (bool changed = true; changed && budget > 0;) {
    changed = false;
    for (std::size_t i = p.groups.size(); i-- > 0 && budget > 0;) {
      Plan c = p;
      c.groups.erase(c.groups.begin() + static_cast<long>(i));
      if (!c.groups.empty() && still(c)) {
        p = std::move(c);
        changed = true;
      }
    }
  }
  for (std::size_t i = 0; i < p.groups.size() && budget > 0; ++i) {
    if (!p.groups[i].frag && !p.groups[i].delay_ms) continue;
    Plan c = p;
    c.groups[i].frag = 0;
    c.groups[i].delay_ms = 0;
    if (still(c)) p = std::move(c);
  }
  return p;
}

std::string file_id(const std::string& key) {
  std::string s;
  for (const char c : key) s += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : '-';
  return s;
}
// The campaign's clock: its limits, and the figures reported about once a second.
struct Ticker {
  Clock::time_point start = Clock::now(), last = start;
  // Session `n` is past the limits (--sessions, --duration; both: whichever first).
  bool over(std::uint64_t n, std::uint64_t sessions, std::chrono::milliseconds duration) const {
    const auto elapsed = Clock::now() - start;
    return (sessions && n > sessions) || (!sessions && elapsed >= duration) || (sessions && duration.count() && elapsed >= duration);
  }
  void tick(CampaignResult& r, std::size_t states, const std::function<void(const CampaignProgress&)>& progress) {
    r.progress.states = states;
    r.progress.findings = r.findings.size();
    r.progress.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (progress && Clock::now() - last >= std::chrono::seconds(1)) {
      last = Clock::now();
      progress(r.progress);
    }
  }
};

void save(CampaignFinding& f, const std::string& out_dir, const std::string& id) {
  if (out_dir.empty()) return;
  f.reproducer = (std::filesystem::path(out_dir) / (id + ".yaml")).string();
  std::ofstream(f.reproducer) << f.yaml;
}
}  // namespace

CampaignResult fuzz_server(const CampaignOptions& o, const std::function<void(const CampaignProgress&)>& progress) {
  CampaignResult r;
  Ticker clock;
  std::set<std::string> states, seen;
  if (!o.out_dir.empty()) std::filesystem::create_directories(o.out_dir);
  for (std::uint64_t n = 1;; ++n) {
    if (clock.over(n, o.sessions, o.duration)) break;
    const Plan plan = plan_session(o.seed, n, o.placeholders);
    Outcome out = execute(plan, o);
    if (!out.connected) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      out = execute(plan, o);
      if (!out.connected) {
        if (n == 1) r.error = out.connect_error;
        else r.stopped = fmt::format("the server stopped accepting connections after session {}: {}", n - 1, out.connect_error);
        break;
      }
    }
    r.progress.sessions = n;
    states.insert(out.states.begin(), out.states.end());
    if (!out.anomaly.empty()) ++r.progress.anomalies;
    for (const auto& [key, what] : out.keys) {
      if (!seen.insert(key).second) continue;
      CampaignFinding f;
      f.key = key;
      f.rule = what.first;
      f.kind = what.first == "anomaly" ? out.anomaly : "finding";
      f.explanation = what.second;
      f.session = n;
      for (const auto& m : plan.mutations) f.mutation += (f.mutation.empty() ? "" : "+") + m;
      f.groups_before = plan.groups.size();
      // Anomalies cost a reply timeout per try: fewer tries for them.
      const Plan small = o.minimise ? minimise(plan, key, o, f.kind == "finding" ? 48 : 12) : plan;
      f.groups = small.groups.size();
      const std::string id = fmt::format("fuzz-{}-{}", o.seed, file_id(key));
      f.yaml = reproducer(small, f, o, id);
      save(f, o.out_dir, id);
      r.findings.push_back(std::move(f));
    }
    // After an anomaly: does the server still deliver?
    if (!out.anomaly.empty() && !healthy(o)) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      if (!healthy(o)) {
        CampaignFinding f;
        f.key = "anomaly:down";
        f.rule = "anomaly";
        f.kind = "down";
        f.explanation = fmt::format("after session {} ({}) the server no longer completes a clean delivery", n, out.anomaly);
        f.session = n;
        r.findings.push_back(std::move(f));
        r.stopped = f.explanation;
        break;
      }
    }
    clock.tick(r, states.size(), progress);
  }
  clock.tick(r, states.size(), nullptr);
  return r;
}

namespace {
// Random faults on a server's replies, from templates over every kind of position.
std::vector<std::string> random_faults(Rng& rng) {
  static const char* kTemplates[] = {
      "inject@eod#{k},text=350 lockers", "inject@rcpt#{n},text=250 2.1.5 extra", "drop@eod#{k}", "drop@rcpt#{n}",
      "dup@eod#{k}", "dup@mail", "split@lhlo,line={l}", "replace@rcpt#{n},code=452", "replace@rcpt#{n},code=550",
      "replace@eod#{k},code=451", "replace@eod#{k},code=552", "replace@data,code=451", "delay@eod#{k},ms={m}",
      "delay@lhlo,ms={m}", "fragment@lhlo,size=1", "fragment@eod#{k},size=3", "coalesce@any", "swap@rcpt#1",
      "close@eod#{k}", "close@data", "reset@rcpt#{n}", "shutdown@rcpt#{n}", "early@any#{e},text=250 2.0.0 ok",
      "inject@greeting,text=220 lockstep.test again", "replace@greeting,code=421", "inject@lhlo,text=250 again",
      "replace@lhlo,text=250 lockstep.test", "inject-after@eod#2,text=250 2.0.0 surplus"};
  std::vector<std::string> out;
  const std::size_t n = 1 + pick(rng, 2);
  for (std::size_t i = 0; i < n; ++i) {
    std::string f = kTemplates[pick(rng, std::size(kTemplates))];
    auto put = [&](const char* key, const std::string& v) {
      for (auto at = f.find(key); at != std::string::npos; at = f.find(key)) f.replace(at, std::strlen(key), v);
    };
    put("{k}", std::to_string(1 + pick(rng, 2)));
    put("{n}", std::to_string(1 + pick(rng, 2)));
    put("{l}", std::to_string(1 + pick(rng, 3)));
    put("{e}", std::to_string(2 + pick(rng, 4)));
    static const char* kMs[] = {"100", "800", "2500"};
    put("{m}", kMs[pick(rng, std::size(kMs))]);
    out.push_back(f);
  }
  return out;
}

Scenario with_faults(const Scenario& base, const std::vector<std::string>& specs) {
  Scenario sc = base;
  sc.rules.clear();  // the engine's findings are the oracle, not the base case's rules
  sc.faults.clear();
  for (const auto& t : specs) {
    std::string error;
    if (auto f = proxy::parse_fault(t, error)) sc.faults.push_back(std::move(*f));
    else throw std::logic_error(fmt::format("fault template '{}': {}", t, error));
  }
  return sc;
}

std::map<std::string, std::pair<std::string, std::string>> client_keys(const CaseResult& r, const std::vector<std::string>& specs) {
  std::map<std::string, std::pair<std::string, std::string>> keys;
  const std::string action = specs.empty() ? "none" : specs.front().substr(0, specs.front().find('@'));
  for (const auto& f : r.findings)
    if (f.severity == Severity::error && f.rule && f.cause == 0)
      keys.try_emplace(fmt::format("{}@{}", f.rule->id, action), std::string(f.rule->id), f.explanation);
  return keys;
}

// The base scenario's text with new metadata and the faults.
std::string client_reproducer(const std::string& base_text, const std::string& id, const CampaignFinding& f,
                              const std::vector<std::string>& specs, const ClientCampaignOptions& o) {
  std::string y = fmt::format("id: {}\nrole: server\ntitle: {}\nrules: [{}]\nrequirement: {}\nsource: {}\nfaults: [", id,
                              yaml_text(fmt::format("fuzz: {} after {}", f.rule, specs.empty() ? "no fault" : specs.front())), f.rule,
                              yaml_text(f.explanation),
                              yaml_text(fmt::format("lockstep fuzz --listen {} --seed {}: session {}, the steps of {}", o.listen, o.seed,
                                                    f.session, o.base)));
  for (std::size_t i = 0; i < specs.size(); ++i) y += (i ? ", " : "") + yaml_text(specs[i]);
  y += "]\n";
  std::istringstream in(base_text);
  bool steps = false;
  for (std::string line; std::getline(in, line);) {
    steps = steps || line.rfind("steps:", 0) == 0 || line.rfind("timeout:", 0) == 0;
    if (steps) y += line + "\n";
  }
  return y;
}
}  // namespace

CampaignResult fuzz_client(const ClientCampaignOptions& o, const std::function<void(const CampaignProgress&)>& progress) {
  CampaignResult r;
  Ticker clock;
  Listener listener(o.listen);
  const std::string base_text = read_scenario_file(o.base);
  const Scenario base = parse_scenario(base_text, o.base, o.placeholders);
  ServeOptions so;
  so.trigger = o.trigger;
  so.reset = o.reset;
  so.timeout = o.timeout;
  so.placeholders = o.placeholders;
  so.trigger_hook = o.trigger_hook;
  auto play = [&](const std::vector<std::string>& specs) { return run_server(with_faults(base, specs), listener, so); };
  std::set<std::string> seen, states;
  if (!o.out_dir.empty()) std::filesystem::create_directories(o.out_dir);
  for (std::uint64_t n = 1;; ++n) {
    if (clock.over(n, o.sessions, o.duration)) break;
    Rng rng(o.seed ^ (n * 0x9E3779B97F4A7C15ull));
    const auto specs = random_faults(rng);
    const CaseResult res = play(specs);
    if (res.verdict == Verdict::error) {
      if (n == 1) r.error = res.reason;
      else r.stopped = fmt::format("session {}: {}", n, res.reason);
      break;
    }
    r.progress.sessions = n;
    for (const auto& line : res.transcript)
      if (line.rfind("C: ", 0) == 0) states.insert(specs.front().substr(0, specs.front().find('@')) + "/" + verb_of(line.substr(3)));
    if (res.verdict == Verdict::fail && res.findings.empty()) ++r.progress.anomalies;  // the client did something else than the steps
    for (const auto& [key, what] : client_keys(res, specs)) {
      if (!seen.insert(key).second) continue;
      CampaignFinding f;
      f.key = key;
      f.rule = what.first;
      f.kind = "finding";
      f.explanation = what.second;
      f.session = n;
      for (const auto& m : specs) f.mutation += (f.mutation.empty() ? "" : " + ") + m;
      f.groups_before = specs.size();
      std::vector<std::string> small = specs;
      for (std::size_t i = small.size(); o.minimise && small.size() > 1 && i-- > 0;) {  // faults that do not matter
        auto fewer = small;
        fewer.erase(fewer.begin() + static_cast<long>(i));
        // The key names the first fault's action: the same rule after the faults left counts.
        const auto got = client_keys(play(fewer), fewer);
        if (got.count(f.rule + "@" + fewer.front().substr(0, fewer.front().find('@')))) small = std::move(fewer);
      }
      f.groups = small.size();
      const std::string id = fmt::format("fuzz-client-{}-{}", o.seed, file_id(key));
      f.yaml = client_reproducer(base_text, id, f, small, o);
      save(f, o.out_dir, id);
      r.findings.push_back(std::move(f));
    }
    clock.tick(r, states.size(), progress);
  }
  clock.tick(r, states.size(), nullptr);
  return r;
}

}  // namespace lockstep::scenarios
