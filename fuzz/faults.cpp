// The fault syntax and the fault stages. Input: a fault spec on the first line, then
// chunks of traffic, each a header octet (bit 0: direction, bits 1-7: length) and its
// bytes. The parser must not crash; a stage must hold back at most its bound, and the
// faults that change only timing or segmentation must pass every byte on unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "proxy/fault.hpp"
#include "proxy/fault_stage.hpp"

using namespace lockstep;
using namespace lockstep::proxy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::size_t nl = in.find('\n');
  if (nl == std::string_view::npos || nl > 300) return 0;
  std::string err;
  auto f = parse_fault(in.substr(0, nl), err);
  if (!f) {
    if (err.empty()) std::abort();  // a refusal always says why
    return 0;
  }
  (void)describe(*f);
  const bool same_bytes = f->action == FaultAction::delay || f->action == FaultAction::fragment ||
                          f->action == FaultAction::coalesce;
  FaultStage st({*f}, 1);
  std::string sent[2], got[2];
  std::vector<Step> out;
  bool ended = false;
  auto take = [&] {
    for (const auto& s : out) {
      if (s.kind == Step::Kind::write) got[s.stream == Dir::client ? 0 : 1] += s.bytes;
      if (s.kind == Step::Kind::close || s.kind == Step::Kind::reset) ended = true;
    }
    out.clear();
  };
  for (std::size_t i = nl + 1; i < in.size();) {
    const auto h = static_cast<std::uint8_t>(in[i++]);
    const Dir d = (h & 1) ? Dir::server : Dir::client;
    const std::string_view chunk = in.substr(i, h >> 1);
    i += chunk.size();
    sent[d == Dir::client ? 0 : 1] += chunk;
    st.from(d, chunk, 0, out);
    take();
    if (st.held(Dir::server) > FaultStage::kMaxHeld + 128 || st.held(Dir::client) > 64 * 1024 + 256) std::abort();
  }
  st.eof(Dir::server, out);
  st.eof(Dir::client, out);
  take();
  if (same_bytes && !ended && (got[0] != sent[0] || got[1] != sent[1])) {
    if (std::getenv("LOCKSTEP_FUZZ_VERBOSE"))  // what differs, for the one who debugs a crash
      for (int k = 0; k < 2; ++k)
        if (got[k] != sent[k]) std::fprintf(stderr, "%s stream: sent %zu octets, passed on %zu\n%s\n--\n%s\n", k ? "server" : "client",
                                            sent[k].size(), got[k].size(), sent[k].c_str(), got[k].c_str());
    std::abort();
  }
  return 0;
}
