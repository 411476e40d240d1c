#pragma once
// Internal state of Session, shared by session.cpp (framing, client view),
// align.cpp (the realigned view) and checks.cpp (the rules).
#include <deque>
#include <string>
#include <vector>

#include "engine/session.hpp"

namespace lockstep {

struct Session::Impl {
  explicit Impl(SessionOptions o);

  SessionOptions opt;
  EventQueue events;
  std::uint32_t next_id = 1, error_count = 0;
  Time now = 0;

  // ---- client stream
  enum class CMode : std::uint8_t { command, await_data, content, bdat, await_bdat, tls };
  CMode cmode = CMode::command;
  LineSplitter csplit{8192};
  std::uint64_t coff = 0;
  std::string await_buf;
  bool await_reported = false;
  std::uint64_t data_slot = 0;
  ContentScanner content;
  TextHint hint;  // what the source knows of the bytes being fed (Session::feed)
  std::uint64_t bdat_left = 0;
  bool bdat_prev_cr = false, bdat_binary = false, bdat_reported = false;
  std::uint64_t bdat_size_total = 0;
  std::uint32_t ncommands = 0;
  bool quit_sent = false, expect_auth_line = false, tls_first = false;
  bool client_closed = false, server_closed = false;

  // ---- server stream
  LineSplitter ssplit{8192};
  ReplyAssembler assembler;
  std::uint64_t nreplies = 0;
  std::uint64_t ignored_replies = 0;  // mid-session replies to commands before the source began

  // ---- slots, shared by both views
  BlockDeque<Slot> slots;
  std::uint64_t slot_base = 0, nslots = 0;
  Slot& slot(std::uint64_t i) { return slots[static_cast<std::size_t>(i - slot_base)]; }
  void push_slot(Slot s);

  // ---- client view: strict count pairing
  std::uint64_t client_next = 0;
  std::deque<std::shared_ptr<const Reply>> backlog;
  Capabilities ccaps;
  std::vector<std::shared_ptr<const Command>> c_rcpts;  // RCPTs of the open transaction the client saw accepted
  enum class Txn : std::uint8_t { none, pending, open } c_txn = Txn::none;
  bool c_data_failed = false;        // the client saw its DATA refused
  bool c_bdat_failed = false;        // the client saw a BDAT refused
  bool c_last_bdat_done = false;
  bool c_greeted = false;
  std::uint32_t c_rcpt_unpaired = 0;
  bool c_out_of_range = false, c_mail_utf8 = false, c_lhlo_sent = false, c_lhlo_refused = false;
  std::uint32_t c_rcpt_sent = 0;      // RCPT commands sent since MAIL       // the client saw a reply code outside 2-5
  bool c_auth_cancel = false;        // the client answered a 334 with "*"
  std::uint64_t bdat_slot = UINT64_MAX;  // the slot of the BDAT whose chunk is being sent
  std::uint64_t zero_bdat_pos = UINT64_MAX;  // where a BDAT LAST owed zero replies
  std::vector<std::shared_ptr<const Command>> bdat_saved_rcpts;  // the transaction before an uncertain BDAT LAST
  Txn bdat_saved_txn = Txn::none;
  Time c_last_time = 0;              // when the client last sent bytes  // RCPT commands the client has no reply for yet
  std::vector<std::shared_ptr<const Command>> deferred;  // commands waiting for a slot count
  std::deque<std::uint64_t> group_enders;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> redactions;  // client ranges to mask
  void redact_range(std::uint64_t begin, std::uint64_t end);  // unanswered slots of commands that end a pipeline group

  // ---- realigned view
  std::uint64_t truth_next = 0;
  State st = State::connecting;
  Capabilities tcaps;
  std::uint64_t tcaps_reply = UINT64_MAX;  // the reply tcaps were read from
  std::uint32_t t_rcpts = 0;       // RCPT commands accepted in the transaction
  std::uint32_t t_rcpt_total = 0;  // RCPT commands accepted or not, for the 100 rule
  bool t_mail_body8 = false, t_mail_binary = false, t_last_bdat = false;
  std::uint64_t t_declared_size = 0;    // SIZE= of the open transaction
  bool t_lhlo_reset_txn = false;        // an LHLO reset a transaction: the next RCPT must fail
  bool t_authed = false, t_mail_utf8 = false, t_quit_answered = false;
  Verb t_last_verb = Verb::unknown;     // the last command the server answered
  bool t_last_unknown = false;          // ... was an unrecognised verb
  std::uint32_t pre_lhlo_no_esc = 0;    // replies before LHLO without an enhanced code
  std::uint64_t pre_lhlo_offset = 0;
  bool text_hint_noted = false;
  std::uint64_t excused_from = UINT64_MAX;  // slots from here are excused by a 421
  std::uint64_t surplus = 0, missing = 0, async421 = 0, desync1 = 0;
  std::uint32_t root = 0;          // id of the first desync's root finding
  bool last_was_final = false;     // the last reply was 221 or 421

  struct Op {
    enum Kind : std::uint8_t { pair_op, surplus_op, missing_op } kind;
    std::uint64_t reply, slot;
  };
  struct Hyp {
    std::uint64_t p;
    int cost;
    std::vector<Op> ops;
  };
  std::vector<Hyp> hyps;
  std::deque<std::shared_ptr<const Reply>> window;  // replies of an open ambiguity

  // Both pairings of a reply, kept until both are known, then compared.
  static constexpr std::int64_t kPending = -2, kNone = -1;
  struct Rec {
    std::shared_ptr<const Reply> r;
    std::int64_t cslot = kPending, tslot = kPending;
  };
  std::deque<Rec> recs;
  std::uint64_t rec_base = 0;
  std::uint32_t mispairs = 0;

  // ---- emitting
  Finding& find(std::string_view rule, Dir side, std::string explanation);
  Finding& find_reply(std::string_view rule, const Reply& r, std::string explanation, const Slot* s = nullptr);
  Finding& find_cmd(std::string_view rule, const Command& c, std::string explanation);

  // ---- session.cpp
  void on_client_bytes(std::string_view b);
  void on_client_line(const Line& line);
  void on_end_of_data();
  void make_slots(const std::shared_ptr<const Command>& cmd);
  void materialize();
  void push_rcpt_block(const Slot& proto);
  void decide_data(bool accepted);
  void decide_bdat(bool consumed);
  void on_bdat_reply(int code);
  void on_server_bytes(std::string_view b);
  void on_reply(std::shared_ptr<const Reply> rp);
  void client_pair(Slot& s, const std::shared_ptr<const Reply>& r);
  void drain_backlog();
  Rec& rec(std::uint64_t reply);
  void resolve(std::uint64_t reply);
  void close(Dir d, Time t);
  void finish(bool capture_ended);

  // ---- align.cpp
  void align(const std::shared_ptr<const Reply>& r);
  void extend(const std::shared_ptr<const Reply>& r);
  void commit(const Hyp& h);
  void commit_pair(Slot& s, const std::shared_ptr<const Reply>& r);
  void commit_surplus(const std::shared_ptr<const Reply>& r, bool first_edit);
  void commit_missing(Slot& s, bool first_edit);
  int cost(const Slot& s, const Reply& r) const;
  void settle(bool at_end = false);  // commit the best hypothesis now

  // ---- checks.cpp
  void check_reply_syntax(const Reply& r);
  void check_pair(const Slot& s, const Reply& r, State before);
  void check_capabilities(const Reply& r);
  void check_command(const Command& c);
  void check_content(const ContentReport& rep);
  void check_pipelining(const Command& c);
  void note_owed_recipients(const Reply& r);
};

// The rule a command breaks when another is pipelined behind it ("" when none).
std::string_view group_end_rule(const Slot& s);
std::string escape_bytes(std::string_view s, std::size_t max = 120);

}  // namespace lockstep
