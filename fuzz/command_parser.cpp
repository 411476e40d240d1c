// Command lines: parsing never fails, and the label is printable.
#include <cstdint>
#include <cstdlib>

#include "engine/command.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const lockstep::Command c = lockstep::parse_command(in);
  for (char ch : c.label(200))
    if (static_cast<unsigned char>(ch) < 0x20) std::abort();
  (void)c.param("SIZE");
  return 0;
}
