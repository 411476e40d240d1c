// One command line, parse only: the raw speed of the command parser (command_parser
// checks round trips on top). Invariants: parsing never fails, the label is printable.
#include <cstdint>
#include <cstdlib>

#include "engine/command.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const lockstep::Command c = lockstep::parse_command(std::string_view(reinterpret_cast<const char*>(data), size));
  for (const char ch : c.label(80))
    if (static_cast<unsigned char>(ch) < 0x20) std::abort();
  return 0;
}
