#pragma once
// Which reply codes can answer which slot (lmtp-rules.md §3.2), and the hints that text
// and enhanced codes give about the command a reply was meant for (DESYNC-6).
#include <string_view>

#include "engine/command.hpp"
#include "engine/reply.hpp"

namespace lockstep {

enum class SlotKind : std::uint8_t { greeting, command, end_of_data, bdat_last };

enum class Fit : std::uint8_t {
  listed,      // in the table or generic
  unlisted,    // a possible class, not listed: SMTP-4.3.2-REPLY-IN-TABLE
  impossible,  // contradicts the command/reply sequence: SMTP-4.3.1 / DESYNC-2
};

// How well `code` answers a slot of this kind and verb.
Fit fit(SlotKind kind, Verb verb, int code, bool private_verb = false);

// A short reason why `code` is impossible for the slot, for explanations.
std::string_view why_impossible(SlotKind kind, Verb verb, int code);

// 0 when the reply's enhanced code or text fits the slot or says nothing, 1 when it
// points at another command (a hint only, never a violation).
int hint_mismatch(SlotKind kind, Verb verb, const Reply& r);

}  // namespace lockstep
