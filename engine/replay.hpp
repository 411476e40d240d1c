#pragma once
// Ladders on demand. Tracing a session's ladder (its commands and replies with their
// pairings) costs about a third of a check, and a text report shows the ladders of the
// sessions with an error or a warning only. With a source whose events can be read
// again (a recording in a regular file), the sessions are checked without their
// ladders, and a session that turns out to need one is checked again from its own
// lines: the engine gives the same findings for the same bytes, and this second run
// traces the ladder.
//
// Use: a Checker without ladders (CheckerLimits::ladder 0) over the source, fed through
// on(); complete() in the Checker's sink.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "engine/checker.hpp"
#include "engine/source.hpp"

namespace lockstep {

class LadderReplay {
 public:
  // The events of open sessions noted at most by default (16 octets each): memory stays
  // bounded. Past it, no more are noted, and the sessions that start afterwards are
  // traced from the start (see on()).
  static constexpr std::size_t kMaxSpans = std::size_t{1} << 22;

  // `traced`: the limits of the second run (its ladder's size above all); `info` and
  // `name` as the Checker over `src` has them.
  LadderReplay(const Source& src, SourceInfo info, std::string name, CheckerLimits traced,
               std::size_t max_spans = kMaxSpans);

  // Feeds `ev` to `checker`, noting where it lies in the file. Once most sessions ended
  // so far needed their ladder, or no more events are noted, the sessions that start
  // afterwards are traced from their start (Checker::trace_new_sessions).
  void on(Checker& checker, const SourceEvent& ev);
  enum class Outcome {
    as_is,     // no ladder wanted (no error or warning), or traced from its start
    replayed,  // checked again from its lines: `r` has its ladder
    changed,   // its lines were not in the file as they had been: `r` has no ladder
    unnoted,   // its lines were not noted (kMaxSpans): `r` has no ladder
  };
  // A session the Checker ended. One with an error or a warning is checked again from
  // its lines and replaced by that run's result, ladder and all.
  Outcome complete(SessionResult& r);
  // Whether sessions are traced from their start now (see on()).
  bool tracing_from_start() const { return tracing_; }
  // Sessions checked again, and those whose lines could not be read again.
  std::uint64_t replayed() const { return replayed_; }
  std::uint64_t failed() const { return failed_; }
  // Sessions with problems whose lines were not noted: more than kMaxSpans events of
  // open sessions were waiting (a recording of many long sessions that do not end).
  std::uint64_t unnoted() const { return unnoted_; }

 private:
  void note(const SourceEvent& ev);
  void forget(const std::string& conn);
  Outcome replay(SessionResult& r, const std::vector<std::pair<std::uint64_t, std::uint64_t>>& spans);

  const Source& src_;
  SourceInfo info_;
  std::string name_;
  CheckerLimits limits_;
  // The file's octets of each open session's events, in order.
  std::unordered_map<std::string, std::vector<std::pair<std::uint64_t, std::uint64_t>>> spans_;
  const SourceEvent* current_ = nullptr;  // the event being checked
  bool ended_current_ = false;            // complete() took the current event's connection
  std::uint64_t sessions_ = 0, replayed_ = 0, failed_ = 0, unnoted_ = 0;
  std::size_t max_spans_;
  std::size_t noted_ = 0;  // spans held in spans_
  bool full_ = false;      // kMaxSpans reached: no more noted
  bool tracing_ = false;   // new sessions are traced from their start
};

}  // namespace lockstep
