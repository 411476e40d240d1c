// Command lines. Invariants: parsing never fails and the label is printable; the parse
// is a function of the line (parsing the parsed line again gives the same command);
// the verb is case-insensitive (the line with its verb's case flipped gives the same
// verb, path and parameters).
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "engine/command.hpp"

namespace {
bool same(const lockstep::Command& a, const lockstep::Command& b) {
  if (a.verb != b.verb || a.path != b.path || a.params.size() != b.params.size() || a.bdat_size != b.bdat_size ||
      a.bdat_last != b.bdat_last)
    return false;
  for (std::size_t i = 0; i < a.params.size(); ++i)
    if (!lockstep::iequals(a.params[i].key, b.params[i].key) || a.params[i].value != b.params[i].value) return false;
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const lockstep::Command c = lockstep::parse_command(in);
  for (char ch : c.label(200))
    if (static_cast<unsigned char>(ch) < 0x20) std::abort();

  // Idempotent on its own line (the engine gives it single lines, without CR or LF).
  // Lines over 1024 octets are kept capped, so only shorter ones can round-trip.
  if (in.find_first_of("\r\n") == std::string_view::npos && c.line == in && !same(lockstep::parse_command(c.line), c)) std::abort();

  // The verb's case does not matter.
  std::string flipped(in);
  const std::size_t verb_end = std::min(flipped.find(' '), flipped.size());
  for (std::size_t i = 0; i < verb_end; ++i) {
    const unsigned char ch = static_cast<unsigned char>(flipped[i]);
    if (std::isalpha(ch)) flipped[i] = static_cast<char>(std::islower(ch) ? std::toupper(ch) : std::tolower(ch));
  }
  if (!same(lockstep::parse_command(flipped), c)) std::abort();
  return 0;
}
