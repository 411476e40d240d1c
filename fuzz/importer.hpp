#pragma once
// Shared by the importer targets: one importer fed from memory, with the checker behind
// it. Invariants: no crash, no hang (the events are bounded by the input: no loop), and
// memory bounded by the reader's line cap.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "engine/checker.hpp"
#include "engine/source.hpp"

namespace lockstep::fuzz {

template <class Make>
int import(const std::uint8_t* data, std::size_t size, Make make) {
  if (size == 0) return 0;
  std::FILE* f = fmemopen(const_cast<std::uint8_t*>(data), size, "rb");
  if (!f) return 0;
  // A small line cap, so the fuzzer reaches "line too long" without megabytes of input.
  std::unique_ptr<Source> src = make(std::make_unique<LineReader>(f, 1 << 12));
  // A second checker gets the same events without the reader's text index: the index
  // only spares work, so both must report the same findings.
  std::vector<std::string> with, without;
  auto collect = [](std::vector<std::string>& out) {
    return [&out](SessionResult&& r) {
      for (const auto& x : r.findings)
        out.push_back(r.conn + ' ' + std::string(x.rule->id) + ' ' + std::to_string(x.offset) + ' ' + x.explanation);
    };
  };
  Checker c(src->info(), "fuzz", collect(with));
  Checker plain(src->info(), "fuzz", collect(without));
  SourceEvent ev;
  std::size_t events = 0;
  while (src->next(ev)) {
    c.on(ev);
    ev.index.valid = false;
    plain.on(ev);
    if (++events > size * 4 + 64) std::abort();  // more events than the input can hold: a loop
  }
  c.finish();
  plain.finish();
  std::fclose(f);
  if (with != without) {
    std::fprintf(stderr, "findings differ with and without the text index (%zu against %zu)\n", with.size(),
                 without.size());
    std::abort();
  }
  return 0;
}

}  // namespace lockstep::fuzz
