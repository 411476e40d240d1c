#include "scenarios/convert.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <memory>

#include "engine/line.hpp"
#include "engine/reply.hpp"

namespace lockstep::scenarios {

namespace {
// A YAML double-quoted scalar (JSON's escapes are YAML's).
std::string yaml_quoted(const std::string& s) { return boost::json::serialize(boost::json::string(s)); }

// The scenario escapes of C|: \r \n \t \\ and \xHH for other control or 8-bit octets.
std::string escaped(std::string_view b) {
  std::string o;
  for (unsigned char c : b) {
    if (c == '\r') o += "\\r";
    else if (c == '\n') o += "\\n";
    else if (c == '\t') o += "\\t";
    else if (c == '\\') o += "\\\\";
    else if (c < 0x20 || c >= 0x7f) o += fmt::format("\\x{:02x}", c);
    else o += static_cast<char>(c);
  }
  return o;
}

bool plain_command(std::string_view line) {
  if (line.size() < 2 || line.substr(line.size() - 2) != "\r\n") return false;
  for (std::size_t i = 0; i + 2 < line.size(); ++i) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c < 0x20 || c >= 0x7f || c == '\r' || c == '\n') return false;
  }
  return true;
}

std::string upper_verb(std::string_view line) {
  std::string v(line.substr(0, std::min<std::size_t>(line.find_first_of(" \r\n"), line.size())));
  for (char& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return v;
}

struct Builder {
  std::string name, conn;
  bool content_visible = true;
  bool mid = false;
  std::vector<std::string> steps;
  std::size_t replies = 0;
  // Client side.
  std::string cpart;          // an unfinished line
  bool data_pending = false;  // DATA sent, its reply not seen yet
  bool in_content = false;
  std::uint64_t bdat_left = 0;
  // Server side.
  LineSplitter splitter;
  ReplyAssembler assembler;

  void client(std::string_view bytes) {
    std::vector<std::string> commands;
    bool raw = false;
    std::string all;
    std::string data(cpart);
    data.append(bytes);
    cpart.clear();
    std::size_t at = 0;
    while (at < data.size()) {
      if (bdat_left > 0) {  // BDAT chunk octets
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(bdat_left, data.size() - at));
        all.append(data, at, n);
        raw = true;
        bdat_left -= n;
        at += n;
        continue;
      }
      const auto lf = data.find('\n', at);
      if (lf == std::string::npos) {
        cpart = data.substr(at);
        break;
      }
      const std::string line = data.substr(at, lf + 1 - at);
      at = lf + 1;
      all += line;
      if (in_content) {
        raw = true;
        if (line == ".\r\n") in_content = false;
        continue;
      }
      if (!content_visible && (line == ".\r\n" || line == ".\n")) {
        // The log has no content: a stand-in, and the end of data.
        flush_commands(commands, raw, all, line);
        steps.push_back("  - data: \"Subject: replayed by lockstep\\n\\n(the content was not in the recording)\"");
        all.clear();
        continue;
      }
      if (!plain_command(line)) raw = true;
      commands.push_back(line.substr(0, line.size() - 2));
      const std::string verb = upper_verb(line);
      if (verb == "DATA") data_pending = true;
      if (verb == "BDAT") {
        const auto sp = line.find(' ');
        if (sp != std::string::npos) bdat_left = std::strtoull(line.c_str() + sp + 1, nullptr, 10);
      }
    }
    flush_commands(commands, raw, all, {});
  }
  void flush_commands(std::vector<std::string>& commands, bool& raw, std::string& all, std::string_view dot) {
    std::string bytes = all;
    if (!dot.empty() && bytes.size() >= dot.size()) bytes.resize(bytes.size() - dot.size());
    if (bytes.empty()) {
      commands.clear();
      return;
    }
    if (raw) {
      steps.push_back("  - C|: " + yaml_quoted(escaped(bytes)));
    } else if (commands.size() == 1) {
      steps.push_back("  - C: " + yaml_quoted(commands[0]));
    } else {
      std::string s = "  - C:";
      for (const auto& c : commands) s += "\n      - " + yaml_quoted(c);
      steps.push_back(s);
    }
    commands.clear();
    raw = false;
    all.clear();
  }
  void server(std::string_view bytes) {
    std::vector<int> codes;
    Line line;
    while (splitter.next(bytes, line)) {
      if (!assembler.add(line, 0)) continue;
      const Reply r = assembler.take();
      codes.push_back(r.code);
      if (data_pending) {
        data_pending = false;
        if (r.code == 354) in_content = content_visible;
      }
    }
    if (codes.empty()) return;
    replies += codes.size();
    auto code = [](int c) { return c < 0 ? std::string("any") : fmt::format("{:03}", c); };
    if (codes.size() == 1) {
      steps.push_back("  - S: " + yaml_quoted(code(codes[0])));
    } else {
      std::string s = "  - S:";
      for (int c : codes) s += "\n      - " + yaml_quoted(code(c));
      steps.push_back(s);
    }
  }
  std::string yaml() const {
    std::string base = std::filesystem::path(name).filename().string();
    std::string id = fmt::format("replay-{}-{}", base, conn);
    for (char& c : id)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '-';
    std::string s = fmt::format("id: {}\ntitle: {}\nrole: client\nsource: {}\n", id,
                                yaml_quoted(fmt::format("connection {} of {}, replayed", conn, base)),
                                yaml_quoted(fmt::format("recorded in {}{}", name, mid ? " (the recording joined the connection mid-way)" : "")));
    s += "steps:\n";
    for (const auto& st : steps) s += st + "\n";
    return s;
  }
};
}  // namespace

std::vector<ConvertedSession> recording_to_scenarios(Source& src, const std::string& name, const std::string& only_conn) {
  const SourceInfo info = src.info();
  std::map<std::string, std::unique_ptr<Builder>> open;
  std::vector<ConvertedSession> out;
  auto done = [&](const std::string& conn) {
    auto it = open.find(conn);
    if (it == open.end()) return;
    Builder& b = *it->second;
    if (!b.steps.empty()) out.push_back({b.conn, b.yaml(), b.replies, b.mid});
    open.erase(it);
  };
  SourceEvent ev;
  while (src.next(ev)) {
    if (!only_conn.empty() && ev.conn != only_conn) continue;
    auto& slot = open[ev.conn];
    if (!slot) {
      slot = std::make_unique<Builder>();
      slot->name = name;
      slot->conn = ev.conn;
      slot->content_visible = info.content_visible;
      slot->mid = info.mid_session;
    }
    switch (ev.kind) {
      case SourceEvent::Kind::open:
        if (ev.bytes == "mid-session") slot->mid = true;
        break;
      case SourceEvent::Kind::data:
        if (ev.dir == Dir::client) slot->client(ev.bytes);
        else slot->server(ev.bytes);
        break;
      case SourceEvent::Kind::close:
        if (ev.dir == Dir::server) slot->steps.push_back("  - S: closed");
        break;
      case SourceEvent::Kind::end:
        done(ev.conn);
        break;
      default:
        break;
    }
  }
  while (!open.empty()) done(open.begin()->first);
  return out;
}

}  // namespace lockstep::scenarios
