#pragma once
// Small SSE2 helpers for the hot loops (SSE2 is part of every x86-64; other machines
// use the plain loops).
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace lockstep::simd {

namespace detail {
// The movemask of the '"' and '\\' octets of a block, and the same test for one octet.
constexpr auto quote_or_backslash = [](auto v) {
#if defined(__SSE2__)
  return _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
#else
  (void)v;
  return 0;
#endif
};
constexpr auto not_quote_or_backslash = [](unsigned char c) { return c != '"' && c != '\\'; };

// The first octet in [p, end) that `mask` (a movemask of the octets to find, per 16-byte
// block) or, in the tail, `plain` (false for them) picks out; end if none.
template <class Mask, class Plain>
inline const char* find_first(const char* p, const char* end, Mask mask, Plain plain) {
#if defined(__SSE2__)
  while (end - p >= 16) {
    const int m = mask(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    if (m) return p + __builtin_ctz(static_cast<unsigned>(m));
    p += 16;
  }
#else
  (void)mask;
#endif
  while (p < end && plain(static_cast<unsigned char>(*p))) ++p;
  return p;
}
}  // namespace detail

// The first '"' or '\\' in [p, end), or end.
inline const char* find_quote_or_backslash(const char* p, const char* end) {
  return detail::find_first(
      p, end,
      detail::quote_or_backslash, detail::not_quote_or_backslash);
}

// The first octet JSON text must escape when octets from 0x80 up stand as they are (as
// boost::json writes strings): below 0x20, '"' or '\\'; end if none.
inline const char* find_json_escape(const char* p, const char* end) {
  return detail::find_first(
      p, end,
      [](auto v) {
#if defined(__SSE2__)
        const __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);  // unsigned v <= 0x1f
        return _mm_movemask_epi8(_mm_or_si128(
            low, _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')))));
#else
        (void)v;
        return 0;
#endif
      },
      [](unsigned char c) { return c >= 0x20 && c != '"' && c != '\\'; });
}

namespace detail {
// Copies 16-byte blocks from p to w until `mask` (a movemask of the octets that stop the
// copy) is non-zero, then the tail octet by octet while `plain` holds; returns the stop
// position and advances w. w must have room for end - p octets plus 15.
template <class Mask, class Plain>
inline const char* copy_until(const char* p, const char* end, char*& w, Mask mask, Plain plain) {
#if defined(__SSE2__)
  // 64 octets a round while there are that many (one test for four blocks), then 16.
  while (end - p >= 64) {
    const __m128i v0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i v1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
    const __m128i v2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32));
    const __m128i v3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 48));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(w), v0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(w + 16), v1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(w + 32), v2);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(w + 48), v3);
    const std::uint64_t m = static_cast<std::uint64_t>(static_cast<unsigned>(mask(v0))) |
                            static_cast<std::uint64_t>(static_cast<unsigned>(mask(v1))) << 16 |
                            static_cast<std::uint64_t>(static_cast<unsigned>(mask(v2))) << 32 |
                            static_cast<std::uint64_t>(static_cast<unsigned>(mask(v3))) << 48;
    if (m) {
      const int k = __builtin_ctzll(m);
      w += k;
      return p + k;
    }
    p += 64;
    w += 64;
  }
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(w), v);
    if (const int m = mask(v)) {
      const int k = __builtin_ctz(static_cast<unsigned>(m));
      w += k;
      return p + k;
    }
    p += 16;
    w += 16;
  }
#else
  (void)mask;
#endif
  while (p < end && plain(static_cast<unsigned char>(*p))) *w++ = *p++;
  return p;
}
}  // namespace detail

// Copies bytes from p to w until a '"' or '\\' (or end); returns the stop position in
// the input and advances w past the copied bytes. w must have room for end - p bytes
// plus 15, since whole 16-byte blocks are stored.
inline const char* copy_until_quote_or_backslash(const char* p, const char* end, char*& w) {
  return detail::copy_until(
      p, end, w,
      detail::quote_or_backslash, detail::not_quote_or_backslash);
}

// The same, but also stopping at a control octet (below 0x20) or one of 0x80 and up: the
// copy loop of a decoder that notes what kind of octets it produced (TextIndex).
inline const char* copy_until_quote_backslash_or_control(const char* p, const char* end, char*& w) {
  return detail::copy_until(
      p, end, w,
      [](auto v) {
#if defined(__SSE2__)
        // Signed compare: octets >= 0x80 are negative, so below 0x20 catches them too.
        return _mm_movemask_epi8(_mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
            _mm_cmpgt_epi8(_mm_set1_epi8(0x20), v)));
#else
        (void)v;
        return 0;
#endif
      },
      [](unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; });
}

// Copies octets from p to w until one a JSON string must escape (below 0x20, 0x7f and
// up, '"' or '\\'); returns its position in the input and advances w past the copied octets. w must have
// room for end - p octets plus 15, since whole 16-byte blocks are stored.
inline const char* copy_until_json_special(const char* p, const char* end, char*& w) {
  return detail::copy_until(
      p, end, w,
      [](auto v) {
#if defined(__SSE2__)
        // Signed compares: octets >= 0x80 are negative, so below 0x20 catches them too.
        const __m128i special =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                         _mm_or_si128(_mm_cmpgt_epi8(_mm_set1_epi8(0x20), v), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f))));
        return _mm_movemask_epi8(special);
#else
        (void)v;
        return 0;
#endif
      },
      [](unsigned char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; });
}

struct TextScan {
  bool clean = true;   // no NUL, every CR followed by LF and every LF preceded by CR
  bool high = false;   // an octet >= 0x80
};

// Scans [p, p+n), which starts at a line start and ends with LF, in one pass.
inline TextScan scan_text(const char* p, std::size_t n) {
  TextScan r;
  std::size_t i = 0;
  char prev = '\n';
#if defined(__SSE2__)
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  const __m128i zero = _mm_setzero_si128();
  unsigned carry_cr = 0;  // the byte before this block was CR
  __m128i any = zero;
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    any = _mm_or_si128(any, v);
    const unsigned mcr = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, cr)));
    const unsigned mlf = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf)));
    const unsigned mz = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, zero)));
    // Each LF must sit right after a CR, and each CR right before an LF.
    const unsigned cr_shift = ((mcr << 1) | carry_cr) & 0xffffu;
    if (mz || (mlf & ~cr_shift) || ((mcr & 0x7fffu) & ~(mlf >> 1))) {
      r.clean = false;
      return r;
    }
    carry_cr = (mcr >> 15) & 1u;
    if (carry_cr && i + 16 < n && p[i + 16] != '\n') {
      r.clean = false;
      return r;
    }
  }
  r.high = _mm_movemask_epi8(any) != 0;
  if (i > 0) prev = p[i - 1];
#endif
  for (; i < n; ++i) {
    const char c = p[i];
    if (c == '\0' || (c == '\n' && prev != '\r') || (prev == '\r' && c != '\n')) {
      r.clean = false;
      return r;
    }
    if (static_cast<unsigned char>(c) >= 0x80) r.high = true;
    prev = c;
  }
  if (prev != '\n') r.clean = false;
  return r;
}

}  // namespace lockstep::simd
