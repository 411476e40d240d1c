// The whole session engine fed an interleaved two-direction script: each segment is one
// byte (bit 7: direction, server when set; bits 0-6: length) and that many bytes. A
// length of 0 closes that direction. Checks: no crash, and every finding's offset lies
// within the bytes already seen in its stream.
#include <cstdint>
#include <cstdlib>

#include "engine/session.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (int ordered = 0; ordered < 2; ++ordered) {
    lockstep::Session s(lockstep::SessionOptions{ordered == 1, false, true});
    std::uint64_t seen[2] = {0, 0};
    std::size_t i = 0;
    lockstep::Time t = 0;
    while (i < size) {
      const std::uint8_t h = data[i++];
      const auto dir = (h & 0x80) ? lockstep::Dir::server : lockstep::Dir::client;
      std::size_t n = h & 0x7f;
      if (n > size - i) n = size - i;
      if (n == 0) {
        s.close(dir, ++t);
      } else {
        s.feed(dir, std::string_view(reinterpret_cast<const char*>(data + i), n), ++t);
        seen[dir == lockstep::Dir::server ? 1 : 0] += n;
      }
      i += n;
      while (auto e = s.next()) {
        if (auto* f = std::get_if<lockstep::Finding>(&*e); f && f->located) {
          const std::uint64_t limit = seen[f->stream == lockstep::Dir::server ? 1 : 0];
          if (f->offset > limit) std::abort();  // a finding about bytes not seen yet
        }
      }
    }
    s.finish(++t);
    while (s.next()) {
    }
  }
  return 0;
}
