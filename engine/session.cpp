#include "engine/session.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <utility>

#include "engine/session_impl.hpp"

namespace lockstep {

namespace {
constexpr std::size_t kAwaitCap = 1 << 20;  // client bytes held until DATA's reply is known
}

std::string escape_bytes(std::string_view s, std::size_t max) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= max) { out += "..."; break; }
    switch (c) {
      case '\r': out += "\\r"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\\': out += "\\\\"; break;
      default:
        if (c < 0x20 || c >= 0x7f) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
  }
  return out;
}

std::string_view to_string(Proof p) {
  switch (p) {
    case Proof::none: return "";
    case Proof::order: return "order";
    case Proof::impossible_code: return "impossible-code";
    case Proof::count: return "count";
    case Proof::accounting: return "accounting";
  }
  return "";
}

Session::Impl::Impl(SessionOptions o) : opt(o) {
  if (opt.mid_session) {
    st = State::unknown;
    ccaps = tcaps = Capabilities::assume_all();
    c_greeted = true;
    c_txn = Txn::pending;  // unknown: neither flag nested MAIL nor RCPT without MAIL
  } else {
    Slot g;
    g.kind = SlotKind::greeting;
    push_slot(std::move(g));
  }
}

const std::string& Slot::label() const {
  if (label_.empty()) label_ = make_label();
  return label_;
}

std::string Slot::make_label() const {
  switch (kind) {
    case SlotKind::greeting:
      return "greeting";
    case SlotKind::end_of_data:
    case SlotKind::bdat_last: {
      const std::string_view what = kind == SlotKind::end_of_data ? "end of data" : "BDAT LAST";
      return n == 1 ? fmt::format("{} (<{}>)", what, rcpt()) : fmt::format("{} (reply {}/{}, <{}>)", what, k, n, rcpt());
    }
    case SlotKind::command:
      break;
  }
  return cmd ? cmd->label() : std::string("command");
}

void Session::Impl::push_slot(Slot s) {
  s.index = nslots++;
  slots.push_back(std::move(s));
  // Forget slots both views (and any open realignment) have passed.
  std::uint64_t keep = std::min(client_next, truth_next);
  for (const auto& h : hyps) keep = std::min(keep, h.p);
  while (!slots.empty() && slot_base + 16 < keep) {
    slots.pop_front();
    ++slot_base;
  }
}

Finding& Session::Impl::find(std::string_view rule_id, Dir side, std::string explanation) {
  Finding f;
  f.id = next_id++;
  f.rule = &rule(rule_id);
  f.severity = f.rule->severity;
  f.side = side;
  f.stream = side;
  f.time = now;
  f.explanation = std::move(explanation);
  events.emplace_back(std::move(f));
  return std::get<Finding>(events.back());
}

Finding& Session::Impl::find_reply(std::string_view rule_id, const Reply& r, std::string explanation,
                                   const Slot* s) {
  Finding& f = find(rule_id, Dir::server, std::move(explanation));
  f.offset = r.offset;
  f.length = r.end - r.offset;
  f.located = true;
  f.bytes = escape_bytes(r.lines.empty() ? std::string_view{} : std::string_view(r.lines[0]));
  f.time = r.time;
  if (s) f.command = s->label();
  return f;
}

Finding& Session::Impl::find_cmd(std::string_view rule_id, const Command& c, std::string explanation) {
  Finding& f = find(rule_id, Dir::client, std::move(explanation));
  f.offset = c.offset;
  f.length = c.length;
  f.located = true;
  f.bytes = escape_bytes(c.line);
  f.command = c.label();
  f.time = c.time;
  return f;
}

// ---------------------------------------------------------------- client stream

void Session::Impl::on_client_bytes(std::string_view b) {
  while (!b.empty()) {
    switch (cmode) {
      case CMode::tls:
        if (tls_first && !b.empty()) {
          tls_first = false;
          if (static_cast<unsigned char>(b[0]) != 0x16) {
            Finding& f = find("STARTTLS-4-NOTHING-BEFORE-HANDSHAKE", Dir::client,
                              "after the 220 to STARTTLS the client sent bytes that are not a TLS handshake record: "
                              "it must start TLS before anything else (RFC 3207 §4)");
            f.offset = coff;
            f.located = true;
            f.bytes = escape_bytes(b.substr(0, 40));
          }
        }
        coff += b.size();
        return;
      case CMode::await_data:
        // The client's bytes after DATA are content only if DATA gets 354 (§15.1).
        if (opt.ordered && !await_reported) {
          await_reported = true;
          Finding& f = find("PIPE-3.1-DATA-LAST", Dir::client,
                            "the client sent more bytes before the reply to DATA arrived; DATA must be the "
                            "last command of a pipelined group and content must wait for the 354 (RFC 2920 §3.1, "
                            "RFC 5321 §3.3)");
          f.offset = coff;
          f.located = true;
          f.bytes = escape_bytes(b.substr(0, 60));
        }
        if (await_buf.size() + b.size() > kAwaitCap) {
          // No verdict after 1 MiB: the client clearly sends content; follow it.
          std::string held = std::move(await_buf);
          await_buf.clear();
          held.append(b);
          decide_data(true);
          on_client_bytes(held);
          return;
        }
        await_buf.append(b);
        return;
      case CMode::await_bdat:
        // BDAT without CHUNKING advertised: a server that answers 500 or 502 does not
        // know the verb and reads the chunk's octets as commands. No verdict after 1 MiB:
        // follow the client, which sends a chunk.
        await_buf.append(b);
        if (await_buf.size() > kAwaitCap) decide_bdat(true);
        return;
      case CMode::content: {
        const std::size_t n = content.feed(b, &hint);  // it uses the hint only where it covers b
        if (opt.redaction) redact_range(coff, coff + n);
        coff += n;
        b.remove_prefix(n);
        if (content.report().complete) on_end_of_data();
        break;
      }
      case CMode::bdat: {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(bdat_left, b.size()));
        if (opt.redaction) redact_range(coff, coff + n);
        const std::string_view chunk = b.substr(0, n);
        if (!bdat_binary && !bdat_reported) {
          // RFC 3030 §2: text sent with BDAT is canonical, CRLF only.
          for (std::size_t i = 0; i < chunk.size(); ++i) {
            const char c = chunk[i];
            const bool bare = (c == '\n' && !bdat_prev_cr) || (bdat_prev_cr && c != '\n');
            bdat_prev_cr = c == '\r';
            if (bare) {
              bdat_reported = true;
              Finding& f = find("CHUNK-2-CANONICAL-CRLF", Dir::client,
                                "a BDAT chunk of a text message holds a bare CR or LF; text sent with BDAT must use "
                                "CRLF line ends (RFC 3030 §2)");
              f.offset = coff + i;
              f.located = true;
              f.bytes = escape_bytes(chunk.substr(i > 8 ? i - 8 : 0, 16));
              break;
            }
          }
        }
        coff += n;
        bdat_left -= n;
        b.remove_prefix(n);
        if (bdat_left == 0) {
          cmode = CMode::command;
          csplit.set_offset(coff);
        }
        break;
      }
      case CMode::command: {
        Line line;
        if (csplit.next(b, line)) {
          coff = csplit.offset();
          on_client_line(line);
        }
        break;
      }
    }
  }
}

void Session::Impl::decide_data(bool accepted) {
  std::string held = std::move(await_buf);
  await_buf.clear();
  if (!accepted && !held.empty()) {
    Finding& f = find("SMTP-3.3-NO-DATA-WITHOUT-354", Dir::client,
                      "the client sent message content before DATA was answered, and DATA was refused: content must "
                      "not be sent without a 354 (RFC 5321 §3.3); the server reads it as commands");
    f.offset = coff;
    f.located = true;
    f.bytes = escape_bytes(std::string_view(held).substr(0, 60));
  }
  if (accepted) {
    cmode = CMode::content;
    content.start(coff);
  } else {
    cmode = CMode::command;
    csplit.set_offset(coff);
  }
  if (!held.empty()) on_client_bytes(held);
}

void Session::Impl::decide_bdat(bool consumed) {
  std::string held = std::move(await_buf);
  await_buf.clear();
  if (consumed) {
    cmode = CMode::bdat;
  } else {
    bdat_left = 0;
    cmode = CMode::command;
    csplit.set_offset(coff);
  }
  if (!held.empty()) on_client_bytes(held);
}

// The reply to a BDAT sent without CHUNKING advertised, before either view pairs it:
// 500 or 502 says the server did not know the verb, so the BDAT was one command with
// one reply (not a per-recipient block) and its chunk was read as commands.
void Session::Impl::on_bdat_reply(int code) {
  const bool unknown = code == 500 || code == 502;
  if (!unknown || !hyps.empty() || truth_next > bdat_slot || bdat_slot < slot_base) {
    decide_bdat(true);
    return;
  }
  const auto cmd = slot(bdat_slot).cmd;
  while (nslots > bdat_slot) {
    slots.pop_back();
    --nslots;
  }
  Slot s;
  s.cmd = cmd;
  push_slot(std::move(s));
  if (cmd->bdat_last) {  // the transaction is still open on the server
    c_rcpts = std::move(bdat_saved_rcpts);
    c_txn = bdat_saved_txn;
    c_last_bdat_done = false;
  }
  decide_bdat(false);
}

void Session::Impl::on_client_line(const Line& line) {
  if (expect_auth_line) {  // RFC 4954 §4: the answer to a 334 is not a command
    expect_auth_line = false;
    if (opt.redaction) redact_range(line.offset, line.offset + line.length - (line.end == LineEnd::crlf ? 2 : 1));
    if (line.text == "*") c_auth_cancel = true;
    return;
  }
  auto cmd = std::make_shared<Command>(parse_command(line.text));
  cmd->index = ncommands++;
  cmd->offset = line.offset;
  cmd->length = line.length;
  cmd->time = now;
  cmd->bare_lf = line.end == LineEnd::bare_lf;
  cmd->bare_cr = line.bare_cr;
  cmd->truncated = line.truncated;
  if (opt.redaction && cmd->verb == Verb::auth) {
    // Keep "AUTH MECHANISM", mask an initial response.
    const auto sp = cmd->arg.find(' ');
    if (sp != std::string_view::npos) redact_range(line.offset + cmd->verb_text.size() + 1 + sp + 1, line.offset + line.text.size());
  }
  if (opt.trace) events.emplace_back(CommandEvent{cmd});
  check_pipelining(*cmd);
  check_command(*cmd);

  if (c_out_of_range && (cmd->verb == Verb::rcpt || cmd->verb == Verb::data || cmd->verb == Verb::bdat))
    find_cmd("SMTP-4.2-CLIENT-OUT-OF-RANGE", *cmd,
             "the client went on with the transaction after a reply code outside 2-5, which it should treat as "
             "fatal (RFC 5321 §4.2)")
        .severity = Severity::warning;
  if (cmd->verb == Verb::mail || cmd->verb == Verb::rset || cmd->verb == Verb::lhlo) c_out_of_range = false;
  if (cmd->verb == Verb::auth) c_auth_cancel = false;
  if (cmd->verb == Verb::quit) quit_sent = true;
  if (cmd->verb == Verb::mail) {
    c_txn = Txn::pending;
    c_rcpt_sent = 0;
    c_mail_utf8 = cmd->param(ParamKey::smtputf8) != nullptr;
  }
  if (cmd->verb == Verb::rcpt) ++c_rcpt_sent;
  if (cmd->verb == Verb::lhlo) c_lhlo_sent = true;
  if (cmd->verb == Verb::rset || cmd->verb == Verb::lhlo) {
    c_txn = Txn::none;
    c_rcpts.clear();
    c_data_failed = c_bdat_failed = c_last_bdat_done = false;
  }

  if (cmd->verb == Verb::bdat && !cmd->syntax.bad_bdat) {
    bdat_left = cmd->bdat_size;
    bdat_prev_cr = false;
    bdat_reported = false;
    bdat_binary = false;
    if (bdat_left > 0) {
      // Without CHUNKING advertised, whether the chunk is read as data or as commands
      // depends on the server's reply: hold the octets until it is known.
      const bool uncertain = opt.ordered && !opt.mid_session && !ccaps.chunking;
      cmode = uncertain ? CMode::await_bdat : CMode::bdat;
      await_buf.clear();
      bdat_slot = UINT64_MAX;  // until make_slots gives it one
    }
  }
  if (cmd->verb == Verb::data) {
    cmode = CMode::await_data;
    await_reported = false;
    data_slot = UINT64_MAX;
  }
  // BDAT LAST owes one reply per accepted RCPT (RFC 2033 §4.3); while RCPT replies of
  // the transaction are still out, the count is unknown, so this command and those
  // after it get their slots once they are in.
  if (!deferred.empty() || (cmd->verb == Verb::bdat && cmd->bdat_last && c_rcpt_unpaired > 0)) {
    deferred.push_back(cmd);
    return;
  }
  make_slots(cmd);
  drain_backlog();
}

// One slot per accepted recipient of the client's transaction, in RCPT order
// (RFC 2033 §4.2, §4.3), each a copy of `proto` naming its recipient.
void Session::Impl::push_rcpt_block(const Slot& proto) {
  const auto n = static_cast<std::uint32_t>(c_rcpts.size());
  for (std::uint32_t k = 1; k <= n; ++k) {
    Slot s = proto;
    s.k = k;
    s.n = n;
    s.last = k == n;
    s.rcpt_cmd = c_rcpts[k - 1];
    push_slot(std::move(s));
  }
}

void Session::Impl::materialize() {
  std::vector<std::shared_ptr<const Command>> held;
  held.swap(deferred);
  for (std::size_t i = 0; i < held.size(); ++i) {
    const auto& cmd = held[i];
    if (!deferred.empty() || (cmd->verb == Verb::bdat && cmd->bdat_last && c_rcpt_unpaired > 0)) {
      deferred.insert(deferred.end(), held.begin() + static_cast<std::ptrdiff_t>(i), held.end());
      return;
    }
    make_slots(cmd);
  }
}

void Session::Impl::make_slots(const std::shared_ptr<const Command>& cmd) {
  if (cmd->verb == Verb::bdat && !cmd->syntax.bad_bdat) {
    bdat_slot = nslots;
    if (cmode == CMode::await_bdat) {
      bdat_saved_rcpts = c_rcpts;
      bdat_saved_txn = c_txn;
    }
  }
  if (cmd->verb == Verb::bdat && !cmd->syntax.bad_bdat && cmd->bdat_last && c_rcpts.empty() && c_txn != Txn::none) {
    // RFC 2033 §4.3: no accepted recipient, so BDAT LAST gets zero replies.
    zero_bdat_pos = nslots;
    c_last_bdat_done = true;
    // No reply will decide; the held octets, and the commands after them, come after
    // this position.
    if (cmode == CMode::await_bdat) decide_bdat(true);
    return;
  }
  if (cmd->verb == Verb::bdat && !cmd->syntax.bad_bdat && cmd->bdat_last &&
      (!c_rcpts.empty() || c_txn == Txn::none)) {
    // RFC 2033 §4.3: one reply per accepted recipient (none when none was accepted).
    const auto n = static_cast<std::uint32_t>(c_rcpts.size());
    Slot proto;
    proto.kind = SlotKind::bdat_last;
    proto.cmd = cmd;
    push_rcpt_block(proto);
    if (n == 0) {  // refused BDAT LAST outside a transaction: one reply (ambiguous spec)
      Slot s;
      s.cmd = cmd;
      push_slot(std::move(s));
    }
    c_last_bdat_done = true;
    if (n > 0) {
      c_rcpts.clear();
      c_txn = Txn::none;
    }
    return;
  }
  Slot s;
  s.cmd = cmd;
  if (cmd->verb == Verb::rcpt) ++c_rcpt_unpaired;
  const bool ends_group = !group_end_rule(s).empty();
  push_slot(std::move(s));
  if (ends_group) group_enders.push_back(nslots - 1);
  if (cmd->verb == Verb::data) data_slot = nslots - 1;
}

void Session::Impl::on_end_of_data() {
  const ContentReport& rep = content.report();
  ContentEvent ev;
  ev.offset = rep.start;
  ev.wire_octets = rep.wire_octets;
  ev.size = rep.size;
  ev.lines = rep.lines;
  ev.complete = true;
  ev.visible = opt.content_visible;
  ev.time = now;
  if (opt.trace) events.emplace_back(ev);
  if (opt.content_visible) check_content(rep);
  if (opt.content_visible && c_rcpts.empty() && !rep.empty && ccaps.known) {
    Finding& f = find("PIPE-3.1-CHECK-ALL-STATUSES", Dir::client,
                      "no recipient was accepted, yet the client sent message content after the 354; it must check "
                      "every status and send only a single dot (RFC 2920 §3.1)");
    f.offset = rep.start;
    f.located = true;
  }
  // RFC 2033 §4.2: after the final ".", one reply per accepted RCPT, in RCPT order.
  Slot proto;
  proto.kind = SlotKind::end_of_data;
  proto.eod_offset = rep.start + rep.wire_octets - 3;
  proto.content_size = rep.size;
  proto.time = now;
  proto.content_bare = rep.bare_lf.count + rep.bare_cr.count > 0;
  push_rcpt_block(proto);
  c_rcpts.clear();
  c_txn = Txn::none;
  cmode = CMode::command;
  csplit.set_offset(coff);
  drain_backlog();
}

// ---------------------------------------------------------------- server stream

void Session::Impl::on_server_bytes(std::string_view b) {
  if (st == State::tls) return;
  Line line;
  while (ssplit.next(b, line)) {
    if (assembler.add(line, now)) on_reply(assembler.take_shared());
  }
}

void Session::Impl::on_reply(std::shared_ptr<const Reply> rp) {
  ++nreplies;
  if (opt.trace) events.emplace_back(ReplyEvent{rp});
  check_reply_syntax(*rp);

  if (opt.mid_session && ncommands == 0 && nslots == 0) {  // answers commands before the excerpt
    ++ignored_replies;
    return;
  }
  if (recs.empty()) rec_base = rp->index;
  recs.push_back(Rec{rp});
  // A reply while content is still being sent: the server took something else for the
  // end of data (SMUG-2, proof (a)).
  if (cmode == CMode::content && opt.ordered && !content.report().smuggling.empty()) {
    const auto& sm = content.report().smuggling.front();
    if (sm.bytes.find("<LF>") != std::string_view::npos && sm.bytes.find("<CR><LF>.<CR><LF>") == std::string_view::npos &&
        (sm.name == "lflf" || sm.name == "crlf" || sm.name == "lfcr" || sm.name == "lfcrlf" || sm.name == "crlflf"))
      find_reply("SMTP-4.1.1.4-NO-LF-ONLY-LINES", *rp,
                 fmt::format("the server replied after the client's bare-LF line end in {}: it accepted an LF-only "
                             "line (RFC 5321 §4.1.1.4)",
                             sm.bytes))
          .proof = Proof::order;
    if (sm.name == "lflf")
      find_reply("SMTP-4.1.1.4-LF-DOT-LF-NOT-EOD", *rp,
                 "the server answered after <LF>.<LF>, which must not end the data (RFC 5321 §4.1.1.4)")
          .proof = Proof::order;
    Finding& f = find_reply("SMUG-2-SERVER-ACCEPTS-AMBIGUOUS-EOD", *rp,
                            fmt::format("the server replied while the client was still sending content, after the "
                                        "ambiguous sequence {} at client offset {}: it treated it as the end of data "
                                        "(RFC 5321 §4.1.1.4, §2.3.8)",
                                        sm.bytes, sm.offset));
    f.proof = Proof::order;
  }
  if (!deferred.empty() && client_next >= nslots) materialize();
  if (cmode == CMode::content && opt.ordered && t_declared_size > 0 && content.consumed() >= t_declared_size) {
    Finding& f = find_reply("SIZE-6-NOT-END-OF-CONTENT", *rp,
                            fmt::format("the server replied after {} octets of content, the declared SIZE, before the "
                                        "end-of-data line: SIZE must not end the content (RFC 1870 §6)",
                                        content.consumed()));
    f.proof = Proof::order;
  }
  if (cmode == CMode::await_bdat && client_next == bdat_slot && backlog.empty()) on_bdat_reply(rp->code);
  align(rp);
  if (client_next < nslots && rp->code == 334 && slot(client_next).verb() == Verb::auth) {
    client_pair(slot(client_next), rp);  // RFC 4954 §4: a 334 asks for more, AUTH still awaits its reply
  } else if (client_next < nslots) {
    client_pair(slot(client_next++), rp);
  } else {
    backlog.push_back(rp);
    if (opt.ordered && cmode == CMode::command && csplit.pending() > 0)
      find_reply("SMTP-2.4-NO-ACTION-BEFORE-CRLF", *rp,
                 "the server replied while the client's command line was still unfinished: it acted before the "
                 "CRLF (RFC 5321 §2.4)");
    // A 354 nobody asked for, in the realigned view too (not DATA's reply arriving one
    // step late after a desync): the server assumed a DATA it had not received.
    const bool truly_unasked = rp->index >= rec_base && rp->index < rec_base + recs.size() &&
                               rec(rp->index).tslot == kNone;
    if (opt.ordered && rp->code == 354 && truly_unasked)
      find_reply("PIPE-3.2-NO-ASSUMPTIONS", *rp,
                 "a 354 arrived before the client sent DATA: the server assumed a command it had not received "
                 "(RFC 2920 §3.2 (8))");
    if (opt.ordered && rp->code != 421) {
      Finding& f = find_reply(
          "DESYNC-1-UNSOLICITED", *rp,
          fmt::format("'{}' arrived while the client had no command waiting for a reply: it answers nothing the "
                      "client sent, so the client will take it as the reply to its next command",
                      rp->summary(60)));
      f.proof = Proof::order;
      f.cause = root;
      ++desync1;
    }
  }
}

void Session::Impl::drain_backlog() {
  while (!backlog.empty() && client_next < nslots) {
    auto r = backlog.front();
    backlog.pop_front();
    client_pair(slot(client_next++), r);
  }
}

Session::Impl::Rec& Session::Impl::rec(std::uint64_t reply) {
  return recs[static_cast<std::size_t>(reply - rec_base)];
}

void Session::Impl::client_pair(Slot& s, const std::shared_ptr<const Reply>& r) {
  if (opt.trace) {
    PairEvent pe{true, r->index, s.label(), r};
    pe.kind = s.kind;
    pe.verb = s.verb();
    if (s.cmd) pe.command = s.cmd->index;
    pe.k = s.k;
    pe.n = s.n;
    events.emplace_back(std::move(pe));
  }
  const int code = r->code;
  if (code < 200 || code >= 600) c_out_of_range = true;
  // A BDAT's error reply must wait for the whole chunk (RFC 3030 §2).
  if (s.index == bdat_slot && cmode == CMode::bdat && bdat_left > 0 && opt.ordered && code / 100 != 2) {
    Finding& f = find_reply("CHUNK-2-CONSUME-ON-FAILURE", *r,
                            fmt::format("the server refused the BDAT chunk with {} octets of it still unsent: it must "
                                        "read and discard the whole chunk first (RFC 3030 §2)",
                                        bdat_left),
                            &s);
    f.proof = Proof::order;
  }
  const bool pos = code / 100 == 2;
  if (s.kind == SlotKind::greeting) {
    c_greeted = true;
  } else if (s.kind == SlotKind::command) {
    switch (s.verb()) {
      case Verb::lhlo:
        // The realigned view has usually just read the same reply.
        if (code == 250) ccaps = tcaps_reply == r->index ? tcaps : parse_capabilities(*r);
        c_lhlo_refused = code != 250;
        break;
      case Verb::mail:
        c_txn = pos ? Txn::open : (c_txn == Txn::pending ? Txn::none : c_txn);
        break;
      case Verb::rcpt:
        if (pos) c_rcpts.push_back(s.cmd);
        if (c_rcpt_unpaired > 0) --c_rcpt_unpaired;
        break;
      case Verb::data:
        if (code != 354) c_data_failed = true;
        if (cmode == CMode::await_data && s.index == data_slot) decide_data(code == 354);
        break;
      case Verb::bdat:
        if (!pos) c_bdat_failed = true;
        break;
      case Verb::auth:
        if (code == 334) expect_auth_line = true;
        break;
      case Verb::starttls:
        if (code == 220) {
          cmode = CMode::tls;
          tls_first = true;
        }
        break;
      default:
        break;
    }
  }
  if (r->index >= rec_base && r->index < rec_base + recs.size()) {
    rec(r->index).cslot = static_cast<std::int64_t>(s.index);
    resolve(r->index);
  }
}

void Session::Impl::resolve(std::uint64_t reply) {
  Rec& x = rec(reply);
  if (x.cslot == kPending || x.tslot == kPending) return;
  if (x.cslot != x.tslot) {
    const Reply& r = *x.r;
    const std::string what = fmt::format("'{}'", r.summary(60));
    MispairEvent m;
    m.reply_index = r.index;
    m.reply = r.summary(80);
    if (x.cslot >= 0 && static_cast<std::uint64_t>(x.cslot) >= slot_base) m.client_slot = slot(static_cast<std::uint64_t>(x.cslot)).label();
    if (x.tslot >= 0 && static_cast<std::uint64_t>(x.tslot) >= slot_base) m.true_slot = slot(static_cast<std::uint64_t>(x.tslot)).label();
    if (x.cslot < 0)
      m.text = fmt::format("{} (meant for {}) is never read: the client sent no further command", what,
                           m.true_slot.empty() ? "no command" : m.true_slot);
    else if (x.tslot < 0)
      m.text = fmt::format("{} will receive {}, a surplus reply meant for no command", m.client_slot, what);
    else
      m.text = fmt::format("{} will receive {}, meant for {}", m.client_slot, what, m.true_slot);
    // The server took DATA's 354 while the client took it for something else: from
    // here the server reads whatever the client sends as message content.
    if (r.code == 354 && x.tslot >= 0 && static_cast<std::uint64_t>(x.tslot) >= slot_base &&
        slot(static_cast<std::uint64_t>(x.tslot)).verb() == Verb::data && x.cslot >= 0 &&
        slot(static_cast<std::uint64_t>(x.cslot)).verb() != Verb::data)
      m.text += "; the server now reads everything the client sends as message content, so the client's "
                "next commands get no reply";
    ++mispairs;
    events.emplace_back(m);
    // What the client experiences: a code impossible for the command it pairs it with.
    // (m.client_slot and m.true_slot name cs and ts below.)
    if (x.cslot >= 0 && static_cast<std::uint64_t>(x.cslot) >= slot_base) {
      const Slot& cs = slot(static_cast<std::uint64_t>(x.cslot));
      if (fit(cs.kind, cs.verb(), r.code, cs.cmd && !cs.cmd->verb_text.empty() &&
                                             (cs.cmd->verb_text[0] == 'X' || cs.cmd->verb_text[0] == 'x')) ==
          Fit::impossible) {
        Finding& f = find_reply(
            "DESYNC-2-IMPOSSIBLE-CODE", r,
            fmt::format("the client pairs {} with {}, but {}: lockstep is broken{}", what, m.client_slot,
                        why_impossible(cs.kind, cs.verb(), r.code),
                        root ? fmt::format(" (consequence of finding #{})", root) : std::string()),
            &cs);
        f.proof = Proof::impossible_code;
        f.cause = root;
      }
      const Slot* ts = x.tslot >= 0 && static_cast<std::uint64_t>(x.tslot) >= slot_base ? &slot(static_cast<std::uint64_t>(x.tslot)) : nullptr;
      if (ts && hint_mismatch(cs.kind, cs.verb(), r) && !hint_mismatch(ts->kind, ts->verb(), r))
        find_reply("DESYNC-6-HINTS", r,
                   fmt::format("its enhanced code {} fits {}, not {}", r.enhanced ? r.enhanced->str() : std::string("?"),
                               m.true_slot, m.client_slot),
                   &cs);
      // What the client does with the mispaired reply (DESYNC-8).
      std::string action;
      if (cs.kind == SlotKind::command && cs.verb() == Verb::data)
        action = r.code == 354 ? "sends its message content" : "does not send its message content and gives up the transaction";
      else if (cs.kind == SlotKind::end_of_data || cs.kind == SlotKind::bdat_last)
        action = fmt::format("records the delivery to <{}> as {}", cs.rcpt(),
                             r.code / 100 == 2 ? "done" : (r.code / 100 == 4 ? "deferred" : "failed"));
      else if (cs.kind == SlotKind::command && cs.verb() == Verb::rcpt)
        action = fmt::format("counts <{}> as {}", cs.cmd->path, r.code / 100 == 2 ? "accepted" : "refused");
      if (!action.empty()) {
        Finding& f = find_reply("DESYNC-8-CLIENT-ACTIONS", r,
                                fmt::format("the client acts on '{}' as the reply to {}: it {}{}", r.summary(60), m.client_slot,
                                            action,
                                            ts ? fmt::format(", while the server meant it for {}", m.true_slot)
                                               : std::string(", though it answers nothing")),
                                &cs);
        f.cause = root;
        f.side = Dir::client;
        f.severity = Severity::note;  // the mechanism of the failure, not a fault of the client
      }
    }
  }
  while (!recs.empty() && recs.front().cslot != kPending && recs.front().tslot != kPending) {
    recs.pop_front();
    ++rec_base;
  }
}

// ---------------------------------------------------------------- end of input

void Session::Impl::close(Dir d, Time t) {
  now = t;
  events.emplace_back(CloseEvent{d, t});
  if (d == Dir::client) {
    if (client_closed) return;
    client_closed = true;
    // RFC 5321 §4.5.3.2: minimum times a client waits for each reply.
    if (client_next < nslots && !server_closed) {
      const Slot& w = slot(client_next);
      const Time since = w.kind == SlotKind::greeting ? 0 : (w.cmd ? w.cmd->time : w.time);
      Time minimum = 5 * 60 * 1000000LL;
      if (w.kind == SlotKind::command && w.verb() == Verb::data) minimum = 2 * 60 * 1000000LL;
      if (w.kind == SlotKind::end_of_data || w.kind == SlotKind::bdat_last) minimum = 10 * 60 * 1000000LL;
      if (since > 0 && t - since < minimum)
        find("SMTP-4.5.3.2-CLIENT-TIMEOUTS", Dir::client,
             fmt::format("the client gave up after {:.1f} s waiting for the reply to {}; RFC 5321 §4.5.3.2 asks for "
                         "at least {} minutes",
                         static_cast<double>(t - since) / 1e6, w.label(), minimum / 60000000))
            .severity = Severity::warning;
    }
    if (!quit_sent && !server_closed && !last_was_final && st != State::tls)
      find("SMTP-4.1.1.10-NO-CLOSE-BEFORE-QUIT", Dir::client,
           "the client closed the connection without sending QUIT (RFC 5321 §4.1.1.10)");
    else if (quit_sent && !server_closed && st != State::closing && !last_was_final) {
      Finding& f = find("SMTP-4.1.1.10-NO-CLOSE-BEFORE-QUIT", Dir::client,
                        "the client closed the connection before the reply to QUIT arrived; it should wait for "
                        "the 221 (RFC 5321 §4.1.1.10)");
      f.severity = Severity::warning;
    }
  } else {
    if (server_closed) return;
    server_closed = true;
    if (st == State::refused && !quit_sent)
      find("SMTP-3.1-554-GREETING", Dir::server,
           "after a 554 greeting the server must still wait for QUIT before closing (RFC 5321 §3.1)");
    if (t_last_unknown && !last_was_final)
      find("SMTP-3.8-UNKNOWN-COMMAND-500", Dir::server,
           "the server closed the connection after an unknown command; it must answer 500 and wait for more "
           "(RFC 5321 §3.8)");
    // A server that closes after the client closed only follows it.
    if (!client_closed && !last_was_final && st != State::refused && st != State::tls && st != State::unknown) {
      find("SMTP-3.8-SERVER-CLOSE", Dir::server,
           fmt::format("the server closed the connection in state '{}' without a 221 to QUIT or a 421 "
                       "(RFC 5321 §3.8)",
                       to_string(st)));
      find("SMTP-3.8-FORCED-SHUTDOWN-421", Dir::server,
           "a server that has to close should first send a 421 reply (RFC 5321 §3.8)");
    }
  }
}

void Session::Impl::finish(bool capture_ended) {
  if (cmode == CMode::await_bdat) decide_bdat(true);
  if (ssplit.pending() > 0 || assembler.in_progress()) {
    Finding& f = find("SMTP-4.2.1-MULTILINE-FORMAT", Dir::server,
                      "the server stream ends inside a reply: its last line is unfinished or a multi-line reply "
                      "has no final line");
    f.severity = Severity::warning;
    f.bytes = escape_bytes(ssplit.partial());
  }
  if (csplit.pending() > 0 && cmode == CMode::command) {
    Finding& f = find("SMTP-4.5.3.1.4-COMMAND-LINE-512", Dir::client,
                      fmt::format("the client stream ends with {} octets of a command line that never ended",
                                  csplit.pending()));
    f.severity = csplit.pending() > 512 ? Severity::warning : Severity::note;
    f.offset = csplit.offset();
    f.located = true;
    f.bytes = escape_bytes(csplit.partial());
  }
  if (cmode == CMode::content && opt.content_visible && (client_closed || !capture_ended)) {
    Finding& f = find("SMTP-3.8-CLIENT-LOSS-IS-451", Dir::client,
                      fmt::format("the connection ended in the middle of message content ({} octets sent, no "
                                  "end of data): the transaction failed and must be treated as temporary",
                                  content.report().wire_octets));
    f.offset = content.report().start;
    f.located = true;
  }
  if (!hyps.empty()) settle(!capture_ended);
  // Replies nobody read: the client sent nothing more for them.
  for (auto& r : backlog) {
    if (r->index >= rec_base && r->index < rec_base + recs.size()) {
      rec(r->index).cslot = kNone;
      resolve(r->index);
    }
  }
  // DESYNC-5: count replies against slots at the end.
  const std::uint64_t replies = nreplies - ignored_replies - async421;
  const std::uint64_t due = std::min<std::uint64_t>(nslots, excused_from);
  if (replies > due && desync1 == 0) {
    Finding& f = find("DESYNC-5-ACCOUNTING", Dir::server,
                      fmt::format("the server sent {} replies for {} expected: {} more than the client's commands "
                                  "call for (RFC 5321 §4.2)",
                                  replies, due, replies - due));
    f.proof = Proof::accounting;
  }
  if (!capture_ended && replies < due) {
    // Fewer replies than the client's commands call for: the rest never came.
    const std::uint64_t first = std::max(truth_next, slot_base);
    std::uint64_t owed_rcpt = 0;
    for (std::uint64_t i = first; i < due; ++i)
      if (slot(i).kind == SlotKind::end_of_data || slot(i).kind == SlotKind::bdat_last) ++owed_rcpt;
    Finding& f = find("DESYNC-5-ACCOUNTING", Dir::server,
                      fmt::format("the connection ended with {} repl{} for {} expected: {} still owed (the first for "
                                  "{})",
                                  replies, replies == 1 ? "y" : "ies", due, due - replies,
                                  first < nslots ? slot(first).label() : std::string("the last command")));
    f.proof = Proof::accounting;
    if (owed_rcpt > 0) {
      Finding& g = find("LMTP-5-PARTIAL-REPLIES", Dir::client,
                        fmt::format("{} per-recipient repl{} never arrived: the client must treat those recipients "
                                    "as temporary failures (RFC 2033 §5)",
                                    owed_rcpt, owed_rcpt == 1 ? "y" : "ies"));
      g.severity = Severity::note;  // informational for the checker (what the client must do)
      g.cause = f.id;
      Finding& h = find("DESYNC-3-PER-RCPT-COUNT", Dir::server,
                        "fewer per-recipient replies than accepted recipients before the connection ended");
      h.proof = Proof::count;
      h.cause = f.id;
    }
  }
}

void Session::Impl::redact_range(std::uint64_t begin, std::uint64_t end) {
  if (end <= begin) return;
  if (!redactions.empty() && redactions.back().second == begin) redactions.back().second = end;
  else redactions.emplace_back(begin, end);
}

// ---------------------------------------------------------------- public face

Session::Session(SessionOptions opts) : impl_(std::make_unique<Impl>(opts)) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

void Session::feed(Dir dir, std::string_view bytes, Time t, const TextIndex* ix) {
  impl_->now = t;
  if (dir == Dir::client) {
    impl_->c_last_time = t;
    impl_->hint = TextHint{bytes.data(), bytes.size(), ix};
    impl_->on_client_bytes(bytes);
    impl_->hint = TextHint{};
  }
  else impl_->on_server_bytes(bytes);
}

void Session::close(Dir dir, Time t) { impl_->close(dir, t); }

namespace {
constexpr Time kMinute = 60 * 1000000LL;
}

Time Session::reply_wait_minimum() const {
  const Impl& m = *impl_;
  if (m.client_next >= m.nslots) return 0;
  const Slot& w = const_cast<Impl&>(m).slot(m.client_next);
  switch (w.kind) {  // RFC 5321 §4.5.3.2.1-6
    case SlotKind::greeting: return 5 * kMinute;
    case SlotKind::end_of_data:
    case SlotKind::bdat_last: return 10 * kMinute;
    case SlotKind::command: break;
  }
  return w.verb() == Verb::data ? 2 * kMinute : 5 * kMinute;
}

void Session::timeout(Time t) {
  Impl& m = *impl_;
  m.now = t;
  if (m.client_next >= m.nslots || m.cmode != Impl::CMode::command) return;
  const Slot& w = m.slot(m.client_next);
  const Time since = w.kind == SlotKind::command && w.cmd ? w.cmd->time : w.time;
  Finding& f = m.find("PIPE-3.2-FLUSH-WHEN-IDLE", Dir::server,
                      fmt::format("the client sent everything and waited{} for the reply to {}, which never came: "
                                  "a server must send pending replies when its input is empty (RFC 2920 §3.2 (7))",
                                  since > 0 ? fmt::format(" {:.1f} s", static_cast<double>(t - since) / 1e6) : "",
                                  w.label()));
  f.command = w.label();
}

namespace {
// The host and port of an address as lockstep's sources write them; port 0 when none.
std::pair<std::string, unsigned> split_address(std::string_view a) {
  if (a.starts_with("unix:") || a.starts_with("/") || a.empty()) return {"unix", 0};
  unsigned port = 0;
  const auto colon = a.rfind(':');
  const auto bracket = a.rfind(']');
  std::string_view host = a;
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    for (char c : a.substr(colon + 1)) {
      if (c < '0' || c > '9') { port = 0; break; }
      port = port * 10 + static_cast<unsigned>(c - '0');
    }
    host = a.substr(0, colon);
  }
  if (const auto lb = host.find('['); lb != std::string_view::npos) {  // "name[addr]" or "[v6]"
    const auto rb = host.find(']', lb);
    host = host.substr(lb + 1, rb == std::string_view::npos ? rb : rb - lb - 1);
  }
  return {std::string(host), port};
}
bool local_or_private(const std::string& h) {
  if (h == "unix" || h == "localhost" || h == "::1" || h.starts_with("127.") || h.starts_with("10.") ||
      h.starts_with("192.168.") || h.starts_with("fc") || h.starts_with("fd") || h.starts_with("fe80"))
    return true;
  if (h.starts_with("172.")) {
    const int second = std::atoi(h.c_str() + 4);
    return second >= 16 && second <= 31;
  }
  return h.find('.') == std::string::npos && h.find(':') == std::string::npos;  // a bare name: unknown, assume local
}
}  // namespace

void Session::set_peers(std::string_view client, std::string_view server) {
  const auto [host, port] = split_address(server);
  if (port == 25)
    impl_->find("LMTP-5-NOT-PORT-25", Dir::server,
                fmt::format("the LMTP server is reached on TCP port 25 ({}); LMTP must not use port 25 (RFC 2033 §5)",
                            server));
  const auto c = split_address(client);
  if (!local_or_private(host) || !local_or_private(c.first))
    impl_->find("LMTP-5-NO-WAN", Dir::server,
                fmt::format("LMTP between {} and {}: it should not cross a wide area network (RFC 2033 §5)", client,
                            server));
}
void Session::finish(Time t, bool capture_ended) {
  impl_->now = t;
  impl_->finish(capture_ended);
}

std::optional<Event> Session::next() {
  if (impl_->events.empty()) return std::nullopt;
  Event e = std::move(impl_->events.front());
  impl_->events.pop_front();
  if (auto* f = std::get_if<Finding>(&e); f && f->severity == Severity::error) ++impl_->error_count;
  return e;
}

EventQueue& Session::pending_events() { return impl_->events; }

void Session::clear_events() {
  for (const Event& e : impl_->events)
    if (auto* f = std::get_if<Finding>(&e); f && f->severity == Severity::error) ++impl_->error_count;
  impl_->events.clear();
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> Session::take_redactions() {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  out.swap(impl_->redactions);
  return out;
}

std::uint64_t Session::client_parsed() const {
  return impl_->cmode == Impl::CMode::command ? impl_->csplit.offset() : impl_->coff;
}

bool Session::client_pending_is_secret() const {
  using M = Impl::CMode;
  return impl_->cmode == M::await_data || impl_->cmode == M::content || impl_->cmode == M::bdat ||
         impl_->cmode == M::await_bdat ||
         impl_->expect_auth_line;
}

State Session::state() const { return impl_->st; }
std::uint64_t Session::commands() const { return impl_->ncommands; }
std::uint64_t Session::replies() const { return impl_->nreplies; }
std::uint32_t Session::errors() const { return impl_->error_count; }
bool Session::desynced() const { return impl_->root != 0; }

}  // namespace lockstep
