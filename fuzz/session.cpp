// The whole session engine fed an interleaved two-direction script: each segment is one
// byte (bit 7: direction, server when set; bits 0-6: length) and that many bytes. A
// length of 0 closes that direction. Invariants, ordered and unordered:
//   - no finding refers to bytes not yet seen in its stream;
//   - feeding each segment one byte at a time gives the same findings (rule, side,
//     stream, offset, length) and the same replies and commands as feeding it whole;
//   - memory stays bounded (libFuzzer's -rss_limit_mb; the engine caps what it keeps).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <tuple>
#include <vector>

#include "engine/session.hpp"

namespace {
using Key = std::tuple<std::string, int, int, std::uint64_t, std::uint64_t, bool>;

std::vector<Key> run(const std::uint8_t* data, std::size_t size, bool ordered, bool bytewise) {
  lockstep::Session s(lockstep::SessionOptions{ordered, false, true});
  std::vector<Key> out;
  std::uint64_t seen[2] = {0, 0};
  std::size_t i = 0;
  lockstep::Time t = 0;
  auto drain = [&] {
    while (auto e = s.next()) {
      if (auto* f = std::get_if<lockstep::Finding>(&*e)) {
        if (f->located && f->offset > seen[f->stream == lockstep::Dir::server ? 1 : 0]) std::abort();  // bytes not seen yet
        out.emplace_back(f->rule ? std::string(f->rule->id) : "?", static_cast<int>(f->side), static_cast<int>(f->stream),
                         f->offset, f->length, f->located);
      } else if (auto* r = std::get_if<lockstep::ReplyEvent>(&*e)) {
        out.emplace_back("reply", r->reply->code, 1, r->reply->offset, r->reply->end, r->reply->malformed);
      } else if (auto* c = std::get_if<lockstep::CommandEvent>(&*e)) {
        out.emplace_back("command", static_cast<int>(c->command->verb), 0, c->command->offset, c->command->length, false);
      }
    }
  };
  while (i < size) {
    const std::uint8_t h = data[i++];
    const auto dir = (h & 0x80) ? lockstep::Dir::server : lockstep::Dir::client;
    std::size_t n = h & 0x7f;
    if (n > size - i) n = size - i;
    ++t;
    if (n == 0) {
      s.close(dir, t);
    } else {
      const std::string_view seg(reinterpret_cast<const char*>(data + i), n);
      for (std::size_t k = 0; k < n; k += bytewise ? 1 : n) {
        const std::string_view part = seg.substr(k, bytewise ? 1 : n);
        seen[dir == lockstep::Dir::server ? 1 : 0] += part.size();
        s.feed(dir, part, t);
      }
    }
    i += n;
    drain();
  }
  s.finish(++t);
  drain();
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (const bool ordered : {false, true}) {
    const auto whole = run(data, size, ordered, false), bytewise = run(data, size, ordered, true);
    if (whole == bytewise) continue;
    if (std::getenv("LOCKSTEP_FUZZ_VERBOSE")) {  // what differs, for the one who debugs a crash
      for (const auto* v : {&whole, &bytewise}) {
        std::fprintf(stderr, v == &whole ? "whole:\n" : "byte by byte:\n");
        for (const auto& [what, a, b, off, len, located] : *v) std::fprintf(stderr, "  %s %d %d %llu+%llu %d\n", what.c_str(), a, b,
                                                                         static_cast<unsigned long long>(off), static_cast<unsigned long long>(len), located);
      }
    }
    std::abort();
  }
  return 0;
}
