// The scenario parser, both roles, with the faults: and placeholders. Invariants: a
// file either parses or gives one error naming the file ("fuzz.yaml:"), never a crash;
// memory and stack stay bounded whatever the file says (repeats, fills, regexes); a
// parsed scenario has an id and steps, and its patterns can be matched.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "scenarios/scenario.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > (64u << 10)) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto sc = lockstep::scenarios::parse_scenario(text, "fuzz.yaml", lockstep::scenarios::Placeholders{});
    if (sc.id.empty() || sc.steps.empty()) std::abort();
    for (const auto& s : sc.steps) {
      (void)s.expect.matches(250, "2.0.0 ok");
      (void)s.command.matches("RCPT TO:<alice@lab.test>");
    }
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).rfind("fuzz.yaml", 0) != 0) std::abort();  // every error names the file
  }
  return 0;
}
