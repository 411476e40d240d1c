// Rules about the server's replies, applied in the realigned view: each reply is
// judged against the command it really answers.
#include <fmt/format.h>

#include <algorithm>

#include "engine/session_impl.hpp"

namespace lockstep {

namespace {
bool is_private(const Slot& s) {
  return s.cmd && !s.cmd->verb_text.empty() && (s.cmd->verb_text[0] == 'X' || s.cmd->verb_text[0] == 'x');
}
bool mentions_too_many(const Reply& r) {
  if (r.enhanced && r.enhanced->subject == 5 && r.enhanced->detail == 3) return true;
  std::string t(r.first_text());
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return t.find("too many recipients") != std::string::npos;
}
}  // namespace

void Session::Impl::check_reply_syntax(const Reply& r) {
  if (r.malformed) {
    find_reply("SMTP-4.2-REPLY-CODE-SYNTAX", r,
               "a reply line does not start with a three-digit code followed by '-', SP or the line end "
               "(RFC 5321 §4.2)");
  } else if (r.code / 100 < 2 || r.code / 100 > 5 || (r.code / 10) % 10 > 5) {
    find_reply("SMTP-4.2-REPLY-CODE-SYNTAX", r,
               fmt::format("reply code {} is outside the grammar: first digit 2-5, second 0-5 (RFC 5321 §4.2)", r.code));
  }
  if (r.bare_lf)
    find_reply("SMTP-2.3.8-CRLF-ONLY", r, "a reply line ends in a bare LF instead of CRLF (RFC 5321 §2.3.8)");
  if (r.code_changed) {
    Finding& f = find_reply("SMTP-4.2.1-MULTILINE-SAME-CODE", r,
                            "the lines of one multi-line reply carry different codes (RFC 5321 §4.2.1)");
    Finding& g = find_reply("DESYNC-4-MULTILINE-SPLICE", r,
                            "a continuation line changes the reply code: either the server broke the same-code "
                            "rule or two replies were spliced together; the stream is suspect from here");
    g.cause = f.id;
  }
  if (r.bare_code && r.code > 0) {
    Finding& f = find_reply("SMTP-4.2.1-SP-AFTER-CODE", r,
                            "the last line of the reply is a bare code without SP (RFC 5321 §4.2.1: servers SHOULD "
                            "send the SP)");
    f.severity = Severity::warning;
  }
  if (r.long_line)
    find_reply("SMTP-4.5.3.1.5-REPLY-LINE-512", r,
               "a reply line is longer than 512 octets including its CRLF (RFC 5321 §4.5.3.1.5)");
  // Octets from 0x80 up are judged with the command the reply answers (check_pair).
  if (r.bare_cr || r.control)
    find_reply("SMTP-4.2-REPLY-LINE-GRAMMAR", r,
               "reply text holds control characters; it may hold only HT, SP and printable US-ASCII (RFC 5321 §4.2)");
}

void Session::Impl::check_capabilities(const Reply& r) {
  const Capabilities& c = tcaps;
  if (c.greeting_domain_bad)
    find_reply("SMTP-4.1.1.1-EHLO-RESPONSE-SYNTAX", r,
               "the first line of the LHLO reply must carry the server's domain (RFC 5321 §4.1.1.1)");
  for (const auto& k : c.keywords()) {
    if (k.bad_syntax)
      find_reply("SMTP-4.1.1.1-EHLO-RESPONSE-SYNTAX", r,
                 fmt::format("capability line '{}' is not ehlo-keyword *(SP ehlo-param) (RFC 5321 §4.1.1.1)",
                             escape_bytes(k.name, 40)));
    auto no_param = [&](Kw kw, std::string_view name, std::string_view rid, std::string_view rfc) {
      if (k.kw == kw && !k.params.empty())
        find_reply(rid, r, fmt::format("the {} keyword takes no parameter ({})", name, rfc));
    };
    no_param(Kw::enhancedstatuscodes, "ENHANCEDSTATUSCODES", "ESC-3-KEYWORD-NO-PARAM", "RFC 2034 §3");
    no_param(Kw::eightbitmime, "8BITMIME", "8BITMIME-2-KEYWORD-NO-PARAM", "RFC 6152 §2");
    no_param(Kw::smtputf8, "SMTPUTF8", "SMTPUTF8-3.1-KEYWORD-NO-PARAM", "RFC 6531 §3.1");
    no_param(Kw::dsn, "DSN", "DSN-2-KEYWORD-NO-PARAM", "RFC 3461 §2");
    if (k.kw == Kw::size && !k.params.empty()) {
      const std::string& p = k.params[0];
      const bool digits = !p.empty() && std::all_of(p.begin(), p.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
      if (!digits || k.params.size() > 1)
        find_reply("SIZE-3-KEYWORD-PARAM", r, "the SIZE keyword's parameter must be a decimal number (RFC 1870 §3)");
    }
  }
  if (!c.pipelining)
    find_reply("LMTP-5-MUST-PIPELINING", r,
               "the LHLO reply does not advertise PIPELINING, which every LMTP server must implement (RFC 2033 §5)");
  if (!c.enhanced_codes)
    find_reply("LMTP-5-MUST-ENHANCEDSTATUSCODES", r,
               "the LHLO reply does not advertise ENHANCEDSTATUSCODES, which every LMTP server must implement "
               "(RFC 2033 §5)");
  if (!c.eightbit)
    find_reply("LMTP-5-SHOULD-8BITMIME", r, "the LHLO reply does not advertise 8BITMIME (RFC 2033 §5: SHOULD)");
  if (c.smtputf8 && !c.eightbit)
    find_reply("SMTPUTF8-3.1-NEEDS-8BITMIME", r, "SMTPUTF8 is advertised without 8BITMIME (RFC 6531 §3.1)");
  if (c.binarymime && !c.chunking)
    find_reply("CHUNK-3-BINARYMIME-NEEDS-CHUNKING", r, "BINARYMIME is advertised without CHUNKING (RFC 3030 §3)");
}

void Session::Impl::commit_pair(Slot& s, const std::shared_ptr<const Reply>& rp) {
  const Reply& r = *rp;
  if (opt.trace) events.emplace_back(PairEvent{false, r.index, s.label(), rp});
  const State before = st;
  check_pair(s, r, before);

  // Effects in the realigned view.
  const int code = r.code;
  const bool pos = code / 100 == 2;
  last_was_final = code == 221 || code == 421;
  if (code == 221 && s.verb() == Verb::quit) t_quit_answered = true;
  if (code == 421) {
    excused_from = std::min(excused_from, truth_next);
    note_owed_recipients(r);
  }
  if (s.kind == SlotKind::command) {
    switch (s.verb()) {
      case Verb::lhlo:
        if (code == 250) {
          if (before == State::mail || before == State::rcpt) t_lhlo_reset_txn = true;
          tcaps = parse_capabilities(r);
          tcaps_reply = r.index;
          check_capabilities(r);
          if (tcaps.enhanced_codes && pre_lhlo_no_esc > 0) {
            Finding& f = find("ESC-4-REGARDLESS-OF-EHLO", Dir::server,
                              fmt::format("{} repl{} before LHLO had no enhanced status code; a server with "
                                          "ENHANCEDSTATUSCODES attaches them whether or not LHLO was sent "
                                          "(RFC 2034 §4)",
                                          pre_lhlo_no_esc, pre_lhlo_no_esc == 1 ? "y" : "ies"));
            f.offset = pre_lhlo_offset;
            f.located = true;
          }
        }
        if (pos) t_rcpts = 0;
        break;
      case Verb::auth:
        if (code == 235) t_authed = true;
        break;
      case Verb::mail:
        t_lhlo_reset_txn = false;
        if (pos) {
          t_rcpts = 0;
          t_rcpt_total = 0;
          t_declared_size = 0;
          if (const Param* sz = s.cmd->param(ParamKey::size); sz && !sz->value.empty() && sz->value.size() < 20 &&
                                                      std::all_of(sz->value.begin(), sz->value.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
            t_declared_size = std::stoull(std::string(sz->value));
          t_mail_utf8 = s.cmd->param(ParamKey::smtputf8) != nullptr;
          const Param* body = s.cmd->param(ParamKey::body);
          t_mail_body8 = body && (iequals(body->value, "8BITMIME") || iequals(body->value, "BINARYMIME"));
          t_mail_binary = body && iequals(body->value, "BINARYMIME");
        }
        break;
      case Verb::rcpt:
        ++t_rcpt_total;
        if (pos) ++t_rcpts;
        break;
      case Verb::rset:
        if (pos) t_rcpts = 0;
        break;
      default:
        break;
    }
  }
  if (s.kind == SlotKind::command) {
    t_last_verb = s.verb();
    t_last_unknown = s.verb() == Verb::unknown;
  }
  if (s.kind == SlotKind::bdat_last && s.last) t_last_bdat = true;
  if (s.kind == SlotKind::command && (s.verb() == Verb::mail || s.verb() == Verb::rset || s.verb() == Verb::lhlo) &&
      code / 100 == 2)
    t_last_bdat = false;
  const State after = transition(before, trigger_of(s.kind, s.verb(), s.last), outcome_of(code));
  if (after == State::ready && (s.kind == SlotKind::end_of_data || s.kind == SlotKind::bdat_last)) t_rcpts = 0;
  if (after != before) {
    st = after;
    if (opt.trace) events.emplace_back(StateEvent{std::string(to_string(before)), std::string(to_string(after)), r.time});
  }
  if (r.index >= rec_base && r.index < rec_base + recs.size()) {
    rec(r.index).tslot = static_cast<std::int64_t>(s.index);
    resolve(r.index);
  }
}

void Session::Impl::check_pair(const Slot& s, const Reply& r, State before) {
  const int code = r.code;
  const int cls = code / 100;
  const Verb v = s.verb();
  const Fit f = fit(s.kind, v, code, is_private(s));
  const bool cmd = s.kind == SlotKind::command;
  const bool per_rcpt = s.kind == SlotKind::end_of_data || s.kind == SlotKind::bdat_last;

  // The code must fit the command (RFC 5321 §4.3.1/§4.3.2).
  if (f == Fit::impossible) {
    std::string_view specific;
    if (per_rcpt) specific = "LMTP-4.2-PER-RCPT-CODES";
    else if (v == Verb::rset) specific = "SMTP-4.1.1.5-RSET-250";
    else if (v == Verb::noop) specific = "SMTP-4.1.1.9-NOOP-250";
    else if (v == Verb::quit) specific = "SMTP-4.1.1.10-QUIT-221";
    else if ((v == Verb::helo || v == Verb::ehlo) && cls == 2) specific = "LMTP-4.1-HELO-EHLO-NOT-2XX";
    const std::string why(why_impossible(s.kind, v, code));
    if (!specific.empty())
      find_reply(specific, r, fmt::format("{} got '{}': {}", s.label(), r.summary(60), why), &s);
    if (code > 0)
      find_reply("SMTP-4.3.1-SEQUENCE-PRESERVED", r,
                 fmt::format("{} got '{}', which contradicts the command/reply sequence: {}", s.label(),
                             r.summary(60), why),
                 &s);
  } else if (cmd && ((v == Verb::rset && code != 250) || (v == Verb::noop && code != 250) ||
                     (v == Verb::quit && code != 221)) &&
             code != 421 && code != 500 && !(code == 501 && !s.cmd->arg.empty())) {
    const std::string_view rid = v == Verb::rset ? "SMTP-4.1.1.5-RSET-250"
                                 : v == Verb::noop ? "SMTP-4.1.1.9-NOOP-250"
                                                   : "SMTP-4.1.1.10-QUIT-221";
    find_reply(rid, r, fmt::format("{} got {}: {} (or 421 when shutting down)", s.label(), code,
                                   why_impossible(s.kind, v, code)),
               &s);
  } else if (f == Fit::unlisted) {
    find_reply("SMTP-4.3.2-REPLY-IN-TABLE", r,
               fmt::format("{} got {}, a code RFC 5321 §4.3.2 does not list for it", s.label(), code), &s)
        .severity = Severity::warning;
  }

  // Enhanced status codes (RFC 2034), once the server advertised them. The greeting
  // and the LHLO reply are exempt, and so are 3yz replies.
  const bool exempt = s.kind == SlotKind::greeting || (cmd && (v == Verb::lhlo || v == Verb::helo || v == Verb::ehlo));
  if (tcaps.known && tcaps.enhanced_codes && !exempt && code > 0 && cls != 3) {
    if (!r.enhanced) {
      find_reply("ESC-4-REQUIRED-ON-2-4-5", r,
                 fmt::format("'{}' has no enhanced status code; with ENHANCEDSTATUSCODES every 2yz/4yz/5yz reply "
                             "carries one (RFC 2034 §4)",
                             r.summary(60)),
                 &s);
    } else {
      const EnhancedCode& e = *r.enhanced;
      if (e.cls != cls)
        find_reply("ESC-4-CLASS-MATCH", r,
                   fmt::format("enhanced code {} does not agree with reply code {} (RFC 2034 §4)", e.str(), code), &s);
      if (e.leading_zero)
        find_reply("ESCODE-2-SYNTAX", r, "an enhanced status sub-code has a leading zero (RFC 3463 §2)", &s);
      if (!e.followed_by_space && r.first_text().size() > e.str().size())
        find_reply("ESC-3-FOLLOWED-BY-SPACE", r, "the enhanced status code is not followed by a space (RFC 2034 §3)", &s);
      if (e.subject > 7 || (e.subject == 0 && e.detail != 0))
        find_reply("ESCODE-2-REGISTERED-ONLY", r,
                   fmt::format("enhanced code {} is not a registered status code (RFC 3463 §2)", e.str()), &s);
      for (std::size_t i = 1; i < r.lines.size(); ++i) {
        const auto rl = parse_reply_line(r.lines[i]);
        const auto e2 = parse_enhanced(rl.text);
        if (!e2 || e2->str() != e.str()) {
          find_reply("ESC-4-MULTILINE-SAME-CODE", r,
                     "every line of a multi-line reply must start with the same enhanced status code (RFC 2034 §4)", &s);
          break;
        }
      }
    }
  }

  if (t_quit_answered)
    find_reply("SMTP-4.1.1.10-QUIT-221", r,
               fmt::format("the server answered {} after its 221 to QUIT; after the 221 it closes the connection "
                           "(RFC 5321 §4.1.1.10)",
                           s.label()),
               &s);
  // Non-ASCII reply text: allowed only for 251/551 after MAIL ... SMTPUTF8 and for
  // VRFY/EXPN with SMTPUTF8 (RFC 6531 §3.7.4).
  if (r.high) {
    const bool utf8_ok = (t_mail_utf8 && (code == 251 || code == 551)) ||
                         (cmd && (v == Verb::vrfy || v == Verb::expn) && s.cmd->param(ParamKey::smtputf8));
    if (cmd && v == Verb::lhlo && code == 250 && !r.lines.empty() &&
        has_high_octet(r.lines[0]))
      find_reply("SMTPUTF8-3.7.1-ASCII-HELLO", r,
                 "the domain in the LHLO reply must be ASCII (LDH labels or A-labels) (RFC 6531 §3.7.1)", &s);
    else if (!utf8_ok && !(cmd && (v == Verb::vrfy || v == Verb::expn)))
      find_reply("SMTPUTF8-3.7.4.2-ASCII-REPLIES", r,
                 "reply text holds non-ASCII octets (RFC 6531 §3.7.4.2, RFC 5321 §4.2)", &s);
  }
  // Replies before LHLO: judged for enhanced codes once the LHLO reply shows whether the
  // server has them (RFC 2034 §4).
  if (!tcaps.known && !exempt && code > 0 && cls != 3 && !r.enhanced && !opt.mid_session) {
    if (pre_lhlo_no_esc++ == 0) pre_lhlo_offset = r.offset;
  }
  if (code == 521 && s.kind != SlotKind::greeting && before != State::refused)
    find_reply("NULLMX-3-521-AT-OPENING", r,
               "521 is reserved for the connection opening (and the replies after a 521 greeting) (RFC 7504 §3)", &s)
        .severity = Severity::warning;
  if (before == State::refused && cmd && v != Verb::quit && code != 503 && code != 421 && code != 521)
    find_reply("SMTP-3.1-554-GREETING", r,
               fmt::format("after a 554 greeting the server should answer every command but QUIT with 503, not {} "
                           "(RFC 5321 §3.1)",
                           code),
               &s)
        .severity = Severity::warning;
  if (s.kind == SlotKind::greeting) {
    if (code == 220 || code == 554) {
      const std::string_view t = r.first_text();
      if (t.empty() || t.front() == ' ')
        find_reply("SMTP-4.2-GREETING-SYNTAX", r, "the greeting must name the server's domain first (RFC 5321 §4.2)");
    }
    return;
  }
  if (per_rcpt) {
    // RFC 2033 §4.2: reply k reports on the k-th accepted recipient. A text naming
    // another accepted recipient hints at the wrong order.
    const std::string_view t = r.first_text();
    const auto lt = t.find('<');
    const auto gt = lt == std::string_view::npos ? lt : t.find('>', lt);
    if (gt != std::string_view::npos) {
      const std::string_view named = t.substr(lt + 1, gt - lt - 1);
      if (named.find('@') != std::string_view::npos && !iequals(named, s.rcpt()))
        find_reply("LMTP-4.2-PER-RCPT-ORDER", r,
                   fmt::format("{} names <{}>, but reply {} belongs to <{}> (RFC 2033 §4.2: in RCPT order)", s.label(),
                               escape_bytes(named, 60), s.k, s.rcpt()),
                   &s)
            .severity = Severity::warning;
    }
    // SIZE: no 552 after end of data when the content is within the declared size.
    const bool size_refusal =
        code == 552 || (cls >= 4 && r.enhanced && ((r.enhanced->subject == 3 && r.enhanced->detail == 4) ||
                                                   (r.enhanced->subject == 2 && r.enhanced->detail == 3)));
    if (size_refusal && s.kind == SlotKind::end_of_data && s.content_size < 65536 && opt.content_visible)
      find_reply("SMTP-4.5.3.1.7-MESSAGE-64K", r,
                 fmt::format("content of {} octets was refused for size; servers must accept at least 64K "
                             "(RFC 5321 §4.5.3.1.7)",
                             s.content_size),
                 &s);
    if (code == 552 && s.kind == SlotKind::end_of_data && t_declared_size > 0 && s.content_size <= t_declared_size)
      find_reply("SIZE-6.3-NO-552-WITHIN-DECLARED", r,
                 fmt::format("552 after end of data, though the content ({} octets) is within the declared SIZE={} "
                             "(RFC 1870 §6.3)",
                             s.content_size, t_declared_size),
                 &s)
          .severity = Severity::warning;
    if (cls == 2 && s.content_bare)
      find_reply("SMUG-3-SAFE-SERVER-BEHAVIOUR", r,
                 "the server accepted content holding a bare CR or LF; the safe reactions are to refuse it, or "
                 "refuse and disconnect (smuggling hardening, not RFC text)",
                 &s);
    if (tcaps.size_limit && code / 100 == 2 && s.content_size > *tcaps.size_limit)
      find_reply("SIZE-4-552-OVER-LIMIT", r,
                 fmt::format("the server accepted {} octets though it advertised SIZE {} (RFC 1870 §4)",
                             s.content_size, *tcaps.size_limit),
                 &s);
    return;
  }
  if (!cmd) return;
  const Command& c = *s.cmd;
  const bool well_formed = !c.syntax.bad_path && !c.syntax.space_around_colon && !c.syntax.args_not_allowed &&
                           !c.syntax.non_ascii && !c.bare_lf && !c.bare_cr && !c.truncated && c.length <= 512;

  // A reply to a line the client ended with bare LF: the server recognised a foreign
  // terminator (RFC 5321 §2.3.8, §4.1.1.4). Needs the order of both streams.
  if (c.bare_lf && opt.ordered && code > 0 && code != 500 && code != 421 && cls != 5)
    find_reply("SMTP-4.1.1.4-NO-LF-ONLY-LINES", r,
               fmt::format("the server answered '{}', a line the client ended with bare LF; servers must not accept "
                           "LF-only lines (RFC 5321 §4.1.1.4)",
                           c.label()),
               &s);

  const bool required = v == Verb::lhlo || v == Verb::mail || v == Verb::rcpt || v == Verb::data ||
                        v == Verb::rset || v == Verb::noop || v == Verb::quit || v == Verb::vrfy;
  // RFC 5321 §2.4: verbs are case-insensitive.
  if ((code == 500 || code == 502) && v != Verb::unknown &&
      std::any_of(c.verb_text.begin(), c.verb_text.end(), [](char ch) { return ch >= 'a' && ch <= 'z'; }))
    find_reply("SMTP-2.4-CASE-INSENSITIVE", r,
               fmt::format("'{}' was refused with {}; verbs are not case sensitive (RFC 5321 §2.4)", c.verb_text, code),
               &s);
  if (code == 502 && required && v != Verb::vrfy)
    find_reply("SMTP-4.5.1-MINIMUM-COMMANDS", r,
               fmt::format("{} got 502 'not implemented', but every LMTP server must implement it (RFC 5321 §4.5.1)",
                           to_string(v)),
               &s);
  if (tcaps.known && (cls == 2 || cls == 3)) {
    bool listed = true;
    switch (v) {
      case Verb::bdat: listed = tcaps.chunking; break;
      case Verb::starttls: listed = tcaps.starttls; break;
      case Verb::auth: listed = tcaps.auth; break;
      case Verb::expn: listed = tcaps.has(Kw::expn); break;
      case Verb::etrn: listed = tcaps.has(Kw::etrn); break;
      case Verb::help: listed = tcaps.has(Kw::help); break;
      default: break;
    }
    if (!listed)
      find_reply("SMTP-4.1.1.1-EHLO-LISTS-NONREQUIRED", r,
                 fmt::format("the server accepted {}, an optional command its LHLO reply did not list "
                             "(RFC 5321 §4.1.1.1)",
                             to_string(v)),
                 &s)
          .severity = v == Verb::help ? Severity::warning : Severity::error;
  }
  if (code == 530 && (v == Verb::noop || v == Verb::lhlo || v == Verb::quit || v == Verb::starttls))
    find_reply("STARTTLS-4-530-TLS-REQUIRED", r,
               fmt::format("{} got 530; a server that requires TLS first still accepts NOOP, LHLO, STARTTLS and QUIT "
                           "(RFC 3207 §4)",
                           to_string(v)),
               &s)
        .severity = Severity::warning;
  if (!text_hint_noted && cls == 2 && (v == Verb::mail || v == Verb::rcpt) && !r.enhanced) {
    std::string t(r.first_text());
    std::transform(t.begin(), t.end(), t.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (t.find("sender") == std::string::npos && t.find("recipient") == std::string::npos &&
        t.find('<') == std::string::npos && t.find("from") == std::string::npos && t.find("to") == std::string::npos) {
      text_hint_noted = true;
      find_reply("PIPE-3.2-TEXT-IDENTIFIES-COMMAND", r,
                 fmt::format("'{}' does not say which command it answers; reply text should identify it "
                             "(RFC 2920 §3.2 (10))",
                             r.summary(40)),
                 &s);
    }
  }
  if (code == 500 && required && well_formed)
    find_reply("SMTP-4.3.2-NO-500-FOR-REQUIRED", r,
               fmt::format("'{}' is a required command, well formed, and got 500 'not recognised' "
                           "(RFC 5321 §4.3.2)",
                           c.label()),
               &s);
  if ((code == 500 || code == 502) && tcaps.known) {
    const bool advertised = (v == Verb::bdat && tcaps.chunking) || (v == Verb::starttls && tcaps.starttls) ||
                            (v == Verb::auth && tcaps.auth) || (v == Verb::expn && tcaps.has(Kw::expn)) ||
                            (v == Verb::help && tcaps.has(Kw::help));
    if (advertised && well_formed)
      find_reply("SMTP-4.2.4-NO-ADVERTISED-502", r,
                 fmt::format("{} was advertised in the LHLO reply but got {} (RFC 5321 §4.2.4)", to_string(v), code), &s);
  }
  if (c.syntax.args_not_allowed && code != 501 && code != 421 && cls != 5)
    find_reply("SMTP-4.1.1-NO-ARGS-RSET-DATA-QUIT", r,
               fmt::format("'{}' carries arguments it does not allow; the server should answer 501 (RFC 5321 §4.3.2)",
                           c.label()),
               &s)
        .severity = Severity::warning;

  switch (v) {
    case Verb::helo:
    case Verb::ehlo:
      if (code != 500 && cls != 2)
        find_reply("LMTP-4.1-HELO-EHLO-500", r,
                   fmt::format("{} is not an LMTP command; 500 is the recommended reply (RFC 2033 §4.1)", to_string(v)), &s);
      break;
    case Verb::lhlo:
      if (cls == 5 && !(code == 500 || code == 501 || code == 502 || code == 504 || code == 550 || code == 530))
        find_reply("SMTP-4.1.4-EHLO-FAILURE-CODES", r,
                   fmt::format("a refused LHLO gets 501, 500, 502 or 550, not {} (RFC 5321 §4.1.4)", code), &s);
      break;
    case Verb::mail:
      if (cls == 2 && (before == State::mail || before == State::rcpt))
        find_reply("SMTP-4.1.4-OUT-OF-ORDER-503", r,
                   "the server accepted MAIL inside an open transaction; it must answer 503 (RFC 5321 §4.1.4)", &s);
      if (cls == 2 && (c.syntax.bad_path || c.syntax.space_around_colon))
        find_reply("SMTP-4.1.4-BAD-MAIL-ARG-501", r,
                   fmt::format("'{}' has a malformed argument but was accepted; it must get 501 (RFC 5321 §4.1.4)",
                               c.label()),
                   &s);
      if (tcaps.size_limit) {
        if (const Param* p = c.param(ParamKey::size); p && cls == 2) {
          std::uint64_t n = 0;
          try { n = std::stoull(std::string(p->value)); } catch (...) { n = 0; }
          if (n > *tcaps.size_limit)
            find_reply("SIZE-4-552-OVER-LIMIT", r,
                       fmt::format("MAIL declares SIZE={} above the advertised limit {} but was accepted; it must "
                                   "get 552 (RFC 1870 §4, §6.1)",
                                   n, *tcaps.size_limit),
                       &s);
        }
      }
      if (tcaps.size && c.count_param(ParamKey::size) == 1 && (code == 555 || code == 501) && well_formed) {
        const Param* p = c.param(ParamKey::size);
        if (p && !p->value.empty() && std::all_of(p->value.begin(), p->value.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
          find_reply("SIZE-7-MUST-ACCEPT-EXTENDED-MAIL", r,
                     "a server that advertises SIZE must accept a well-formed SIZE= parameter (RFC 1870 §7)", &s);
      }
      if (tcaps.dsn && code != 501 && code != 421) {
        const Param* ret = c.param(ParamKey::ret);
        const Param* envid = c.param(ParamKey::envid);
        const bool bad_ret = ret && !(iequals(ret->value, "FULL") || iequals(ret->value, "HDRS"));
        const bool bad_envid = envid && (!envid->has_value || envid->value.empty() || envid->value.size() > 100 ||
                                         std::any_of(envid->value.begin(), envid->value.end(), [](char ch) {
                                           return static_cast<unsigned char>(ch) < 33 || static_cast<unsigned char>(ch) > 126 || ch == '=';
                                         }));
        if (c.count_param(ParamKey::ret) > 1 || c.count_param(ParamKey::envid) > 1 || bad_ret || bad_envid)
          find_reply("DSN-5.1-INVALID-501", r,
                     fmt::format("an invalid or repeated RET or ENVID must get 501, not {} (RFC 3461 §5.1)", code), &s);
      }
      break;
    case Verb::rcpt:
      if (cls == 2 && before == State::ready && t_lhlo_reset_txn)
        find_reply("SMTP-4.1.4-EHLO-RESETS", r,
                   "an accepted LHLO ended the transaction, yet the server accepted RCPT: it kept the old "
                   "transaction (RFC 5321 §4.1.4)",
                   &s);
      else if ((before == State::ready || before == State::greeted) && code != 503 && code != 421 &&
               code != 500 && code != 501)
        find_reply("SMTP-3.3-RCPT-WITHOUT-MAIL-503", r,
                   fmt::format("RCPT with no open transaction got {}; it must get 503 (RFC 5321 §3.3, §4.1.4)", code), &s);
      if ((code == 452 || code == 552) && mentions_too_many(r) && t_rcpts < 100)
        find_reply("SMTP-4.5.3.1.8-100-RECIPIENTS", r,
                   fmt::format("'too many recipients' after only {} accepted; servers must take 100 "
                               "(RFC 5321 §4.5.3.1.8)",
                               t_rcpts),
                   &s);
      if (code == 500 && tcaps.dsn && c.length > 512 && c.length <= 1036)
        find_reply("DSN-5.4-LINE-LENGTHS", r,
                   fmt::format("a {}-octet RCPT line got 500; with DSN the server must take lines up to 1036 "
                               "octets (RFC 3461 §5.4)",
                               c.length),
                   &s);
      if (r.enhanced && r.enhanced->subject == 6 && r.enhanced->detail == 7 && code != 553)
        find_reply("SMTPUTF8-3.5-REJECT-CODES", r,
                   "a RCPT refused for its non-ASCII address gets 553 (RFC 6531 §3.5)", &s);
      if ((code == 251 || code == 551) && !t_mail_utf8 &&
          has_high_octet(r.lines[0]))
        find_reply("SMTPUTF8-3.7.4.1-251-551-ASCII", r,
                   "a 251/551 naming a non-ASCII mailbox, though MAIL had no SMTPUTF8 parameter (RFC 6531 §3.7.4.1)",
                   &s);
      if (code == 552 && mentions_too_many(r))
        find_reply("SMTP-4.5.3.1.10-TOO-MANY-452", r,
                   "too many recipients should be 452; a 552 is allowed only for a policy limit (RFC 5321 §4.5.3.1.10)",
                   &s)
            .severity = Severity::note;
      break;
    case Verb::data: {
      const std::size_t n = t_rcpts;
      const bool unknown = before == State::unknown;
      if (n == 0 && !unknown && code != 503 && code != 421 && !(cls == 5 && code != 554 && !well_formed))
        find_reply("LMTP-4.2-DATA-NO-RCPT-503", r,
                   fmt::format("no RCPT was accepted, so DATA must fail with 503, not {} (RFC 2033 §4.2)", code), &s);
      if (n > 0 && (code == 503 || code == 554) && before == State::rcpt && !t_mail_binary)
        find_reply("PIPE-3.2-DATA-POSITIVE-IFF-RCPT", r,
                   fmt::format("{} recipient(s) were accepted, yet DATA got {} (RFC 2920 §3.2 (3))", n, code), &s);
      if ((code == 500 || code == 502) && tcaps.chunking)
        find_reply("CHUNK-2-DATA-STILL-SUPPORTED", r,
                   "a server that offers CHUNKING must still support DATA (RFC 3030 §2)", &s);
      if (t_mail_binary && code != 503 && code != 421)
        find_reply("CHUNK-3-BINARYMIME-NO-DATA-503", r,
                   fmt::format("DATA after MAIL with BODY=BINARYMIME must get 503, not {} (RFC 3030 §3)", code), &s);
      if (before == State::bdat && code != 503 && code != 421)
        find_reply("CHUNK-2-NO-DATA-AFTER-BDAT", r,
                   fmt::format("DATA after BDAT in the same transaction must get 503, not {} (RFC 3030 §2)", code), &s);
      break;
    }
    case Verb::bdat:
      if (t_last_bdat && code != 503 && code != 421)
        find_reply("CHUNK-2-BDAT-AFTER-LAST-503", r,
                   fmt::format("a BDAT after BDAT LAST must get 503, not {} (RFC 3030 §2)", code), &s);
      if (c.bdat_last == false && cls == 2 && code != 250)
        find_reply("CHUNK-2-250-PER-CHUNK", r, "a successful BDAT chunk gets 250 (RFC 3030 §2)", &s);
      break;
    case Verb::noop:
    case Verb::rset:
    case Verb::vrfy:
    case Verb::help:
    case Verb::expn:
      if (code == 503 && (before == State::greeted || before == State::connecting))
        find_reply("SMTP-4.1.4-NONMAIL-ANYTIME", r,
                   fmt::format("{} should be processed before LHLO too, not refused with 503 (RFC 5321 §4.1.4)",
                               to_string(v)),
                   &s);
      if (v == Verb::vrfy && (code == 500 || code == 502))
        find_reply("SMTP-3.5.3-VRFY-NOT-IMPLEMENTED", r,
                   "VRFY is refused as not implemented: allowed, but not in full compliance (RFC 5321 §3.5.3)", &s);
      if ((v == Verb::vrfy || v == Verb::expn) && !c.param(ParamKey::smtputf8) &&
          has_high_octet(r.lines[0]))
        find_reply("SMTPUTF8-3.7.4.2-VRFY-EXPN", r,
                   "a UTF-8 reply to VRFY/EXPN sent without the SMTPUTF8 parameter (RFC 6531 §3.7.4.2)", &s);
      if ((v == Verb::vrfy || v == Verb::expn) && (cls == 2 || code == 551) && code != 252) {
        const std::string_view t = r.first_text();
        if (t.find('<') == std::string_view::npos || t.find('@') == std::string_view::npos)
          find_reply("SMTP-3.5.2-VRFY-MAILBOX", r, "a positive VRFY reply must name the mailbox as <local@domain> "
                                                   "(RFC 5321 §3.5.2)",
                     &s);
      }
      break;
    case Verb::starttls:
      if (!(code == 220 || code == 501 || code == 454 || code == 421 || code == 500 || code == 502 || code == 503 ||
            code == 530))
        find_reply("STARTTLS-4-SYNTAX-AND-CODES", r,
                   fmt::format("STARTTLS is answered 220, 501 or 454, not {} (RFC 3207 §4)", code), &s);
      break;
    case Verb::auth: {
      if (code == 334) {
        const std::string_view t = r.first_text();
        const bool b64 = std::all_of(t.begin(), t.end(), [](char ch) {
          return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '+' ||
                 ch == '/' || ch == '=';
        });
        if (!b64)
          find_reply("AUTH-4-334-BASE64-ONLY", r, "a 334 challenge may hold only base64 text (RFC 4954 §4)", &s);
      }
      const bool goes_on = code == 334 || code == 235;
      const bool refused_right = code == 503 || code == 421;
      if (t_authed && !refused_right)
        find_reply("AUTH-4-ONCE", r,
                   fmt::format("a second AUTH after a successful one must get 503, not {} (RFC 4954 §4)", code), &s);
      else if ((before == State::mail || before == State::rcpt) && !refused_right)
        find_reply("AUTH-4-NOT-IN-TRANSACTION", r,
                   fmt::format("AUTH inside a mail transaction must get 503, not {} (RFC 4954 §4)", code), &s);
      if (c_auth_cancel && code != 334 && code != 501 && code != 421)
        find_reply("AUTH-4-CANCEL-501", r, "a client '*' cancels AUTH and must get 501 (RFC 4954 §4)", &s);
      if (tcaps.known && tcaps.auth && !t_authed && before != State::mail && before != State::rcpt &&
          (goes_on || (cls >= 4 && code != 504 && code != 501 && code != 421 && code != 503))) {
        const std::string mech(c.arg.substr(0, c.arg.find(' ')));
        bool listed = false;
        for (const auto& k : tcaps.keywords())
          if (k.kw == Kw::auth)
            for (const auto& m : k.params) listed = listed || iequals(m, mech);
        if (!listed)
          find_reply("AUTH-4-UNKNOWN-MECH-504", r,
                     fmt::format("mechanism {} was not advertised; the server must refuse it with 504 (RFC 4954 §4)",
                                 escape_bytes(mech, 30)),
                     &s);
      }
      break;
    }
    default:
      break;
  }
}

}  // namespace lockstep
