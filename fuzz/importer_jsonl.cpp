// The jsonl importer and the checker behind it (see fuzz/importer.hpp). Each line is
// also parsed with the wide (AVX-512) decoder and the byte-wise one, which must agree on
// the octets, the error and the text index; and the whole input is escaped with the wide
// (AVX-512) escaper and the byte-wise one, which must write the same text. A line the
// parser takes whole from the rest of the input (a mapped file) must read as the line,
// and a line the recorder's data events' own path takes must read as the general parser
// reads it.
#include <string_view>

#include "engine/jsonl.hpp"
#include "engine/jsonl_fast.hpp"
#include "fuzz/importer.hpp"

namespace {
struct Parsed {
  bool ok = false;
  std::string error, data;
  bool above_ff = false;
  bool text = false;
  std::vector<std::uint32_t> lf;
  std::size_t first_high = 0;
  bool operator==(const Parsed&) const = default;
};

// The line alone, or (with `used`) the start of `line` as the rest of a mapped file.
Parsed parse(std::string_view line, bool wide, std::size_t* used = nullptr) {
  const bool was = lockstep::detail::wide_decode_enabled();
  lockstep::detail::enable_wide_decode(wide);
  std::vector<lockstep::JsonField> fields;
  std::size_t n = 0;
  lockstep::TextIndex ix;
  Parsed r;
  r.ok = used ? lockstep::parse_json_line(line, fields, n, r.error, &ix, *used)
              : lockstep::parse_json_object(line, fields, n, r.error, &ix);
  lockstep::detail::enable_wide_decode(was);
  for (std::size_t i = 0; i < n; ++i)
    if (fields[i].key == "data") {
      r.data = fields[i].value.str;
      r.above_ff = fields[i].value.wide;
    }
  r.text = ix.valid && ix.text;  // the line ends mean something only then
  if (r.text) r.lf = ix.lf.to_vector();
  r.first_high = ix.first_high;
  return r;
}

std::string escape(std::string_view bytes, bool wide) {
  const bool was = lockstep::detail::wide_escape_enabled();
  lockstep::detail::enable_wide_escape(wide);
  std::string out;
  lockstep::json_escape_bytes(out, bytes);
  lockstep::detail::enable_wide_escape(was);
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool told = [] {
    lockstep::detail::enable_wide_decode(true);
    if (!lockstep::detail::wide_decode_enabled())
      std::fprintf(stderr, "no AVX-512 VBMI2 here: the byte-wise decoder is compared with itself\n");
    return true;
  }();
  (void)told;
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  if (escape(all, true) != escape(all, false)) {
    std::fprintf(stderr, "the wide and byte-wise escapers differ on %zu octets\n", all.size());
    std::abort();
  }
  for (std::size_t at = 0; at < all.size();) {
    std::size_t end = all.find('\n', at);
    if (end == std::string_view::npos) end = all.size();
    const std::string_view line = all.substr(at, end - at);
    const Parsed alone = parse(line, true);
    if (!(alone == parse(line, false))) {
      std::fprintf(stderr, "the wide and byte-wise decoders differ on a line of %zu octets\n", line.size());
      std::abort();
    }
    // Parsed in the rest of the input, as from a mapped file: when the parser takes a
    // line whole, it is this line, and it reads as the line alone.
    std::size_t used = 0;
    if (Parsed in_rest = parse(all.substr(at), true, &used); in_rest.ok) {
      in_rest.error = alone.error;
      if (used != line.size() + 1 || !(in_rest == alone)) {
        std::fprintf(stderr, "a line of %zu octets parsed in the rest of the input reads otherwise\n", line.size());
        std::abort();
      }
    }
    // The recorder's data events have a path of their own: what it takes, the general
    // parser reads the same.
    lockstep::RecordedData d;
    std::string bytes;
    lockstep::TextIndex ix;
    if (lockstep::parse_recorded_data(all.substr(at), d, bytes, &ix)) {
      const Parsed general = parse(all.substr(at), true, &used);
      if (!general.ok || used != d.used || general.data != bytes || general.first_high != ix.first_high ||
          (general.text ? general.lf != ix.lf.to_vector() : ix.valid && ix.text)) {
        std::fprintf(stderr, "a recorded data event of %zu octets reads otherwise on its own path\n", d.used);
        std::abort();
      }
    }
    at = end + 1;
  }
  return lockstep::fuzz::import(data, size, [](auto reader) { return lockstep::make_jsonl_source(std::move(reader)); });
}
