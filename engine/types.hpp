#pragma once
// Basic vocabulary shared by every part of the engine.
#include <cstdint>
#include <string_view>

namespace lockstep {

// Which way bytes travel. The client sends commands and content, the server replies.
enum class Dir : std::uint8_t { client, server };

// Microseconds since the Unix epoch; 0 when the source had no clock.
using Time = std::int64_t;

enum class Severity : std::uint8_t { note, warning, error };
enum class RuleSide : std::uint8_t { client, server, both };

// True when `s` holds an octet from 0x80 up: one OR over all octets, no branch per octet.
inline bool has_high_octet(std::string_view s) {
  unsigned char any = 0;
  for (const char c : s) any |= static_cast<unsigned char>(c);
  return (any & 0x80) != 0;
}

constexpr std::string_view to_string(Dir d) { return d == Dir::client ? "client" : "server"; }
constexpr std::string_view to_string(Severity s) {
  switch (s) {
    case Severity::note: return "note";
    case Severity::warning: return "warning";
    case Severity::error: return "error";
  }
  return "?";
}
constexpr std::string_view to_string(RuleSide s) {
  switch (s) {
    case RuleSide::client: return "client";
    case RuleSide::server: return "server";
    case RuleSide::both: return "both";
  }
  return "?";
}

}  // namespace lockstep
