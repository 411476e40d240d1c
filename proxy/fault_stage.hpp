#pragma once
// The fault stages of one connection: they take the bytes the proxy read from each
// peer and say what to write, to whom, when, and which of it lockstep made up. Sans-I/O
// like the engine: the relay executes the steps, tests read them directly.
//
// Positions come from a tracker: an engine Session fed the bytes as the peers sent them,
// which pairs each reply with its command the way the client counts. Replies are held
// only until they are complete (a reply-level fault needs the whole reply); commands
// until their line is complete; content goes through line by line.
#include <chrono>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "engine/session.hpp"
#include "proxy/fault.hpp"

namespace lockstep::proxy {

struct Step {
  enum class Kind : std::uint8_t {
    write,  // `bytes` to the peer receiving stream `stream` (Dir::server: to the client)
    wait,   // pause this direction for `delay`
    note,   // a fault fired: `bytes` is the sentence; [offset, offset+length) of `stream` is what it wrote
    close,  // close both connections (the peers see EOF)
    reset,  // reset the client's connection, close the upstream
    hold,   // the reply in `bytes` is held (interception): wait for release()
  };
  Kind kind = Kind::write;
  Dir stream = Dir::server;
  std::string bytes;
  std::uint64_t offset = 0, length = 0;
  std::chrono::microseconds delay{0};
};

class FaultStage {
 public:
  // `faults`: those chosen for this connection; `seed` drives the jitter.
  FaultStage(std::vector<FaultSpec> faults, std::uint64_t seed);

  // Whether any fault changes stream `d` (otherwise its bytes pass untouched).
  bool acts_on(Dir d) const { return acts_[d == Dir::client ? 0 : 1]; }
  // Bytes read from the peer sending stream `d`; appends the steps to `out`.
  void from(Dir d, std::string_view bytes, Time t, std::vector<Step>& out);
  // That peer closed its side: everything held goes out unchanged.
  void eof(Dir d, std::vector<Step>& out);
  // Bytes held back now in stream `d` (bounded: kMaxHeld).
  std::size_t held(Dir d) const;
  // How often each fault fired.
  const std::vector<std::uint32_t>& fired() const { return fired_; }

  // Interception (the web view): the next complete reply is held. The steps of from()
  // then end with a `hold` step carrying it, and nothing more of the server stream goes
  // out until release() says what becomes of it: passed on (faults still apply),
  // dropped, or replaced by `text` (lines joined with CRLF). Both are recorded as notes.
  enum class Release : std::uint8_t { pass, drop, edit };
  void hold_next() { hold_armed_ = true; }
  bool holding() const { return holding_; }
  const std::string& held_label() const { return hold_label_; }
  void release(Release how, std::string_view text, Time t, std::vector<Step>& out);

  static constexpr std::size_t kMaxHeld = 256 * 1024;

 private:
  struct Position {  // where a reply stands, in the client's count
    bool paired = false;
    SlotKind kind = SlotKind::command;
    Verb verb = Verb::unknown;
    std::uint32_t command = 0;  // 0-based index of the command
    std::uint32_t ordinal = 0;  // among the commands of its verb, 1-based
    std::uint32_t k = 0, n = 0; // per-recipient reply k of n
    std::uint32_t txn = 0;      // which end of data, 1-based
    std::string label;          // the slot's label ("RCPT TO:<a@b>", "end of data (reply 1/2, ...)")
  };
  struct Raw {  // a step before offsets are assigned
    Step step;
    bool coalesce = false;
    bool separate = false;  // a fragment: never merged with the writes around it
  };

  void pull();
  void server_bytes(Time t, std::vector<Step>& out);
  void apply_reply(std::string bytes, const Position& pos, int code, std::vector<Raw>& raw);
  void client_bytes(std::vector<Step>& out);
  void client_command(std::string line, std::vector<Raw>& raw);
  bool client_content(std::vector<Raw>& raw);
  bool matches(const FaultSpec& f, std::size_t i, const Position& pos);
  bool matches_command(const FaultSpec& f, std::size_t i, Verb verb, std::uint32_t ordinal, std::uint32_t index);
  std::chrono::milliseconds delay_of(const FaultSpec& f);  // ms plus a draw of jitter
  void note(std::vector<Raw>& raw, Dir stream, const FaultSpec& f, std::string_view what, std::uint64_t length);
  void write(std::vector<Raw>& raw, Dir stream, std::string bytes, std::size_t fragment = 0);
  void commit(std::vector<Raw>& raw, std::vector<Step>& out);
  void flush_coalesced(std::vector<Step>& out);

  std::vector<FaultSpec> faults_;
  std::vector<std::uint32_t> fired_;
  std::mt19937_64 rng_;
  bool acts_[2] = {false, false};
  Session tracker_;
  std::uint64_t out_off_[2] = {0, 0};  // octets of each stream written (or coalesced) so far

  // Server stream.
  std::string held_s_;                 // server octets read but not yet passed on
  std::uint64_t held_s_base_ = 0;      // stream offset of held_s_[0]
  struct Done { std::uint64_t index, offset, end; int code; };
  std::vector<Done> done_;             // replies the tracker completed
  std::map<std::uint64_t, Position> pairs_;           // reply index -> position
  std::map<std::uint32_t, std::uint32_t> ordinals_;   // command index -> ordinal of its verb
  std::uint32_t verb_count_[32] = {};
  std::uint32_t txn_ = 0;
  std::vector<Raw> swapped_;           // a reply waiting for the next one
  bool swap_waiting_ = false;
  std::string coalesced_;
  bool last_separate_ = false;
  bool ended_ = false;                 // a close or reset went out         // the last write step was a fragment
  std::map<std::uint32_t, std::size_t> early_drop_;  // command index -> early fault: its real reply is dropped
  bool drop_354_ = false;              // pipeline-body: the server's own 354 is not passed on
  bool hold_armed_ = false, holding_ = false;  // interception
  std::string hold_bytes_, hold_label_;
  Position hold_pos_;
  int hold_code_ = 0;
  std::vector<Done> hold_rest_;        // replies completed after the held one, not yet handled
  void note_text(std::vector<Raw>& raw, Dir stream, std::string text, std::uint64_t length);

  // Client stream.
  enum class CMode : std::uint8_t { command, after_data, content, bdat };
  CMode cmode_ = CMode::command;
  std::string held_c_;
  std::uint64_t bdat_left_ = 0;
  std::uint32_t ccount_ = 0;           // commands seen
  std::uint32_t cverb_count_[32] = {};
  std::uint64_t content_octets_ = 0;   // of the current message
  bool content_mid_line_ = false;      // a long content line was passed on in parts
  std::string held_term_;              // the last content line's line end, held: it may start the end of data
  bool content_started_ = false;
  int line_fault_ = -1;                // the bare-lf/bare-cr fault on this message's content lines
};

}  // namespace lockstep::proxy
