#pragma once
// The wide (AVX-512 VBMI2) paths, chosen at run time: the decoder and the escaper of a
// recording's JSON strings, and the TextIndex of raw octets for the content check.
//
// The wide decoder of JSON strings is used for the "data" strings of a
// recording when the CPU has it. It decodes 64 input octets per step, whatever escapes
// they hold (every two-octet escape and \u00XX), and leaves the rare cases to the
// byte-wise decoder in jsonl.cpp: NUL, CR and LF written as \u escapes, a code point
// above U+00FF, a malformed or unknown escape, a raw control octet or one from 0x80 up,
// the end of the string. Both produce the same octets and the same TextIndex (tested,
// and fuzzed).
#include <cstddef>
#include <cstdint>

#include "engine/textindex.hpp"

namespace lockstep::detail {

// True when this CPU runs decode_wide() and it has not been turned off.
bool wide_decode_enabled();
// Turns the wide decoder off or on (on only where the CPU has it); for tests and the
// benchmark's comparison (LOCKSTEP_NO_WIDE_DECODE=1 in the environment turns it off).
void enable_wide_decode(bool on);

// Decodes the inside of a JSON string from p, which must be at a character boundary (not
// inside an escape), writing the octets at w, where the caller provides (end - p) + 64
// octets (whole 64-octet blocks are stored). Stops at the first octet it leaves to the
// byte-wise decoder (the closing quote included) and returns its position; w is advanced
// past what was written. `w0` is where the string's octets begin (for index positions).
// With ix->text set, the LF positions go to ix->lf, and ix->text turns false on a bare CR
// or LF, as the byte-wise decoder would rule (ix->lf means nothing once it is false).
// It also stops at the first step that begins at or after `soft_end`, though not while a
// CR escape waits for the LF escape after it, until kSoftEndOverrun octets past soft_end
// (where a wait ends the index); the caller's room must reach that far, plus the 64.
const char* decode_wide(const char* p, const char* end, char*& w, const char* w0, TextIndex* ix,
                        const char* soft_end);
inline constexpr std::size_t kSoftEndOverrun = 128;

// The wide escaper of recordings' strings (the same CPUs): writes the JSON escape of the
// octets from p, 64 per step, every TAB, LF, CR, '"' and '\\' as backslash and letter, and
// stops at the first octet that wants \u00XX (another control, DEL, 0x80 up) or at end;
// returns where it stopped and advances w. Reads nothing past end (masked loads); w needs
// the room json_escape_to's callers give: kMaxEscape octets per input octet plus 16.
// With `ix`, it also builds the TextIndex of the octets from p as index_text_wide() would
// (the proxy's content check then needs no pass of its own); ix is valid only when it
// escaped them all (none wanted \u00XX, so there is no NUL and none from 0x80 up).
bool wide_escape_enabled();
void enable_wide_escape(bool on);  // LOCKSTEP_NO_WIDE_ESCAPE=1 turns it off
const char* escape_wide(const char* p, const char* end, char*& w, TextIndex* ix = nullptr);

// The TextIndex of raw octets (as a reader builds it while decoding a recording), for the
// content check of octets whose source has none (ContentScanner::feed): valid; text when
// there is no NUL, every CR is directly followed by LF and every LF directly preceded by
// CR, and then every LF position; the first octet from 0x80 up. False, with ix
// untouched, when the wide paths are off (the same switch as the escaper's).
bool index_text_wide(const char* p, std::size_t n, TextIndex& ix);

}  // namespace lockstep::detail
