// The client-direction framer: command lines (LineSplitter, 512-octet cap as for the
// engine) and, after the first line, message content (ContentScanner) up to the end of
// data, then lines again. Input: one byte saying how to cut, the cut sizes, then the
// stream. Invariants: fed whole, byte by byte and in the chosen pieces, the same lines
// (text, offset, length, line end, bare CR, truncation) and the same content reports;
// each line's offset is the end of the one before; a line that is not truncated is
// exactly its bytes in the stream (the round trip); nothing is lost: the octets of the
// lines, the content and what is pending add up to the input.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/content.hpp"
#include "engine/line.hpp"
#include "fuzz/framer.hpp"

namespace {
struct Out {
  struct L {
    std::string text;
    std::uint64_t offset, length;
    lockstep::LineEnd end;
    bool truncated, bare_cr;
    bool operator==(const L&) const = default;
  };
  std::vector<L> lines;
  std::vector<std::uint64_t> content;  // per message: wire octets, size, lines, smuggles, bare LF
  std::uint64_t pending = 0;
  bool operator==(const Out&) const = default;
};

Out run(const std::vector<std::string_view>& parts) {
  Out out;
  lockstep::LineSplitter split(512);
  lockstep::ContentScanner scan;
  bool in_content = false;
  std::uint64_t offset = 0;
  for (std::string_view part : parts) {
    while (!part.empty()) {
      if (in_content) {
        const std::size_t used = scan.feed(part);
        part.remove_prefix(used);
        offset += used;
        if (scan.report().complete) {
          const auto& r = scan.report();
          out.content.insert(out.content.end(), {r.wire_octets, r.size, r.lines, r.smuggling.size(), r.bare_lf.count});
          in_content = false;
          split.set_offset(offset);
        }
        continue;
      }
      lockstep::Line l;
      const std::size_t before = part.size();
      const bool got = split.next(part, l);
      offset += before - part.size();
      if (!got) break;
      out.lines.push_back({std::string(l.text), l.offset, l.length, l.end, l.truncated, l.bare_cr});
      // DATA starts content (as the engine does after a 354).
      if (l.text.size() >= 4 && (l.text.substr(0, 4) == "DATA" || l.text.substr(0, 4) == "data")) {
        in_content = true;
        scan.start(offset);
      }
    }
  }
  out.pending = in_content ? scan.consumed() : split.pending();
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in;
  const auto result = lockstep::fuzz::same_in_pieces(data, size, run, in);
  if (!result) return 0;
  const Out& whole = *result;

  std::uint64_t next = whole.lines.empty() ? 0 : whole.lines.front().offset;
  std::uint64_t total = 0;
  std::size_t c = 0;
  for (const auto& l : whole.lines) {
    if (l.offset < next) std::abort();  // lines never overlap (content may lie between)
    next = l.offset + l.length;
    total += l.length;
    if (!l.truncated) {  // the round trip: text and line end are the bytes at that offset
      const std::string back = l.text + (l.end == lockstep::LineEnd::crlf ? "\r\n" : "\n");
      if (l.offset + l.length > in.size() || in.substr(l.offset, l.length) != back) std::abort();
    }
  }
  for (; c < whole.content.size(); c += 5) total += whole.content[c];
  if (total + whole.pending != in.size()) std::abort();  // nothing lost, nothing counted twice
  return 0;
}
