#include "engine/state.hpp"

#include <array>

namespace lockstep {

std::string_view to_string(State s) {
  switch (s) {
    case State::unknown: return "unknown";
    case State::connecting: return "connecting";
    case State::greeted: return "greeted";
    case State::refused: return "refused";
    case State::ready: return "ready";
    case State::mail: return "mail";
    case State::rcpt: return "rcpt";
    case State::data: return "data";
    case State::bdat: return "bdat";
    case State::delivering: return "delivering";
    case State::tls: return "tls";
    case State::closing: return "closing";
  }
  return "?";
}

Outcome outcome_of(int code) {
  if (code == 421) return Outcome::shutdown;
  if (code == 554 || code == 521) return Outcome::refuse;
  switch (code / 100) {
    case 2: return Outcome::positive;
    case 3: return Outcome::intermediate;
    default: return Outcome::negative;
  }
}

Trigger trigger_of(SlotKind kind, Verb verb, bool last) {
  switch (kind) {
    case SlotKind::greeting: return Trigger::greeting;
    case SlotKind::end_of_data: return last ? Trigger::end_of_data_last : Trigger::end_of_data;
    case SlotKind::bdat_last: return last ? Trigger::end_of_data_last : Trigger::end_of_data;
    case SlotKind::command: break;
  }
  switch (verb) {
    case Verb::lhlo: return Trigger::lhlo;
    case Verb::mail: return Trigger::mail;
    case Verb::rcpt: return Trigger::rcpt;
    case Verb::data: return Trigger::data;
    case Verb::bdat: return Trigger::bdat;
    case Verb::rset: return Trigger::rset;
    case Verb::quit: return Trigger::quit;
    case Verb::starttls: return Trigger::starttls;
    default: return Trigger::other;
  }
}

namespace {
using Mask = std::uint16_t;
constexpr Mask bit(State s) { return static_cast<Mask>(1u << static_cast<unsigned>(s)); }
constexpr Mask kAny = 0xffff;
constexpr Mask kTxn = bit(State::mail) | bit(State::rcpt) | bit(State::bdat) | bit(State::unknown);

struct Row {
  Mask from;
  Trigger trigger;
  Outcome outcome;
  State to;
};

// The whole protocol on one page. Rows are tried in order; the first match wins; no
// match leaves the state as it is (a refused command changes nothing, RFC 5321 §4.1.4).
constexpr std::array kTable{
    // A 421 to anything: the server is closing (RFC 5321 §3.8).
    Row{kAny, Trigger::other, Outcome::shutdown, State::closing},
    Row{kAny, Trigger::greeting, Outcome::positive, State::greeted},
    Row{kAny, Trigger::greeting, Outcome::refuse, State::refused},
    // LHLO accepted: EHLO semantics, a reset (RFC 2033 §4.1, RFC 5321 §4.1.4).
    Row{kAny, Trigger::lhlo, Outcome::positive, State::ready},
    Row{kAny, Trigger::rset, Outcome::positive, State::ready},
    Row{kAny, Trigger::quit, Outcome::positive, State::closing},
    Row{kAny, Trigger::starttls, Outcome::positive, State::tls},
    Row{bit(State::ready) | bit(State::unknown) | bit(State::greeted), Trigger::mail,
        Outcome::positive, State::mail},
    Row{kTxn, Trigger::rcpt, Outcome::positive, State::rcpt},
    Row{bit(State::rcpt) | bit(State::unknown), Trigger::data, Outcome::intermediate, State::data},
    Row{kTxn, Trigger::bdat, Outcome::positive, State::bdat},
    // The per-recipient block: the last reply ends the transaction (RFC 2033 §4.2).
    Row{kAny, Trigger::end_of_data_last, Outcome::positive, State::ready},
    Row{kAny, Trigger::end_of_data_last, Outcome::negative, State::ready},
    Row{kAny, Trigger::end_of_data_last, Outcome::refuse, State::ready},
    Row{kAny, Trigger::end_of_data, Outcome::positive, State::delivering},
    Row{kAny, Trigger::end_of_data, Outcome::negative, State::delivering},
    Row{kAny, Trigger::end_of_data, Outcome::refuse, State::delivering},
};
}  // namespace

State transition(State from, Trigger trigger, Outcome outcome) {
  for (const Row& r : kTable) {
    if ((r.from & bit(from)) == 0 || r.outcome != outcome) continue;
    if (r.trigger == trigger || (r.trigger == Trigger::other && outcome == Outcome::shutdown))
      return r.to;
  }
  return from;
}

}  // namespace lockstep
