#include "engine/jsonl_fast.hpp"

#include "engine/env.hpp"

#include <utility>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define LOCKSTEP_WIDE_DECODE 1
#endif

namespace lockstep::detail {

#if defined(LOCKSTEP_WIDE_DECODE)

namespace {
bool cpu_has_wide() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vbmi2") &&
         __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
}

// On where the CPU has it, unless `no_variable` is set (and not 0) in the environment.
bool wide_unless(const char* no_variable) { return cpu_has_wide() && !env_switch(no_variable); }

bool g_wide = wide_unless("LOCKSTEP_NO_WIDE_DECODE");
bool g_wide_escape = wide_unless("LOCKSTEP_NO_WIDE_ESCAPE");  // the escaper and the raw index

// What each octet after a backslash stands for, indexed by its low 7 bits; 0 for an
// escape this step does not take as two octets (\u, and anything JSON does not know).
struct EscapeTable {
  alignas(64) unsigned char to[128] = {};
  constexpr EscapeTable() {
    constexpr std::pair<char, char> kPairs[] = {{'"', '"'}, {'\\', '\\'}, {'/', '/'},   {'b', '\b'},
                                                {'f', '\f'}, {'n', '\n'},   {'r', '\r'}, {'t', '\t'}};
    for (const auto& [e, octet] : kPairs) to[static_cast<unsigned char>(e)] = static_cast<unsigned char>(octet);
  }
};
constexpr EscapeTable kEscapes;

// The value of each hex digit, indexed by its low 7 bits; 0xff for any other octet.
struct HexTable {
  alignas(64) unsigned char to[128] = {};
  constexpr HexTable() {
    for (auto& c : to) c = 0xff;
    for (int i = 0; i < 10; ++i) to[0x30 + i] = static_cast<unsigned char>(i);                   // 0-9
    for (int i = 0; i < 6; ++i) to[0x61 + i] = to[0x41 + i] = static_cast<unsigned char>(10 + i);  // a-f, A-F
  }
};
constexpr HexTable kHex;

// Byte j of the result is byte j - 1 of the input (vpermb indices).
struct ShiftOne {
  alignas(64) unsigned char to[64] = {};
  constexpr ShiftOne() {
    for (int i = 1; i < 64; ++i) to[i] = static_cast<unsigned char>(i - 1);
  }
};
constexpr ShiftOne kShiftOne;

// 0, 1, ... 63: the octet numbers of a step.
struct Iota {
  alignas(64) unsigned char to[64] = {};
  constexpr Iota() {
    for (int i = 0; i < 64; ++i) to[i] = static_cast<unsigned char>(i);
  }
};
constexpr Iota kIota;

#define LOCKSTEP_WIDE_TARGET __attribute__((target("avx512f,avx512bw,avx512vbmi,avx512vbmi2,bmi,bmi2,popcnt")))

// What one step decoded.
struct Step {
  __m512i v, out;
  std::uint64_t escaped, drop, uhigh;
};

// Where the decoding stands between steps.
struct Cursor {
  const char* p;
  char* w;
  const char* w0;
  TextIndex* ix;
  // LFs that CR escapes at the end of the last step want at this step's positions 0 and 1
  // (bit 0, from a CR two octets before the step, can only mean a bare CR: position 0 is
  // a backslash or plain octet, never an escaped 'n').
  std::uint64_t carry = 0;
  std::uint32_t* lf = nullptr;  // where the next line end position goes (Index)
  std::uint32_t* lf_end = nullptr;
  const char* soft_end = nullptr;  // see decode_wide()
};

// The escape letters of CR and LF.
struct Letters {
  __m512i r, n;
};

// Writes the octets of the step's first `len` input octets (`take` has their bits).
// Index: also rules on CR and LF and notes the line ends; returns false when the octets
// turned out not to be text (the step is written all the same).

template <bool Index>
LOCKSTEP_WIDE_TARGET __attribute__((always_inline)) inline bool emit(Cursor& c, const Step& s, unsigned len,
                                                                     std::uint64_t take, const Letters& letter) {
  const std::uint64_t keep = take & ~s.drop;
  _mm512_storeu_si512(c.w, _mm512_maskz_compress_epi8(keep, s.out));
  if (const std::uint64_t h = s.uhigh & take; h && c.ix && c.ix->first_high == TextIndex::npos)
    c.ix->first_high =
        static_cast<std::size_t>(c.w - c.w0) + static_cast<std::size_t>(_mm_popcnt_u64(keep & ((h & (0 - h)) - 1)));
  bool text = true;
  if constexpr (Index) {
    const std::uint64_t crs = s.escaped & take & _mm512_cmpeq_epi8_mask(s.v, letter.r);
    const std::uint64_t lfs = s.escaped & take & _mm512_cmpeq_epi8_mask(s.v, letter.n);
    if ((((crs << 2) | c.carry) ^ lfs) & take) {  // a bare CR or LF
      text = false;
    } else {
      // The output positions of the LFs, without a branch: the step's octet numbers that
      // are LFs, compressed, widened and offset, all 16 stored whatever the count. An LF
      // takes 4 input octets (\r\n), so a step has at most 16; room() left 16 slots.
      const auto at = static_cast<int>(static_cast<std::uint32_t>(c.w - c.w0));  // modulo 2^32, as the positions
      const std::uint64_t d = _pext_u64(lfs, keep);
      const __m128i idx = _mm512_castsi512_si128(_mm512_maskz_compress_epi8(d, _mm512_load_si512(kIota.to)));
      _mm512_storeu_si512(c.lf, _mm512_add_epi32(_mm512_cvtepu8_epi32(idx), _mm512_set1_epi32(at)));
      c.lf += _mm_popcnt_u64(d);
      c.carry = len >= 2 ? crs >> (len - 2) : c.carry;
    }
  }
  c.w += _mm_popcnt_u64(keep);
  c.p += len;
  return text;
}

// A constant the loop keeps in a register: where it can see the value, the compiler
// rebuilds a broadcast in every step, on the vector port the steps are short of.
LOCKSTEP_WIDE_TARGET __attribute__((always_inline)) inline __m512i held(__m512i v) {
  asm("" : "+v"(v));
  return v;
}

// How run() ended: stopped where the byte-wise decoder takes over (the octets still text,
// or not), or, with the index, in the middle when the octets turned out not to be text.
enum class Ended { stop, stop_not_text, not_text };

// The steps, until one stops at what the byte-wise decoder must take (or, Index, until
// the octets turn out not to be text).
template <bool Index>
LOCKSTEP_WIDE_TARGET __attribute__((always_inline)) inline Ended steps(Cursor& c, const char* const end) {
  const __m512i lo = _mm512_load_si512(kEscapes.to);
  const __m512i hi = _mm512_load_si512(kEscapes.to + 64);
  const __m512i hex_lo = _mm512_load_si512(kHex.to);
  const __m512i hex_hi = _mm512_load_si512(kHex.to + 64);
  const __m512i shift_one = _mm512_load_si512(kShiftOne.to);
  const __m512i backslash = held(_mm512_set1_epi8('\\'));
  const __m512i quote = held(_mm512_set1_epi8('"'));
  const __m512i space = held(_mm512_set1_epi8(0x20));
  const Letters letter{held(_mm512_set1_epi8('r')), held(_mm512_set1_epi8('n'))};
  const __m512i sixteen = _mm512_set1_epi8(16);
  const __m512i high_nibble = _mm512_set1_epi8(static_cast<char>(0xf0));
  const __m512i u = _mm512_set1_epi8('u');
  const __m512i zero_digit = _mm512_set1_epi8('0');
  const __m512i nul = _mm512_setzero_si512();
  const __m512i cr_octet = _mm512_set1_epi8('\r');
  const __m512i lf_octet = _mm512_set1_epi8('\n');
  constexpr std::uint64_t kOddBits = 0xAAAAAAAAAAAAAAAAull;
  constexpr std::uint64_t kLast = 1ull << 63;
  constexpr std::uint64_t kLastFive = 0x1full << 59;
  for (;;) {
    if (c.p >= c.soft_end) [[unlikely]] {
      if (!c.carry) return Ended::stop;
      if (c.p >= c.soft_end + kSoftEndOverrun) return Ended::stop_not_text;
    }
    if constexpr (Index) {
      if (c.lf_end - c.lf < 16) {
        c.ix->lf.commit(c.lf);
        c.lf = c.ix->lf.room(4096);
        c.lf_end = c.lf + 4096;
      }
    }
    // The input may come straight from a mapped file (the parser finds the line ends as it
    // goes): ask for it a few pages ahead, which the hardware's prefetch does not cross.
    _mm_prefetch(c.p + 4096, _MM_HINT_T0);
    const std::size_t left = static_cast<std::size_t>(end - c.p);
    Step s;
    // Past the end, masked loads read zeros, which stop the step like any control octet.
    s.v = left >= 64 ? _mm512_loadu_si512(c.p)
                     : _mm512_maskz_loadu_epi8(_bzhi_u64(~0ull, static_cast<unsigned>(left)), c.p);
    const std::uint64_t bs = _mm512_cmpeq_epi8_mask(s.v, backslash);
    // Octets below 0x20 and from 0x80 up: signed, the latter are negative.
    const std::uint64_t odd = _mm512_cmplt_epi8_mask(s.v, space);
    // The backslashes that begin an escape (the first, third ... of a run) and the octets
    // they escape; the step starts at a character boundary, so no run comes from before.
    // Without a branch: whether a step holds a backslash is a coin toss in text whose
    // lines are about a step long.
    const std::uint64_t t = (((bs << 1) | kOddBits) - bs) ^ kOddBits;
    s.escaped = t ^ bs;
    const std::uint64_t esc = t & bs;
    const __m512i to = _mm512_permutex2var_epi8(lo, s.v, hi);
    s.out = _mm512_mask_blend_epi8(s.escaped, s.v, to);
    s.drop = esc;
    s.uhigh = 0;
    // \u00XX escapes whole in this step: the octet goes where the last digit was.
    std::uint64_t late = 0, uesc = 0;
    if (const std::uint64_t us = esc & (_mm512_mask_cmpeq_epi8_mask(s.escaped, s.v, u) >> 1)) {
      const __m512i hv = _mm512_permutex2var_epi8(hex_lo, s.v, hex_hi);
      const std::uint64_t hex = _mm512_cmplt_epu8_mask(hv, sixteen) & ~odd;
      const std::uint64_t zeros = _mm512_cmpeq_epi8_mask(s.v, zero_digit);
      const __m512i octet = _mm512_or_si512(
          _mm512_and_si512(_mm512_slli_epi16(_mm512_maskz_permutexvar_epi8(~0ull, shift_one, hv), 4), high_nibble), hv);
      // NUL, CR and LF written as \u escapes are left to the byte-wise decoder, which
      // rules on them for the index.
      const std::uint64_t at = (us & (zeros >> 2) & (zeros >> 3) & (hex >> 4) & (hex >> 5)) << 5;
      const std::uint64_t plain = at & ~(_mm512_cmpeq_epi8_mask(octet, nul) | _mm512_cmpeq_epi8_mask(octet, cr_octet) |
                                         _mm512_cmpeq_epi8_mask(octet, lf_octet));
      uesc = plain >> 5;
      s.out = _mm512_mask_blend_epi8(plain, s.out, octet);
      s.drop |= uesc << 1 | uesc << 2 | uesc << 3 | uesc << 4;
      s.uhigh = plain & _mm512_movepi8_mask(octet);
      late = us & ~uesc & kLastFive;  // one that may end in the next step starts it
    }
    const std::uint64_t unknown = s.escaped & (_mm512_testn_epi8_mask(to, to) | odd) & ~(uesc << 1);
    // Where the byte-wise decoder takes over: the closing quote, a raw control or high
    // octet, the backslash of an escape this step does not take.
    const std::uint64_t stop =
        (_mm512_cmpeq_epi8_mask(s.v, quote) & ~s.escaped) | (odd & ~s.escaped) | ((unknown >> 1) & ~late);
    // An escape that may end beyond the last octet is left whole to the next step.
    const std::uint64_t cut = stop | (esc & kLast) | late;
    if (cut == 0) {  // the common case, which the branch predicts: the next load need not wait
      if (!emit<Index>(c, s, 64, ~0ull, letter)) return Ended::not_text;
      continue;
    }
    const std::uint64_t first = cut & (0 - cut);
    const bool text = emit<Index>(c, s, static_cast<unsigned>(_tzcnt_u64(cut)), first - 1, letter);
    if (stop & first) {
      // What stopped the step cannot be the LF escape a CR before it wants.
      return Index && (!text || c.carry) ? Ended::stop_not_text : Ended::stop;
    }
    if (!text) return Ended::not_text;
  }
}

// The steps on a copy of the cursor in registers: the output stores may alias anything,
// so through a reference every step would load and store the cursor again.
template <bool Index>
LOCKSTEP_WIDE_TARGET Ended run(Cursor& c, const char* const end) {
  Cursor local = c;
  const Ended e = steps<Index>(local, end);
  c = local;
  return e;
}
}  // namespace

bool wide_decode_enabled() { return g_wide; }
void enable_wide_decode(bool on) { g_wide = on && cpu_has_wide(); }
bool wide_escape_enabled() { return g_wide_escape; }
void enable_wide_escape(bool on) { g_wide_escape = on && cpu_has_wide(); }

namespace {
// What the octet escaped as backslash + letter becomes, indexed by its low 6 bits: TAB,
// LF, CR, '"' and '\\' land on 9, 10, 13, 34 and 28, no two alike.
struct LetterTable {
  alignas(64) unsigned char to[64] = {};
  constexpr LetterTable() {
    constexpr std::pair<char, char> kPairs[] = {{'\t', 't'}, {'\n', 'n'}, {'\r', 'r'}, {'"', '"'}, {'\\', '\\'}};
    for (const auto& [octet, letter] : kPairs) to[static_cast<unsigned char>(octet) & 63] = static_cast<unsigned char>(letter);
  }
};
constexpr LetterTable kLetters;

// Writes the first n (at most 32) octets of v, those with a bit in e2 after a backslash
// (v holds their letters already); returns the new end of the output. Stores 64 octets
// unless `exact`. Output slot 2j is octet j's backslash (there when bit j of e2 is), slot
// 2j+1 the octet: the slots that exist, compressed, say where vpexpandb puts octets and
// where backslashes stay.
LOCKSTEP_WIDE_TARGET inline char* emit_escaped(__m512i v, std::uint32_t e2, unsigned n, char* w, bool exact) {
  constexpr std::uint64_t kOdd = 0xaaaaaaaaaaaaaaaaull;
  const std::uint64_t slots = n == 32 ? ~0ull : (1ull << (2 * n)) - 1;
  const std::uint64_t exist = (_pdep_u64(e2, 0x5555555555555555ull) | kOdd) & slots;
  const std::uint64_t octets = _pext_u64(kOdd, exist);
  const auto len = static_cast<unsigned>(_mm_popcnt_u64(exist));
  const __m512i out = _mm512_mask_expand_epi8(_mm512_set1_epi8('\\'), octets, v);
  // A masked store costs a third of the step: only where the room may end within 64.
  if (exact) _mm512_mask_storeu_epi8(w, len == 64 ? ~0ull : (1ull << len) - 1, out);
  else _mm512_storeu_si512(w, out);
  return w + len;
}
}  // namespace

LOCKSTEP_WIDE_TARGET bool index_text_wide(const char* p, std::size_t n, TextIndex& ix) {
  if (!g_wide_escape) return false;
  ix.reset();
  ix.valid = true;
  std::uint64_t carry = 0;  // a CR in the last octet of the step before
  bool text = true;
  for (std::size_t at = 0; at < n; at += 64) {
    const std::size_t left = n - at;
    const std::uint64_t in = left >= 64 ? ~0ull : (1ull << left) - 1;
    const __m512i v = _mm512_maskz_loadu_epi8(in, p + at);
    if (const std::uint64_t high = _mm512_movepi8_mask(v); high && ix.first_high == TextIndex::npos) {
      ix.first_high = at + _tzcnt_u64(high);
      if (!text) return true;
    }
    if (!text) continue;  // only the first octet from 0x80 up is still looked for
    const std::uint64_t lf = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\n'));
    const std::uint64_t cr = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\r'));
    const std::uint64_t nul = _mm512_cmpeq_epi8_mask(v, _mm512_setzero_si512()) & in;
    if (nul || (((cr << 1) | carry) ^ lf)) {  // not text: ix.text stays false
      text = false;
      if (ix.first_high != TextIndex::npos) return true;
      continue;
    }
    carry = cr >> 63;
    if (lf) {
      std::uint32_t* w = ix.lf.room(64);
      for (std::uint64_t d = lf; d; d = _blsr_u64(d)) *w++ = static_cast<std::uint32_t>(at + _tzcnt_u64(d));
      ix.lf.commit(w);
    }
  }
  ix.text = text && carry == 0;  // a CR as the very last octet has no LF after it
  return true;
}

LOCKSTEP_WIDE_TARGET const char* escape_wide(const char* p, const char* end, char*& w, TextIndex* ix) {
  const __m512i letters = _mm512_load_si512(kLetters.to);
  char* out = w;
  const char* const p0 = p;
  std::uint64_t carry = 0;  // the index: a CR in the last octet of the step before
  bool text = true;
  if (ix) ix->reset();
  while (p < end) {
    const auto n = static_cast<unsigned>(end - p < 64 ? end - p : 64);
    const std::uint64_t in = n == 64 ? ~0ull : (1ull << n) - 1;
    __m512i v = _mm512_maskz_loadu_epi8(in, p);
    const std::uint64_t tab = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\t'));
    const std::uint64_t lf = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\n'));
    const std::uint64_t cr = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\r'));
    const std::uint64_t e2 = tab | lf | cr | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('"')) |
                             _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8('\\'));
    // Controls other than TAB, LF and CR, DEL and 0x80 up: \u00XX, left to the caller.
    const std::uint64_t e6 = ((_mm512_cmplt_epu8_mask(v, _mm512_set1_epi8(0x20)) & ~(tab | lf | cr)) |
                              _mm512_cmpge_epu8_mask(v, _mm512_set1_epi8(0x7f))) & in;
    const unsigned k = e6 ? static_cast<unsigned>(_tzcnt_u64(e6)) : n;
    if (ix && text && k == n) {  // a step escaped whole (with an octet for \u00XX, ix is void)
      if (((cr << 1) | carry) ^ lf) {
        text = false;
      } else {
        carry = cr >> 63;
        if (lf) {
          std::uint32_t* at = ix->lf.room(64);
          for (std::uint64_t d = lf; d; d = _blsr_u64(d))
            *at++ = static_cast<std::uint32_t>(static_cast<std::size_t>(p - p0) + _tzcnt_u64(d));
          ix->lf.commit(at);
        }
      }
    }
    if ((e2 | (k ^ 64)) == 0) {  // 64 octets that stand as they are
      _mm512_storeu_si512(out, v);
      out += 64;
      p += 64;
      continue;
    }
    v = _mm512_mask_permutexvar_epi8(v, e2, v, letters);
    // The caller's room is kMaxEscape octets per input octet plus 16: at least 64 while
    // 8 input octets are left.
    out = emit_escaped(v, static_cast<std::uint32_t>(e2), k < 32 ? k : 32, out, end - p < 8);
    if (k > 32)
      out = emit_escaped(_mm512_castsi256_si512(_mm512_extracti64x4_epi64(v, 1)), static_cast<std::uint32_t>(e2 >> 32),
                         k - 32, out, end - p < 32 + 8);
    p += k;
    if (k < n) break;
  }
  w = out;
  if (ix && p == end && static_cast<std::size_t>(end - p0) <= UINT32_MAX) {
    ix->valid = true;
    ix->text = text && carry == 0;  // a CR as the very last octet has no LF after it
  }
  return p;
}

const char* decode_wide(const char* p, const char* end, char*& w, const char* w0, TextIndex* ix,
                        const char* soft_end) {
  Cursor c{p, w, w0, ix};
  c.soft_end = soft_end;
  Ended e = Ended::not_text;
  if (ix && ix->text) {
    c.lf = c.lf_end = ix->lf.room(0);
    e = run<true>(c, end);
    ix->lf.commit(c.lf);
    if (e != Ended::stop) ix->text = false;
  }
  if (e == Ended::not_text) run<false>(c, end);
  w = c.w;
  return c.p;
}

#else

bool wide_decode_enabled() { return false; }
void enable_wide_decode(bool) {}
bool wide_escape_enabled() { return false; }
void enable_wide_escape(bool) {}
const char* escape_wide(const char* p, const char*, char*&, TextIndex* ix) {
  if (ix) ix->reset();
  return p;
}
bool index_text_wide(const char*, std::size_t, TextIndex&) { return false; }
const char* decode_wide(const char* p, const char*, char*&, const char*, TextIndex*, const char*) { return p; }

#endif

}  // namespace lockstep::detail
