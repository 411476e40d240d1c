// The jsonl importer and the checker behind it (see fuzz/importer.hpp).
#include "fuzz/importer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return lockstep::fuzz::import(data, size, [](auto reader) { return lockstep::make_jsonl_source(std::move(reader)); });
}
