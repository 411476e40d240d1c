#pragma once
// JSON text appended straight to a string, with no document built first. The output is
// what boost::json::serialize writes for the same values: no spaces, keys in the order
// written, `"` `\` and the control octets below 0x20 escaped (\b \t \n \f \r, otherwise
// \u00xx in lower-case hex), every other octet as it is. A report of a large recording
// holds a ladder entry per command and reply, and a document per session cost more than
// the checking.
#include <array>
#include <charconv>
#include <concepts>
#include <string>
#include <string_view>

#include "engine/simd.hpp"

namespace lockstep::cli::json {

namespace detail {
// The escape after the backslash, 'u' for \u00xx, 0 for an octet written as it is.
constexpr std::array<char, 256> kEscape = [] {
  std::array<char, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 'u';
  t['\b'] = 'b';
  t['\t'] = 't';
  t['\n'] = 'n';
  t['\f'] = 'f';
  t['\r'] = 'r';
  t['"'] = '"';
  t['\\'] = '\\';
  return t;
}();

// The position of the first octet from i on that needs an escape, or v.size().
inline std::size_t next_escape(std::string_view v, std::size_t i) {
  return static_cast<std::size_t>(simd::find_json_escape(v.data() + i, v.data() + v.size()) - v.data());
}
}  // namespace detail

// A quoted, escaped JSON string.
inline void string(std::string& out, std::string_view v) {
  out += '"';
  std::size_t run = 0;  // start of the octets not yet copied
  for (std::size_t i = detail::next_escape(v, 0); i < v.size(); i = detail::next_escape(v, i + 1)) {
    const char e = detail::kEscape[static_cast<unsigned char>(v[i])];
    out.append(v.data() + run, i - run);
    run = i + 1;
    out += '\\';
    out += e;
    if (e == 'u') {
      static constexpr char hex[] = "0123456789abcdef";
      const auto c = static_cast<unsigned char>(v[i]);
      out += "00";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  out.append(v.data() + run, v.size() - run);
  out += '"';
}

template <std::integral T>
void number(std::string& out, T v) {
  if constexpr (std::same_as<T, bool>) {
    out += v ? "true" : "false";
  } else {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

// Commas between members or elements: sep() before each one.
class List {
 public:
  List(std::string& out, char open, char close) : out_(out), close_(close) { out_ += open; }
  List(const List&) = delete;
  List& operator=(const List&) = delete;
  ~List() { out_ += close_; }
  std::string& sep() {
    if (!first_) out_ += ',';
    first_ = false;
    return out_;
  }

 protected:
  std::string& out_;

 private:
  char close_;
  bool first_ = true;
};

// An object: {...} closed when it goes out of scope.
class Object : public List {
 public:
  explicit Object(std::string& out) : List(out, '{', '}') {}
  // The key and its colon; the caller writes the value.
  std::string& key(std::string_view k) {
    string(sep(), k);
    out_ += ':';
    return out_;
  }
  void str(std::string_view k, std::string_view v) { string(key(k), v); }
  template <std::integral T>
  void num(std::string_view k, T v) {
    number(key(k), v);
  }
};

// An array: [...] closed when it goes out of scope.
class Array : public List {
 public:
  explicit Array(std::string& out) : List(out, '[', ']') {}
  void str(std::string_view v) { string(sep(), v); }
  template <std::integral T>
  void num(T v) {
    number(sep(), v);
  }
};

}  // namespace lockstep::cli::json
