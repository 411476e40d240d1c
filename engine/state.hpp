#pragma once
// The session state machine: every state and transition in one table (state.cpp).
#include <cstdint>
#include <string_view>

#include "engine/fit.hpp"

namespace lockstep {

enum class State : std::uint8_t {
  unknown,     // the source started mid-session: nothing is assumed
  connecting,  // waiting for the greeting
  greeted,     // 220 seen, no LHLO yet
  refused,     // 554 or 521 greeting: only QUIT makes sense
  ready,       // LHLO accepted, no transaction
  mail,        // MAIL accepted
  rcpt,        // at least one RCPT accepted
  data,        // 354 seen: the client sends content
  bdat,        // chunks of a BDAT transaction accepted
  delivering,  // end of data sent: per-recipient replies due
  tls,         // STARTTLS accepted: the rest is encrypted
  closing,     // 221 or 421 seen: the server closes
};
std::string_view to_string(State s);

// What happened, as the state machine sees it: a reply paired with a slot.
enum class Trigger : std::uint8_t {
  greeting, lhlo, mail, rcpt, data, bdat, bdat_last, end_of_data, end_of_data_last, rset,
  quit, starttls, other
};

// Reply classes the table distinguishes.
enum class Outcome : std::uint8_t { positive, intermediate, negative, shutdown, refuse };

Outcome outcome_of(int code);
Trigger trigger_of(SlotKind kind, Verb verb, bool last_of_block);

// The state after `trigger` got a reply of class `outcome` in state `from`.
State transition(State from, Trigger trigger, Outcome outcome);

}  // namespace lockstep
