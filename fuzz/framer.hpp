#pragma once
// Shared by the framer targets: a stream cut into pieces in a way the input chooses,
// so "fed whole" and "fed in pieces" can be compared.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <vector>

namespace lockstep::fuzz {

// The pieces of `in`: piece sizes come from `cuts` (each byte 1..64; 0 means 1).
inline std::vector<std::string_view> pieces(std::string_view in, std::string_view cuts) {
  std::vector<std::string_view> out;
  std::size_t i = 0, k = 0;
  while (i < in.size()) {
    std::size_t n = cuts.empty() ? 1 : (static_cast<unsigned char>(cuts[k++ % cuts.size()]) % 64) + 1;
    if (n > in.size() - i) n = in.size() - i;
    out.push_back(in.substr(i, n));
    i += n;
  }
  return out;
}

// The framer targets' input: one byte (mod 16: how many cut sizes follow), the cut
// sizes, then the stream. Runs `run` on the stream whole, byte by byte and in the chosen
// pieces, aborts unless all three agree, and returns the whole run's result (nullopt
// when the input is too short).
template <class Run>
auto same_in_pieces(const std::uint8_t* data, std::size_t size, Run run, std::string_view& in)
    -> std::optional<decltype(run(std::vector<std::string_view>{}))> {
  if (size < 1) return std::nullopt;
  const std::size_t ncuts = data[0] % 16;
  if (size < 1 + ncuts) return std::nullopt;
  const std::string_view cuts(reinterpret_cast<const char*>(data + 1), ncuts);
  in = std::string_view(reinterpret_cast<const char*>(data + 1 + ncuts), size - 1 - ncuts);
  auto whole = run(std::vector<std::string_view>{in});
  if (!(run(pieces(in, {})) == whole)) std::abort();    // byte by byte
  if (!(run(pieces(in, cuts)) == whole)) std::abort();  // the chosen pieces
  return whole;
}

}  // namespace lockstep::fuzz
