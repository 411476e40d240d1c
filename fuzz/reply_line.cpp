// One reply line and its enhanced status code, parse only: the raw speed of the reply
// parser (reply_parser checks assembly and split invariants on top). Invariants: the
// code is three digits or -1, and the text lies inside the line.
#include <cstdint>
#include <cstdlib>

#include "engine/reply.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const lockstep::ReplyLine l = lockstep::parse_reply_line(in);
  if (l.code < -1 || l.code > 999) std::abort();
  if (!l.text.empty() && (l.text.data() < in.data() || l.text.data() + l.text.size() > in.data() + in.size())) std::abort();
  if (const auto e = lockstep::parse_enhanced(l.text); e && (e->cls < 0 || e->subject < 0 || e->detail < 0)) std::abort();
  return 0;
}
