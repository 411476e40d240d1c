#pragma once
// Runs a Session per connection of a source and collects, per session, a ladder of
// commands and replies with their pairings and findings. What `check`, the scenario
// runner and the web view show is built from SessionResult.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/session.hpp"
#include "engine/source.hpp"

namespace lockstep {

struct LadderEntry {
  // User-provided: a new entry (ladder.emplace_back()) is then not zero-filled whole
  // before its members are initialised.
  LadderEntry() noexcept {}
  Dir dir = Dir::client;
  std::string text;              // the command line, the reply (first line), or a content summary
  std::uint64_t offset = 0;      // in its stream
  std::uint64_t reply_index = UINT64_MAX;
  Time time = 0;
  bool content = false;
  bool fault = false;            // a fault lockstep injected fired here (text says what it did)
  bool injected = false;         // these bytes were written by lockstep (a fault), not by the peer
  std::string client_pair;       // the command the client pairs this reply with
  std::string true_pair;         // the command it answers (empty: none, a surplus)
  bool true_known = false;
  std::string mispair;           // the narrative sentence when the two differ
  std::vector<std::uint32_t> findings;  // ids
};

struct SessionResult {
  std::string source;            // the file it came from
  std::string conn, client, server;
  SourceInfo info;
  std::vector<LadderEntry> ladder;
  std::uint64_t ladder_dropped = 0;
  std::vector<Finding> findings;
  std::uint64_t findings_dropped = 0;
  std::vector<std::string> narrative;   // the desync story, in order
  std::vector<std::string> statuses;    // the client's own delivery status lines
  std::vector<std::string> faults;      // faults lockstep injected
  std::uint64_t commands = 0, replies = 0;
  std::uint32_t errors = 0, warnings = 0, notes = 0;
  std::string final_state;
  Time start = 0, end = 0;
  bool desynced = false;
  bool traced = false;           // the ladder was kept from the session's first event
  // An error or a warning: the sessions whose ladder a text report shows by default.
  bool has_problems() const { return errors > 0 || warnings > 0; }
};

struct CheckerLimits {
  std::size_t ladder = 2000;    // entries kept per session (0: no ladder, findings only)
  std::size_t findings = 500;   // findings kept per session
  std::size_t narrative = 60;
  bool redaction = false;       // sessions note content and secrets (SessionOptions::redaction)
};

class Checker {
 public:
  using Sink = std::function<void(SessionResult&&)>;
  Checker(SourceInfo info, std::string source_name, Sink sink, CheckerLimits limits = {});
  ~Checker();

  void on(const SourceEvent& ev);
  // A data event without building a SourceEvent (the proxy's hot path): the same as
  // on() with kind data. `ix`, when given, describes `bytes` (see TextIndex).
  void data(const std::string& conn, Dir dir, std::string_view bytes, Time t, const TextIndex* ix = nullptr);
  // Called for every finding as soon as the engine reports it (live output).
  void on_finding(std::function<void(const std::string& conn, const Finding&)> f) { on_finding_ = std::move(f); }
  // Called for every engine event as it happens (a live ladder).
  void on_event(std::function<void(const std::string& conn, const Event&)> f) { on_event_ = std::move(f); }
  // Ends every session still open (the source ended).
  void finish();
  // Sessions that start from now on keep a ladder of up to `ladder` entries (those open
  // go on as they began).
  void trace_new_sessions(std::size_t ladder) { limits_.ladder = ladder; }
  // The engine of an open connection, or null.
  Session* session(const std::string& conn);
  // The result so far of an open connection (its ladder and findings as they grow, the
  // counts and state as of now), or null.
  const SessionResult* current(const std::string& conn);

 private:
  struct Run;
  Run& run(const std::string& conn, Time t, bool mid_session = false);
  void drain(Run& r);
  void done(const std::string& conn, Time t, bool capture_ended);

  SourceInfo info_;
  std::string name_;
  Sink sink_;
  std::function<void(const std::string& conn, const Finding&)> on_finding_;
  std::function<void(const std::string& conn, const Event&)> on_event_;
  CheckerLimits limits_;
  std::map<std::string, std::unique_ptr<Run>> runs_;
  std::string last_conn_;  // the connection of the last event, and its run
  Run* last_run_ = nullptr;
};

}  // namespace lockstep
