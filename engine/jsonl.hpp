#pragma once
// The lockstep recording format: JSON Lines, one event per line (documented in
// docs/recording.md). Bytes travel in JSON strings where every character U+0000-U+00FF
// stands for one octet, so any byte sequence survives the round trip.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/textindex.hpp"
#include "engine/types.hpp"

namespace lockstep {

inline constexpr int kRecordingVersion = 1;

// Appends `bytes` as the inside of a JSON string (no quotes): printable ASCII as is,
// '"' and '\\' escaped, CR LF TAB as \r \n \t, every other octet as \u00XX.
void json_escape_bytes(std::string& out, std::string_view bytes);
// The same into raw space of at least kMaxEscape octets per input octet, plus 16 (whole
// 16-byte blocks are stored). Returns the end of what it wrote.
inline constexpr std::size_t kMaxEscape = 6;
// With `ix`, also the TextIndex of `bytes` where the wide escaper takes them all (see
// detail::escape_wide); otherwise ix is left invalid.
char* json_escape_to(char* out, std::string_view bytes, TextIndex* ix = nullptr);

// Writers for each event kind; each returns one line with its LF.
std::string jsonl_meta(Time t, std::string_view tool_version);
std::string jsonl_open(Time t, std::string_view conn, std::string_view client, std::string_view server);
std::string jsonl_data(Time t, std::string_view conn, Dir dir, std::string_view bytes);
// The data event written straight into raw space of at least jsonl_data_bound() octets
// (the recorder's buffer); returns the end of the line.
std::size_t jsonl_data_bound(std::string_view conn, std::string_view bytes);
// `ix` as for json_escape_to.
char* jsonl_data_to(char* out, Time t, std::string_view conn, Dir dir, std::string_view bytes,
                    TextIndex* ix = nullptr);
std::string jsonl_close(Time t, std::string_view conn, Dir dir);
std::string jsonl_end(Time t, std::string_view conn);
std::string jsonl_fault(Time t, std::string_view conn, Dir dir, std::string_view what);
// A fault with the stream range of `dir` it wrote (length 0: where it removed bytes).
std::string jsonl_fault(Time t, std::string_view conn, Dir dir, std::string_view what, std::uint64_t offset,
                        std::uint64_t length);
std::string jsonl_timeout(Time t, std::string_view conn);

// One value of a flat JSON object; nested objects and arrays are skipped (kind other).
struct JsonValue {
  enum Kind : std::uint8_t { string, number, boolean, null, other } kind = null;
  std::string str;       // decoded string: each code point <= U+00FF as one octet
  std::int64_t num = 0;  // integer part of a number
  std::int64_t frac_us = 0;  // a fraction, in millionths (for "t": seconds.micro)
  bool has_frac = false;
  bool wide = false;     // the string held a code point above U+00FF (not a byte string)
};

struct JsonField {
  std::string key;
  JsonValue value;
};

// Parses one line holding a JSON object into fields[0..count). `fields` is reused from
// line to line (its strings keep their capacity). Returns false and sets `error` when
// the line is not a JSON object. With `data_index`, the string value of the key "data"
// (the last one) is indexed while it is decoded; the index is not valid without one.
bool parse_json_object(std::string_view line, std::vector<JsonField>& fields, std::size_t& count, std::string& error,
                       TextIndex* data_index = nullptr);
// The same for the object at the start of `input`, which goes on past the object's line:
// the object and what follows it up to its line's LF must be one line of `input`, and
// `used` is that line's length with its LF. False (with `error`) when they are not, or
// when parse_json_object would fail on that line.
bool parse_json_line(std::string_view input, std::vector<JsonField>& fields, std::size_t& count, std::string& error,
                     TextIndex* data_index, std::size_t& used);

// The recorder's own data event, with its keys in the order the recorder writes them:
//   {"t":MICROSECONDS,"conn":"ID","ev":"data","dir":"c"|"s","data":"..."} LF
// at the start of `input`, read without the general parser's bookkeeping of fields (most
// lines of a recording are such events). The octets of "data" are decoded into `bytes`
// (replacing what it held) and indexed into `ix`, exactly as parse_json_line does.
// False when the line is written any other way (spacing, key order, a fraction in "t",
// an escape or a control octet in "conn", another event, a bad string...): then
// parse_json_line must read it, and says what is wrong with it.
struct RecordedData {
  std::int64_t time = 0;
  std::string_view conn;  // points into `input`
  Dir dir = Dir::client;
  std::size_t used = 0;   // the line's length with its LF
};
bool parse_recorded_data(std::string_view input, RecordedData& out, std::string& bytes, TextIndex* ix);

}  // namespace lockstep
