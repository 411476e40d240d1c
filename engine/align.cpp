// The realigned view (DESYNC-7): pairs each reply with the slot it really answers.
// While replies fit their slots this is plain count pairing. When a reply is impossible
// for its slot, several explanations stay open — the reply is the slot's (wrong) reply,
// a surplus reply, or replies for earlier slots are missing — and each later reply is
// scored under each of them (a Viterbi search over the alignment offset). The cheapest
// explanation is committed once it leads by a full edit, or after a bounded window.
#include <fmt/format.h>

#include <algorithm>

#include "engine/session_impl.hpp"

namespace lockstep {

namespace {
constexpr int kEdit = 6;        // a surplus or a missing reply
constexpr int kImpossible = 8;  // a code the slot can never get
constexpr int kUnlisted = 1;    // a possible but unlisted code
constexpr int kHint = 1;        // text or enhanced code points at another command
constexpr int kAsync421 = 1;    // a 421 that answers no command (RFC 5321 §3.8)
constexpr std::size_t kMaxMissing = 3;
constexpr std::size_t kWindow = 24;
}  // namespace

int Session::Impl::cost(const Slot& s, const Reply& r) const {
  const bool priv = s.cmd && !s.cmd->verb_text.empty() && (s.cmd->verb_text[0] == 'X' || s.cmd->verb_text[0] == 'x');
  int c = 0;
  switch (fit(s.kind, s.verb(), r.code, priv)) {
    case Fit::listed: break;
    case Fit::unlisted: c += kUnlisted; break;
    case Fit::impossible: c += kImpossible; break;
  }
  return c + kHint * hint_mismatch(s.kind, s.verb(), r);
}

void Session::Impl::align(const std::shared_ptr<const Reply>& r) {
  if (hyps.empty()) {
    if (truth_next < nslots && truth_next < excused_from) {
      Slot& s = slot(truth_next);
      if (r->code == 334 && s.verb() == Verb::auth) {  // an AUTH challenge: the slot stays open
        commit_pair(s, r);
        return;
      }
      if (cost(s, *r) < kImpossible) {  // the common case: it fits
        ++truth_next;
        commit_pair(s, r);
        return;
      }
    } else if (r->code == 421) {
      // A 421 may come with no command pending (RFC 5321 §3.8).
      ++async421;
      commit_surplus(r, false);
      return;
    } else {
      commit_surplus(r, true);
      return;
    }
    hyps.push_back(Hyp{truth_next, 0, {}});
  }
  window.push_back(r);
  extend(r);
  std::sort(hyps.begin(), hyps.end(), [](const Hyp& a, const Hyp& b) { return a.cost < b.cost; });
  if (hyps.size() == 1 || hyps[1].cost - hyps[0].cost >= kEdit || window.size() >= kWindow) settle();
}

void Session::Impl::extend(const std::shared_ptr<const Reply>& r) {
  std::vector<Hyp> next;
  auto offer = [&](Hyp h) {
    for (auto& x : next)
      if (x.p == h.p) {
        if (h.cost < x.cost) x = std::move(h);
        return;
      }
    next.push_back(std::move(h));
  };
  for (const Hyp& h : hyps) {
    // The reply answers the next slot.
    if (h.p < nslots) {
      Hyp a = h;
      a.cost += cost(slot(h.p), *r);
      a.ops.push_back({Op::pair_op, r->index, h.p});
      a.p = h.p + 1;
      offer(std::move(a));
    }
    // The reply answers nothing.
    Hyp b = h;
    b.cost += r->code == 421 ? kAsync421 : kEdit;
    b.ops.push_back({Op::surplus_op, r->index, 0});
    offer(std::move(b));
    // Replies for the next k slots never came; this one answers the slot after them.
    for (std::size_t k = 1; k <= kMaxMissing && h.p + k < nslots; ++k) {
      Hyp c = h;
      c.cost += static_cast<int>(k) * kEdit + cost(slot(h.p + k), *r);
      for (std::size_t i = 0; i < k; ++i) c.ops.push_back({Op::missing_op, 0, h.p + i});
      c.ops.push_back({Op::pair_op, r->index, h.p + k});
      c.p = h.p + k + 1;
      offer(std::move(c));
    }
  }
  hyps = std::move(next);
}

void Session::Impl::settle(bool at_end) {
  // At the end, slots a hypothesis leaves unanswered are missing replies too.
  if (at_end)
    for (Hyp& h : hyps) h.cost += static_cast<int>(std::min(nslots, excused_from) > h.p ? std::min(nslots, excused_from) - h.p : 0) * kEdit;
  std::sort(hyps.begin(), hyps.end(), [](const Hyp& a, const Hyp& b) { return a.cost < b.cost; });
  const Hyp best = hyps.front();
  hyps.clear();
  window.clear();
  commit(best);
}

void Session::Impl::commit(const Hyp& h) {
  bool first_edit = true;
  std::size_t wi = 0;
  for (const Op& op : h.ops) {
    switch (op.kind) {
      case Op::pair_op: {
        truth_next = op.slot + 1;
        commit_pair(slot(op.slot), rec(op.reply).r);
        ++wi;
        break;
      }
      case Op::surplus_op:
        commit_surplus(rec(op.reply).r, first_edit);
        first_edit = false;
        ++wi;
        break;
      case Op::missing_op:
        truth_next = op.slot + 1;
        commit_missing(slot(op.slot), first_edit);
        first_edit = false;
        break;
    }
  }
  truth_next = h.p;
}

void Session::Impl::commit_surplus(const std::shared_ptr<const Reply>& r, bool first_edit) {
  ++surplus;
  if (opt.trace) events.emplace_back(PairEvent{false, r->index, {}, r});
  if (r->code == 421) {  // asynchronous shutdown: allowed with no command pending
    find_reply("SMTP-3.8-421-ASYNC", *r,
               "a 421 with no command waiting for it: a server may announce its shutdown at any time; replies "
               "still owed are excused (RFC 5321 §3.8)")
        .severity = Severity::note;
    if (std::string t = std::string(r->first_text()); opt.ordered && c_last_time > 0 && r->time - c_last_time < 300000000LL &&
        (t.find("nactivity") != std::string::npos || t.find("imeout") != std::string::npos || t.find("idle") != std::string::npos))
      find_reply("SMTP-4.5.3.2.7-SERVER-TIMEOUT", *r,
                 fmt::format("the server gave up on an idle client after {:.1f} s; it should wait at least 5 minutes "
                             "(RFC 5321 §4.5.3.2.7)",
                             static_cast<double>(r->time - c_last_time) / 1e6))
          .severity = Severity::warning;
    last_was_final = true;
    excused_from = std::min(excused_from, truth_next);
    note_owed_recipients(*r);
    st = State::closing;
  } else if (first_edit) {
    // Where the surplus sits: inside a per-recipient block, or after another command.
    const Slot* prev = truth_next > slot_base && truth_next - 1 < nslots ? &slot(truth_next - 1) : nullptr;
    const Slot* cur = truth_next < nslots && truth_next >= slot_base ? &slot(truth_next) : nullptr;
    const bool in_block = (cur && cur->kind == SlotKind::end_of_data) || (prev && prev->kind == SlotKind::end_of_data);
    const Slot* block = cur && cur->kind == SlotKind::end_of_data ? cur : prev;
    Finding* rootf;
    if (last_was_final) {
      rootf = &find_reply("SMTP-4.1.1.10-QUIT-221", *r,
                          fmt::format("'{}' came after the server's final reply; after 221 (or 421) the server "
                                      "closes and sends nothing more (RFC 5321 §4.1.1.10)",
                                      r->summary(60)));
    } else if (zero_bdat_pos != UINT64_MAX && truth_next == zero_bdat_pos) {
      const bool refusal = r->code / 100 == 5 || r->code / 100 == 4;
      rootf = &find_reply("LMTP-4.3-BDAT-LAST-ZERO-REPLIES", *r,
                          fmt::format("no recipient was accepted, so BDAT LAST gets zero replies (RFC 2033 §4.3), but "
                                      "'{}' came{}",
                                      r->summary(60),
                                      refusal ? "; as a refusal of the BDAT itself this is a case RFC 2033 leaves open" : ""));
      if (refusal) rootf->severity = Severity::note;
    } else if (prev && prev->kind == SlotKind::bdat_last) {
      rootf = &find_reply("LMTP-4.3-BDAT-LAST-PER-RCPT", *r,
                          fmt::format("BDAT LAST owes one reply per accepted recipient ({} here), but '{}' is one more "
                                      "(RFC 2033 §4.3)",
                                      prev->n, r->summary(60)),
                          prev);
    } else if (prev && prev->kind == SlotKind::command && prev->verb() == Verb::bdat && !prev->cmd->bdat_last) {
      rootf = &find_reply("LMTP-4.3-BDAT-NONLAST-ONE-REPLY", *r,
                          fmt::format("a BDAT without LAST gets exactly one reply, but '{}' is a second one "
                                      "(RFC 2033 §4.3)",
                                      r->summary(60)),
                          prev);
    } else if (in_block && block) {
      rootf = &find_reply("LMTP-4.2-PER-RCPT-REPLIES", *r,
                          fmt::format("after end of data the server owes one reply per accepted recipient ({} "
                                      "here), but '{}' is one more: a surplus reply (RFC 2033 §4.2)",
                                      block->n, r->summary(60)),
                          block);
      Finding& d3 = find_reply("DESYNC-3-PER-RCPT-COUNT", *r,
                               fmt::format("more per-recipient replies than accepted recipients ({})", block->n), block);
      d3.proof = opt.ordered ? Proof::order : Proof::impossible_code;
      d3.cause = rootf->id;
    } else {
      rootf = &find_reply("SMTP-4.2-ONE-REPLY-PER-COMMAND", *r,
                          fmt::format("'{}' answers no command: every command gets exactly one reply "
                                      "(RFC 5321 §4.2)",
                                      r->summary(60)),
                          prev);
    }
    rootf->proof = opt.ordered ? Proof::order : Proof::impossible_code;
    if (root == 0) {
      root = rootf->id;
      Finding& n = find_reply(
          "DESYNC-7-REALIGN", *r,
          fmt::format("lockstep breaks here: '{}' is the extra reply. A client that counts replies pairs it with "
                      "{} and from then on takes every reply as the answer to the command after the one it "
                      "belongs to: each later reply arrives one step late",
                      r->summary(60), cur ? cur->label() : std::string("its next command")));
      n.cause = root;
    } else {
      rootf->cause = root;
    }
  }
  if (r->index >= rec_base && r->index < rec_base + recs.size()) {
    rec(r->index).tslot = kNone;
    resolve(r->index);
  }
}

void Session::Impl::commit_missing(Slot& s, bool first_edit) {
  ++missing;
  Finding* f;
  if (s.kind == SlotKind::bdat_last) {
    f = &find("LMTP-4.3-BDAT-LAST-PER-RCPT", Dir::server,
              fmt::format("the server never sent the reply for {}: BDAT LAST owes one reply per accepted recipient "
                          "({} here) (RFC 2033 §4.3)",
                          s.label(), s.n));
  } else if (s.kind == SlotKind::end_of_data) {
    f = &find("LMTP-4.2-PER-RCPT-REPLIES", Dir::server,
              fmt::format("the server never sent the reply for {}: after end of data it owes one reply per "
                          "accepted recipient ({} here) (RFC 2033 §4.2)",
                          s.label(), s.n));
    Finding& g = find("DESYNC-3-PER-RCPT-COUNT", Dir::server,
                      fmt::format("fewer per-recipient replies than accepted recipients: {} got none", s.label()));
    g.proof = Proof::count;
    g.cause = f->id;
  } else {
    f = &find("SMTP-4.2-ONE-REPLY-PER-COMMAND", Dir::server,
              fmt::format("the server never answered {}: every command gets exactly one reply (RFC 5321 §4.2)",
                          s.label()));
    // Later commands were answered, so the server dropped this one's input.
    Finding& g = find("PIPE-3.2-NO-INPUT-FLUSH", Dir::server,
                      fmt::format("{} got no reply while later commands did: the server lost pipelined input "
                                  "(RFC 2920 §3.2 (9))",
                                  s.label()));
    g.cause = f->id;
    if (s.verb() == Verb::bdat) {
      Finding& h = find("CHUNK-2-DISCARD-PIPELINED-CHUNKS", Dir::server,
                        fmt::format("{} got no reply: every pipelined BDAT gets one, even after a failed one "
                                    "(RFC 3030 §2)",
                                    s.label()));
      h.cause = f->id;
    }
  }
  f->command = s.label();
  f->proof = Proof::count;
  if (s.cmd) {
    f->offset = s.cmd->offset;
    f->located = true;
    f->stream = Dir::client;
  }
  if (first_edit && root == 0) {
    root = f->id;
    Finding& n = find("DESYNC-7-REALIGN", Dir::server,
                      fmt::format("lockstep breaks here: the reply for {} is missing, so a client that counts "
                                  "replies takes every later reply as the answer to the command before the one "
                                  "it belongs to",
                                  s.label()));
    n.cause = root;
  } else if (root) {
    f->cause = root;
  }
  const Trigger tr = trigger_of(s.kind, s.verb(), s.last);
  if (tr == Trigger::end_of_data_last) st = State::ready;
}

// RFC 2033 §5: after a 421 inside a per-recipient block the recipients still owed a
// reply must be treated by the client as temporary failures.
void Session::Impl::note_owed_recipients(const Reply& r) {
  std::string owed;
  std::size_t n = 0;
  for (std::uint64_t i = std::max(truth_next, slot_base); i < nslots; ++i) {
    const Slot& s = slot(i);
    if (s.kind != SlotKind::end_of_data && s.kind != SlotKind::bdat_last) continue;
    if (n++ < 5) owed += fmt::format("{}<{}>", owed.empty() ? "" : ", ", s.rcpt());
  }
  if (n == 0) return;
  find_reply("LMTP-5-PARTIAL-REPLIES", r,
             fmt::format("the server shut down with {} per-recipient repl{} still owed ({}{}): the client must treat "
                         "those recipients as temporary failures (RFC 2033 §5)",
                         n, n == 1 ? "y" : "ies", owed, n > 5 ? ", ..." : ""))
      .severity = Severity::note;
}

}  // namespace lockstep
