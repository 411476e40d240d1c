// Reply lines and their assembly into replies, whole and byte by byte: the same replies.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "engine/line.hpp"
#include "engine/reply.hpp"

namespace {
std::vector<lockstep::Reply> run(std::string_view in, std::size_t step) {
  lockstep::LineSplitter s;
  lockstep::ReplyAssembler a;
  std::vector<lockstep::Reply> out;
  for (std::size_t i = 0; i < in.size(); i += step) {
    std::string_view part = in.substr(i, step);
    lockstep::Line l;
    while (s.next(part, l))
      if (a.add(l, 0)) out.push_back(a.take());
  }
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto whole = run(in, in.size() + 1);
  const auto bytes = run(in, 1);
  if (whole.size() != bytes.size()) std::abort();
  for (std::size_t i = 0; i < whole.size(); ++i)
    if (whole[i].lines != bytes[i].lines || whole[i].code != bytes[i].code) std::abort();
  for (const auto& r : whole) (void)lockstep::parse_enhanced(r.first_text());
  return 0;
}
