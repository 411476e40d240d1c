#pragma once
// What the engine reports: parsed commands and replies, pairings in the client's view
// and in the realigned (true) view, content summaries, state changes and findings.
#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "engine/command.hpp"
#include "engine/fit.hpp"
#include "engine/reply.hpp"
#include "engine/rules.hpp"

namespace lockstep {

// How a desync was proven (lmtp-rules.md §15.2).
enum class Proof : std::uint8_t {
  none,
  order,            // DESYNC-1: needs the order of both streams
  impossible_code,  // DESYNC-2
  count,            // DESYNC-3
  accounting,       // DESYNC-5
};
std::string_view to_string(Proof p);

struct Finding {
  std::uint32_t id = 0;            // 1-based within the session
  const Rule* rule = nullptr;
  Severity severity = Severity::note;
  Dir side = Dir::server;          // whose behaviour the finding is about
  Dir stream = Dir::server;        // which stream the offsets refer to
  std::uint64_t offset = 0, length = 0;
  bool located = false;            // offset/length point at the offending bytes
  std::string bytes;               // the offending bytes, escaped, shortened
  std::string command;             // the command the offending reply/line belongs to
  Time time = 0;
  Proof proof = Proof::none;
  std::string explanation;
  std::uint32_t cause = 0;         // id of the root finding this one follows from (0: none)
  bool injected = false;           // about bytes lockstep injected, or follows from such a finding
  bool after_fault = false;        // not injected, but after a fault lockstep injected in this session
};

struct CommandEvent { std::shared_ptr<const Command> command; };
struct ReplyEvent { std::shared_ptr<const Reply> reply; };
struct ContentEvent {
  std::uint64_t offset = 0, wire_octets = 0, size = 0, lines = 0;
  bool complete = false, visible = true;
  Time time = 0;
};
// One reply paired with a slot. `client_view` pairs strictly by count, as the client
// does; otherwise the pairing is the realigned one (DESYNC-7).
struct PairEvent {
  bool client_view = true;
  std::uint64_t reply_index = 0;
  std::string slot;               // label of the slot, empty when unpaired (surplus)
  std::shared_ptr<const Reply> reply;  // the reply paired
  // The slot's position, for the fault stages: its kind, the command's verb and index
  // (UINT32_MAX for the greeting and per-recipient replies), per-recipient slot k of n.
  SlotKind kind = SlotKind::command;
  Verb verb = Verb::unknown;
  std::uint32_t command = UINT32_MAX;
  std::uint32_t k = 0, n = 0;
};
// A reply the client pairs with another command than the one it answers.
struct MispairEvent {
  std::uint64_t reply_index = 0;
  std::string client_slot;        // what the client takes it for ("" = its next command)
  std::string true_slot;          // what it answers ("" = nothing: a surplus reply)
  std::string reply;
  std::string text;               // the sentence for the report
};
struct StateEvent { std::string from, to; Time time = 0; };
struct CloseEvent { Dir dir = Dir::client; Time time = 0; };

using Event = std::variant<CommandEvent, ReplyEvent, ContentEvent, PairEvent, MispairEvent,
                           StateEvent, Finding, CloseEvent>;

}  // namespace lockstep
