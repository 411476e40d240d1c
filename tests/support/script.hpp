#pragma once
// Test helpers: write a session as a transcript and run it through the engine.
//
//   auto r = run_script({"S: 220 lmtp.test ready", "C: LHLO c.test", ...});
//
// "C: text" is client->server bytes, "S: text" server->client; CRLF is appended unless
// the text ends in "<nocrlf>". Escapes inside text: \r \n \t \\ \xHH. "C|" and "S|"
// feed the text raw (no CRLF added). "CLOSE C" / "CLOSE S" close a side; "TIMEOUT" is
// the recorder giving up waiting (Session::timeout). Each step is
// fed as one chunk, in order (an ordered source, as a proxy sees it).
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/session.hpp"

namespace lockstep::test {

struct Step {
  enum Kind { data, close, timeout } kind = data;
  Dir dir = Dir::client;
  std::string bytes;
};

std::string unescape(std::string_view s);
std::vector<Step> parse_script(const std::vector<std::string>& lines);

struct RunResult {
  std::vector<Finding> findings;
  std::vector<Event> events;
  std::vector<std::string> narrative;
  State final_state = State::unknown;
  bool desynced = false;
  bool has(std::string_view rule) const;
  std::size_t count(std::string_view rule) const;
  const Finding* first(std::string_view rule) const;
  std::string dump() const;  // every finding, one per line, for failure messages
};

// Runs the steps through a fresh Session; `finish` ends it (capture_ended=false)
// unless `capture_ended` is set.
RunResult run_steps(const std::vector<Step>& steps, SessionOptions opts = {}, bool capture_ended = false,
                    const std::pair<std::string, std::string>& peers = {});
RunResult run_script(const std::vector<std::string>& lines, SessionOptions opts = {}, bool capture_ended = false,
                     const std::pair<std::string, std::string>& peers = {});

// A greeting and an LHLO exchange advertising the usual LMTP extensions; prepend it to
// scripts that start in the ready state.
std::vector<std::string> hello(std::vector<std::string> rest,
                               std::string caps = "PIPELINING,ENHANCEDSTATUSCODES,8BITMIME,CHUNKING,SIZE 100000");

// Calls `f` with `data` cut into two pieces at every position (and once whole).
void for_each_split(std::string_view data, const std::function<void(std::vector<std::string_view>)>& f);
// `data` as single octets.
std::vector<std::string_view> bytewise(std::string_view data);

}  // namespace lockstep::test
