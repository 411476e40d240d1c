// The three importers (first byte picks one) and the checker behind them, fed from
// memory: no crash, no hang, and every session ends.
#include <cstdint>
#include <cstdio>
#include <memory>

#include "engine/checker.hpp"
#include "engine/source.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const char* formats[] = {"jsonl", "postfix", "socat"};
  const char* fmt = formats[data[0] % 3];
  std::FILE* f = fmemopen(const_cast<std::uint8_t*>(data + 1), size - 1, "rb");
  if (!f) return 0;
  auto reader = std::make_unique<lockstep::LineReader>(f, 1 << 16);
  std::unique_ptr<lockstep::Source> src;
  if (fmt[0] == 'j') src = lockstep::make_jsonl_source(std::move(reader));
  else if (fmt[0] == 'p') src = lockstep::make_postfix_source(std::move(reader));
  else src = lockstep::make_socat_source(std::move(reader));
  lockstep::Checker c(src->info(), "fuzz", [](lockstep::SessionResult&&) {});
  lockstep::SourceEvent ev;
  while (src->next(ev)) c.on(ev);
  c.finish();
  std::fclose(f);
  return 0;
}
