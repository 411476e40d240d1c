#include "engine/jsonl.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cstring>

#include "engine/jsonl_fast.hpp"
#include "engine/simd.hpp"

namespace lockstep {

namespace {
constexpr char kHex[] = "0123456789abcdef";

std::string head(Time t, std::string_view conn, std::string_view ev) {
  std::string s = fmt::format("{{\"t\":{},\"conn\":\"", t);
  json_escape_bytes(s, conn);
  s += "\",\"ev\":\"";
  s += ev;
  s += '"';
  return s;
}
}  // namespace

namespace {
// Writes the escape of one octet that copy_until_json_special stopped at.
inline char* escape_octet(char* w, unsigned char c) {
  switch (c) {
    case '"': *w++ = '\\'; *w++ = '"'; break;
    case '\\': *w++ = '\\'; *w++ = '\\'; break;
    case '\r': *w++ = '\\'; *w++ = 'r'; break;
    case '\n': *w++ = '\\'; *w++ = 'n'; break;
    case '\t': *w++ = '\\'; *w++ = 't'; break;
    default:
      std::memcpy(w, "\\u00", 4);
      w[4] = kHex[c >> 4];
      w[5] = kHex[c & 15];
      w += 6;
  }
  return w;
}
}  // namespace

char* json_escape_to(char* w, std::string_view b, TextIndex* ix) {
  const char* p = b.data();
  const char* const end = p + b.size();
  if (detail::wide_escape_enabled()) {
    for (;;) {
      p = detail::escape_wide(p, end, w, ix);
      ix = nullptr;  // valid only when the first call took every octet
      if (p >= end) return w;
      w = escape_octet(w, static_cast<unsigned char>(*p++));
    }
  }
  if (ix) ix->reset();
  for (;;) {
    p = simd::copy_until_json_special(p, end, w);
    if (p >= end) return w;
    if (p[0] == '\r' && end - p >= 2 && p[1] == '\n') {  // a line end: the common case
      std::memcpy(w, "\\r\\n", 4);
      w += 4;
      p += 2;
      continue;
    }
    w = escape_octet(w, static_cast<unsigned char>(*p++));
  }
}

void json_escape_bytes(std::string& out, std::string_view b) {
  const std::size_t base = out.size();
  out.resize(base + kMaxEscape * b.size() + 16);
  out.resize(static_cast<std::size_t>(json_escape_to(out.data() + base, b) - out.data()));
}

std::size_t jsonl_data_bound(std::string_view conn, std::string_view bytes) {
  return 96 + kMaxEscape * (conn.size() + bytes.size());
}

char* jsonl_data_to(char* w, Time t, std::string_view conn, Dir dir, std::string_view bytes, TextIndex* ix) {
  std::memcpy(w, "{\"t\":", 5);
  w = std::to_chars(w + 5, w + 5 + 20, t).ptr;
  std::memcpy(w, ",\"conn\":\"", 9);
  w += 9;
  w = json_escape_to(w, conn);
  constexpr std::string_view kc = "\",\"ev\":\"data\",\"dir\":\"c\",\"data\":\"";
  constexpr std::string_view ks = "\",\"ev\":\"data\",\"dir\":\"s\",\"data\":\"";
  const std::string_view mid = dir == Dir::client ? kc : ks;
  std::memcpy(w, mid.data(), mid.size());
  w = json_escape_to(w + mid.size(), bytes, ix);
  std::memcpy(w, "\"}\n", 3);
  return w + 3;
}

std::string jsonl_meta(Time t, std::string_view version) {
  return fmt::format("{{\"t\":{},\"ev\":\"meta\",\"format\":\"lockstep-recording\",\"v\":{},\"lockstep\":\"{}\"}}\n", t,
                     kRecordingVersion, version);
}

std::string jsonl_open(Time t, std::string_view conn, std::string_view client, std::string_view server) {
  std::string s = head(t, conn, "open");
  s += ",\"client\":\"";
  json_escape_bytes(s, client);
  s += "\",\"server\":\"";
  json_escape_bytes(s, server);
  s += "\"}\n";
  return s;
}

std::string jsonl_data(Time t, std::string_view conn, Dir dir, std::string_view bytes) {
  std::string s;
  s.resize(jsonl_data_bound(conn, bytes));
  s.resize(static_cast<std::size_t>(jsonl_data_to(s.data(), t, conn, dir, bytes) - s.data()));
  return s;
}

std::string jsonl_close(Time t, std::string_view conn, Dir dir) {
  return head(t, conn, "close") + (dir == Dir::client ? ",\"dir\":\"c\"}\n" : ",\"dir\":\"s\"}\n");
}

std::string jsonl_end(Time t, std::string_view conn) { return head(t, conn, "end") + "}\n"; }

std::string jsonl_timeout(Time t, std::string_view conn) { return head(t, conn, "timeout") + "}\n"; }

std::string jsonl_fault(Time t, std::string_view conn, Dir dir, std::string_view what) {
  std::string s = head(t, conn, "fault");
  s += dir == Dir::client ? ",\"dir\":\"c\",\"text\":\"" : ",\"dir\":\"s\",\"text\":\"";
  json_escape_bytes(s, what);
  s += "\"}\n";
  return s;
}

std::string jsonl_fault(Time t, std::string_view conn, Dir dir, std::string_view what, std::uint64_t offset,
                        std::uint64_t length) {
  std::string s = jsonl_fault(t, conn, dir, what);
  s.pop_back();
  s.pop_back();
  s += fmt::format(",\"offset\":{},\"len\":{}}}\n", offset, length);
  return s;
}

namespace {
// Room a string's octets get first; it doubles as they need more (see decode()).
constexpr std::size_t kFirstRoom = 4096;

// Sets the size of `s` to n, for octets the caller writes before it reads them: where the
// library can, without filling the room first (a recording's data strings are most of
// its octets, and a fill of their room cost as much as a twentieth of a check).
void room_to(std::string& s, std::size_t n) {
#if defined(__cpp_lib_string_resize_and_overwrite)
  s.resize_and_overwrite(n, [](char*, std::size_t size) { return size; });
#else
  s.resize(n);
#endif
}

struct Parser {
  std::string_view s;
  std::size_t i = 0;
  std::string& err;
  // The input goes on past the object's line (parse_json_line): a line end is not white
  // space, and one inside the indexed string fails it; [checked_from, checked_to) is the
  // string so checked.
  bool one_line = false;
  std::size_t checked_from = 0, checked_to = 0;

  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || (s[i] == '\n' && !one_line))) ++i;
  }
  bool fail(std::string_view what) {
    err = fmt::format("{} at column {}", what, i + 1);
    return false;
  }
  static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  // Decodes a JSON string into `out`, writing through a pointer into space sized for the
  // worst case (the decoded text is never longer than its encoding). With an index, it
  // also notes the line ends and the kinds of octets it wrote (TextIndex).
  bool string(std::string& out, bool* above_ff, TextIndex* ix = nullptr) {
    return ix ? decode<true>(out, above_ff, ix) : decode<false>(out, above_ff, nullptr);
  }
  template <bool Indexed>
  bool decode(std::string& out, bool* above_ff, TextIndex* ix) {
    if (i >= s.size() || s[i] != '"') return fail("expected a string");
    ++i;
    const std::size_t base = out.size();
    const char* p = s.data() + i;
    const char* const p0 = p;
    const char* const end = s.data() + s.size();
    // The octets are written through a pointer into room for the worst case: the decoded
    // text is never longer than its encoding, and the stores are whole 64-octet blocks.
    // The room covers the input up to `limit` (and the wide decoder's overrun past it) and
    // doubles when the decoding gets near it, so a short string in a long input (the rest
    // of a file) is not given the input's size.
    constexpr std::size_t kSlack = detail::kSoftEndOverrun + 128;
    const char* limit = p + std::min<std::size_t>(static_cast<std::size_t>(end - p), kFirstRoom);
    room_to(out, base + static_cast<std::size_t>(limit - p0) + kSlack);
    char* w0 = out.data() + base;
    char* w = w0;
    auto grow = [&] {
      const auto written = w - w0;
      limit = p0 + std::min<std::size_t>(static_cast<std::size_t>(end - p0), 2 * static_cast<std::size_t>(limit - p0));
      room_to(out, base + static_cast<std::size_t>(limit - p0) + kSlack);
      w0 = out.data() + base;
      w = w0 + written;
    };
    bool use_wide = false;  // the wide (AVX-512) decoder takes the common stretches
    if constexpr (Indexed) {
      ix->reset();
      ix->text = true;
      use_wide = detail::wide_decode_enabled();
    }
    // An octet below 0x20 or from 0x80 up, written at w (the indexed decoder only).
    auto note = [&](unsigned char c) {
      if constexpr (Indexed) {
        if (c >= 0x80) {
          if (ix->first_high == TextIndex::npos) ix->first_high = static_cast<std::size_t>(w - w0);
        } else if (c == 0 || c == '\r' || c == '\n') {
          ix->text = false;
        }
      } else {
        (void)c;
      }
    };
    for (;;) {
      if (limit < end && limit - p < 64) grow();  // the wide decoder or an escape may have gone past limit
      if (use_wide) p = detail::decode_wide(p, end, w, w0, ix, limit);
      if constexpr (Indexed) p = simd::copy_until_quote_backslash_or_control(p, limit, w);
      else p = simd::copy_until_quote_or_backslash(p, limit, w);
      if (p >= limit) {
        if (limit < end) continue;
        i = s.size();
        out.resize(base);
        return fail("unterminated string");
      }
      if (*p == '"') {
        ++p;
        break;
      }
      if constexpr (Indexed) {
        if (*p != '\\') {  // a raw control octet or one of 0x80 and up
          if (*p == '\n' && one_line) {
            i = static_cast<std::size_t>(p - s.data());
            out.resize(base);
            return fail("line end inside a string");
          }
          note(static_cast<unsigned char>(*p));
          *w++ = *p++;
          continue;
        }
      }
      if (p + 1 >= end) {
        i = s.size();
        out.resize(base);
        return fail("unterminated escape");
      }
      const char e = p[1];
      p += 2;
      if (e == 'r' && end - p >= 2 && p[0] == '\\' && p[1] == 'n') {  // the usual line end
        if constexpr (Indexed) ix->lf.push_back(static_cast<std::uint32_t>(w - w0 + 1));
        *w++ = '\r';
        *w++ = '\n';
        p += 2;
        continue;
      }
      switch (e) {
        case 'r': note('\r'); *w++ = '\r'; break;
        case 'n': note('\n'); *w++ = '\n'; break;
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case 't': *w++ = '\t'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'u': {
          if (end - p < 4) {
            i = static_cast<std::size_t>(p - s.data());
            out.resize(base);
            return fail("short \\u escape");
          }
          int v = 0;
          for (int k = 0; k < 4; ++k) {
            const int h = hexval(p[k]);
            if (h < 0) {
              i = static_cast<std::size_t>(p - s.data());
              out.resize(base);
              return fail("bad \\u escape");
            }
            v = v * 16 + h;
          }
          p += 4;
          if (v > 0xff) {
            if (above_ff) *above_ff = true;
            *w++ = '?';
          } else {
            note(static_cast<unsigned char>(v));
            *w++ = static_cast<char>(v);
          }
          break;
        }
        default:
          i = static_cast<std::size_t>(p - s.data());
          out.resize(base);
          return fail("bad escape");
      }
    }
    i = static_cast<std::size_t>(p - s.data());
    out.resize(static_cast<std::size_t>(w - out.data()));
    if constexpr (Indexed) {
      checked_from = static_cast<std::size_t>(p0 - s.data());
      checked_to = i;
      // Positions are 32-bit; a longer string (beyond any recorder's events) goes unindexed.
      ix->valid = base == 0 && out.size() <= UINT32_MAX;
      if (!ix->text) ix->lf.clear();
    }
    return true;
  }
  // A short string (a key, a small value): no escapes in the common case.
  bool short_string(std::string& out) {
    if (i < s.size() && s[i] == '"') {
      const char* p = s.data() + i + 1;
      const char* q = simd::find_quote_or_backslash(p, s.data() + s.size());
      if (q < s.data() + s.size() && *q == '"') {
        out.assign(p, static_cast<std::size_t>(q - p));
        i = static_cast<std::size_t>(q - s.data()) + 1;
        return true;
      }
    }
    return string(out, nullptr);
  }

  bool number(JsonValue& v) {
    const std::size_t start = i;
    bool neg = false;
    if (i < s.size() && s[i] == '-') { neg = true; ++i; }
    std::int64_t n = 0;
    std::size_t digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (digits < 18) n = n * 10 + (s[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0) { i = start; return fail("bad number"); }
    if (i < s.size() && s[i] == '.') {
      ++i;
      std::int64_t f = 0;
      int fd = 0;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        if (fd < 6) { f = f * 10 + (s[i] - '0'); ++fd; }
        ++i;
      }
      while (fd < 6) { f *= 10; ++fd; }
      v.frac_us = f;
      v.has_frac = true;
    }
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) return fail("exponents are not supported");
    v.kind = JsonValue::number;
    v.num = neg ? -n : n;
    if (neg) v.frac_us = -v.frac_us;
    return true;
  }
  bool skip_value(int depth) {
    if (depth > 32) return fail("nesting too deep");
    ws();
    if (i >= s.size()) return fail("missing value");
    const char c = s[i];
    if (c == '"') { std::string tmp; return string(tmp, nullptr); }
    if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++i;
      ws();
      if (i < s.size() && s[i] == close) { ++i; return true; }
      for (;;) {
        if (c == '{') {
          std::string k;
          ws();
          if (!string(k, nullptr)) return false;
          ws();
          if (i >= s.size() || s[i] != ':') return fail("expected ':'");
          ++i;
        }
        if (!skip_value(depth + 1)) return false;
        ws();
        if (i < s.size() && s[i] == ',') { ++i; continue; }
        if (i < s.size() && s[i] == close) { ++i; return true; }
        return fail("expected ',' or a closing bracket");
      }
    }
    JsonValue v;
    return value(v, depth);
  }
  bool value(JsonValue& v, int depth) {
    ws();
    if (i >= s.size()) return fail("missing value");
    const char c = s[i];
    if (c == '"') {
      v.kind = JsonValue::string;
      // Without escapes the value is copied as is; otherwise it is decoded in place.
      const char* p = s.data() + i + 1;
      const char* q = simd::find_quote_or_backslash(p, s.data() + s.size());
      if (q < s.data() + s.size() && *q == '"') {
        v.str.assign(p, static_cast<std::size_t>(q - p));
        i = static_cast<std::size_t>(q - s.data()) + 1;
        return true;
      }
      return string(v.str, &v.wide);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return number(v);
    auto word = [&](std::string_view w, JsonValue::Kind k, bool b) {
      if (s.substr(i, w.size()) != w) return fail("bad literal");
      i += w.size();
      v.kind = k;
      v.num = b ? 1 : 0;
      return true;
    };
    if (c == 't') return word("true", JsonValue::boolean, true);
    if (c == 'f') return word("false", JsonValue::boolean, false);
    if (c == 'n') return word("null", JsonValue::null, false);
    if (c == '{' || c == '[') { v.kind = JsonValue::other; return skip_value(depth); }
    return fail("unexpected character");
  }
};
}  // namespace

namespace {
// The object at the parser's position, up to its closing brace.
bool parse_object(Parser& p, std::vector<JsonField>& fields, std::size_t& count, TextIndex* data_index) {
  const std::string_view line = p.s;
  count = 0;
  if (data_index) data_index->reset();
  p.ws();
  if (p.i >= line.size() || line[p.i] != '{') return p.fail("not a JSON object");
  ++p.i;
  p.ws();
  if (p.i < line.size() && line[p.i] == '}') { ++p.i; return true; }
  for (;;) {
    // Reuse the fields of earlier lines: their strings keep their capacity.
    if (count == fields.size()) fields.emplace_back();
    JsonField& f = fields[count];
    f.key.clear();
    f.value.str.clear();
    f.value.kind = JsonValue::null;
    f.value.num = f.value.frac_us = 0;
    f.value.has_frac = f.value.wide = false;
    p.ws();
    if (!p.short_string(f.key)) return false;
    p.ws();
    if (p.i >= line.size() || line[p.i] != ':') return p.fail("expected ':'");
    ++p.i;
    if (data_index && f.key.size() == 4 && std::memcmp(f.key.data(), "data", 4) == 0) {
      p.ws();
      if (p.i < line.size() && line[p.i] == '"') {
        f.value.kind = JsonValue::string;
        if (!p.string(f.value.str, &f.value.wide, data_index)) return false;
      } else {
        data_index->reset();
        if (!p.value(f.value, 0)) return false;
      }
    } else if (!p.value(f.value, 0)) {
      return false;
    }
    ++count;
    p.ws();
    if (p.i < line.size() && line[p.i] == ',') { ++p.i; continue; }
    if (p.i < line.size() && line[p.i] == '}') { ++p.i; break; }
    return p.fail("expected ',' or '}'");
  }
  return true;
}
}  // namespace

bool parse_json_object(std::string_view line, std::vector<JsonField>& fields, std::size_t& count, std::string& error,
                       TextIndex* data_index) {
  Parser p{line, 0, error};
  if (!parse_object(p, fields, count, data_index)) return false;
  p.ws();
  if (p.i != line.size()) return p.fail("trailing characters after the object");
  return true;
}

bool parse_json_line(std::string_view input, std::vector<JsonField>& fields, std::size_t& count, std::string& error,
                     TextIndex* data_index, std::size_t& used) {
  Parser p{input, 0, error};
  p.one_line = true;
  if (!parse_object(p, fields, count, data_index)) return false;
  p.ws();  // spaces, tabs and CRs: not the LF
  if (p.i >= input.size() || input[p.i] != '\n') return p.fail("no line end after the object");
  // A line end inside a string other than the indexed one (which its decoding checked)
  // would make this more than one line.
  const char* d = input.data();
  if (std::memchr(d, '\n', p.checked_from) || std::memchr(d + p.checked_to, '\n', p.i - p.checked_to))
    return p.fail("line end inside the object");
  used = p.i + 1;
  return true;
}

bool parse_recorded_data(std::string_view input, RecordedData& out, std::string& bytes, TextIndex* ix) {
  std::size_t i = 0;
  auto lit = [&](std::string_view w) {
    if (input.substr(i, w.size()) != w) return false;
    i += w.size();
    return true;
  };
  if (!lit(R"({"t":)")) return false;
  // An integer of at most 18 digits, as the general parser keeps it whole.
  std::int64_t t = 0;
  const std::size_t digits_from = i;
  while (i < input.size() && i - digits_from < 18 && input[i] >= '0' && input[i] <= '9') t = t * 10 + (input[i++] - '0');
  if (i == digits_from || !lit(R"(,"conn":")")) return false;  // a 19th digit is no comma either
  // The connection: printable ASCII without escapes, as the recorder names it.
  const std::size_t conn_from = i;
  while (i < input.size() && i - conn_from <= 256 && input[i] != '"' && input[i] != '\\' &&
         static_cast<unsigned char>(input[i]) >= 0x20 && static_cast<unsigned char>(input[i]) < 0x7f)
    ++i;
  if (i == conn_from || i >= input.size() || input[i] != '"') return false;
  const std::string_view conn = input.substr(conn_from, i - conn_from);
  ++i;
  if (!lit(R"(,"ev":"data","dir":")") || i >= input.size() || (input[i] != 'c' && input[i] != 's')) return false;
  const Dir dir = input[i] == 's' ? Dir::server : Dir::client;
  ++i;
  if (!lit(R"(","data":)")) return false;
  std::string err;
  Parser p{input, i, err};
  p.one_line = true;
  bytes.clear();
  bool above_ff = false;
  if (!p.string(bytes, &above_ff, ix)) return false;
  i = p.i;
  if (!lit("}\n")) return false;
  out.time = t;
  out.conn = conn;
  out.dir = dir;
  out.used = i;
  return true;
}

}  // namespace lockstep
