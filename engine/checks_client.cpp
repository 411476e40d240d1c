// Rules about what the client sends: command syntax, parameters, the order of commands
// and pipelining groups, and message content. Judged in the client's own view (what it
// believed when it sent the bytes).
#include <fmt/format.h>

#include <algorithm>

#include "engine/session_impl.hpp"

namespace lockstep {

namespace {
bool all_digits(std::string_view s, std::size_t max) {
  return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
// xtext (RFC 3461 §4): "!".."~" except "+" and "=", or "+" followed by two upper-case hex digits.
bool is_xtext(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '+') {
      if (i + 2 >= s.size()) return false;
      auto hex = [](char h) { return (h >= '0' && h <= '9') || (h >= 'A' && h <= 'F'); };
      if (!hex(s[i + 1]) || !hex(s[i + 2])) return false;
      i += 2;
    } else if (c < 33 || c > 126 || c == '=') {
      return false;
    }
  }
  return true;
}
}  // namespace

std::string_view group_end_rule(const Slot& s) {
  if (s.kind != SlotKind::command) return {};
  switch (s.verb()) {
    case Verb::lhlo: return "PIPE-3.1-LHLO-LAST";
    case Verb::data: return "PIPE-3.1-DATA-LAST";
    case Verb::vrfy: return "PIPE-3.1-VRFY-LAST";
    case Verb::expn: return "PIPE-3.1-EXPN-LAST";
    case Verb::turn: return "PIPE-3.1-TURN-LAST";
    case Verb::quit: return "PIPE-3.1-QUIT-LAST";
    case Verb::noop: return "PIPE-3.1-NOOP-LAST";
    case Verb::starttls: return "STARTTLS-4-LAST-IN-GROUP";
    case Verb::help: return "PIPE-3.1-EXTENSION-CMDS-LAST";
    case Verb::auth: {
      // RFC 4954 §4: AUTH with an initial response for PLAIN/EXTERNAL may be followed.
      const std::string_view a = s.cmd->arg;
      const bool one_round = (a.size() > 6 && iequals(a.substr(0, 6), "PLAIN ")) ||
                             (a.size() > 9 && iequals(a.substr(0, 9), "EXTERNAL "));
      return one_round ? std::string_view{} : "AUTH-4-LAST-IN-GROUP";
    }
    default: return {};
  }
}

void Session::Impl::check_pipelining(const Command& c) {
  if (quit_sent)
    find_cmd("SMTP-4.1.4-QUIT-LAST", c, "the client sent a command after QUIT; QUIT must be the last command (RFC 5321 §4.1.4)");
  if (!opt.ordered) return;
  // Slots the client has not yet seen answered, in its own count.
  if (client_next >= nslots) return;
  const Slot& first = slot(client_next);
  if (first.kind == SlotKind::greeting) {
    find_cmd("SMTP-4.3.1-WAIT-FOR-GREETING", c,
             "the client sent a command before the server's greeting arrived (RFC 5321 §4.3.1: SHOULD wait)");
    return;
  }
  // The oldest unanswered command that must end its group (kept in a queue, so a long
  // pipeline costs O(1) per command).
  while (!group_enders.empty() && group_enders.front() < client_next) group_enders.pop_front();
  if (!group_enders.empty()) {
    const Slot& s = slot(group_enders.front());
    Finding& f = find_cmd(group_end_rule(s), c,
                          fmt::format("'{}' was sent before the reply to {} arrived; {} must be the last command "
                                      "of a pipelined group (RFC 2920 §3.1)",
                                      c.label(), s.label(), to_string(s.verb())));
    if (s.verb() == Verb::help) f.severity = Severity::note;
    return;
  }
  if (ccaps.known && !ccaps.pipelining) {
    find_cmd("SMTP-4.3.1-WAIT-FOR-REPLY", c,
             fmt::format("'{}' was sent while {} was unanswered, but the server did not advertise PIPELINING "
                         "(RFC 5321 §4.3.1)",
                         c.label(), slot(client_next).label()));
    find_cmd("PIPE-3-ONLY-AFTER-ADVERTISED", c, "pipelining without PIPELINING in the LHLO reply (RFC 2920 §3)");
  }
}

void Session::Impl::check_command(const Command& c) {
  const Verb v = c.verb;
  if (c.bare_lf)
    find_cmd("SMTP-2.3.8-NO-BARE-CR-LF", c, "the command line ends in a bare LF, not CRLF (RFC 5321 §2.3.8)");
  if (c.bare_cr)
    find_cmd("SMTP-2.3.8-NO-BARE-CR-LF", c, "the command line holds a bare CR (RFC 5321 §2.3.8)");
  // RFC 5321 §4.5.3.1.4, plus the increments of negotiated extensions.
  std::uint64_t limit = 512;
  if (v == Verb::mail) {
    if (ccaps.size) limit += 26;
    if (ccaps.binarymime) limit += 16;
    if (ccaps.auth) limit += 500;
    if (ccaps.smtputf8) limit += 10;
  }
  if (v == Verb::rcpt && ccaps.dsn) limit = 1036;
  if (c.length > limit)
    find_cmd("SMTP-4.5.3.1.4-COMMAND-LINE-512", c,
             fmt::format("the command line is {} octets long with its CRLF; the limit is {} (RFC 5321 §4.5.3.1.4)",
                         c.length, limit));
  if (c.syntax.non_ascii && !(ccaps.smtputf8 && (v == Verb::mail || v == Verb::rcpt || v == Verb::vrfy || v == Verb::expn)))
    find_cmd("SMTP-2.4-ASCII-COMMANDS", c, "the command holds octets above 0x7f and SMTPUTF8 is not in effect (RFC 5321 §2.4)");

  switch (v) {
    case Verb::helo:
    case Verb::ehlo:
      find_cmd("LMTP-4.1-LHLO-NOT-HELO-EHLO", c,
               fmt::format("the client sent {}: LMTP replaces HELO and EHLO by LHLO, so this client speaks SMTP "
                           "(RFC 2033 §4.1)",
                           to_string(v)));
      break;
    case Verb::starttls:
      if (!c.arg.empty()) find_cmd("STARTTLS-4-SYNTAX-AND-CODES", c, "STARTTLS takes no parameters (RFC 3207 §4)");
      break;
    case Verb::lhlo:
      if (has_high_octet(c.arg))
        find_cmd("SMTPUTF8-3.7.1-ASCII-HELLO", c, "the LHLO domain must be ASCII (RFC 6531 §3.7.1)");
      break;
    case Verb::mail: {
      // A MAIL pipelined behind LHLO is PIPE-3.1-LHLO-LAST; this is MAIL with no LHLO
      // sent at all, or after the LHLO was refused.
      if (!opt.mid_session && !ccaps.known && c_greeted && (!c_lhlo_sent || c_lhlo_refused))
        find_cmd("SMTP-4.1.1.1-HELLO-BEFORE-MAIL", c, "MAIL before a successful LHLO (RFC 5321 §4.1.1.1)");
      if (c_txn == Txn::open && !c_data_failed)
        find_cmd("SMTP-4.1.4-NO-NESTED-MAIL", c,
                 "MAIL while a mail transaction is still open; end it first with RSET (RFC 5321 §4.1.4)");
      if (c_bdat_failed)
        find_cmd("CHUNK-2-RSET-AFTER-FAILURE", c, "after a failed BDAT the client must send RSET (RFC 3030 §2)");
      break;
    }
    case Verb::rcpt:
      if (c_bdat_failed)
        find_cmd("CHUNK-2-RSET-AFTER-FAILURE", c, "after a failed BDAT the client must send RSET (RFC 3030 §2)");
      break;
    case Verb::data:
      if (c_txn == Txn::none && c_rcpts.empty() && ccaps.known && !c_last_bdat_done && !opt.mid_session)
        find_cmd("SMTP-3.3-TRANSACTION-ORDER", c, "DATA without a MAIL transaction (RFC 5321 §3.3)");
      else if (c_txn != Txn::none && c_rcpt_sent == 0 && !opt.mid_session)
        find_cmd("SMTP-3.3-TRANSACTION-ORDER", c, "DATA before any RCPT was sent (RFC 5321 §3.3)");
      break;
    case Verb::bdat:
      if (c.syntax.bad_bdat)
        find_cmd("CHUNK-2-BDAT-SYNTAX", c, "BDAT takes a chunk size and optionally LAST (RFC 3030 §2)");
      if (ccaps.known && !ccaps.chunking)
        find_cmd("CHUNK-2-ONLY-IF-ADVERTISED", c,
                 "BDAT sent though the server did not advertise CHUNKING: it will read the chunk as commands "
                 "(RFC 3030 §2)");
      if (opt.ordered && c_bdat_failed)
        find_cmd("CHUNK-2-NO-BDAT-AFTER-ERROR", c, "BDAT after a BDAT failed in this transaction (RFC 3030 §2)");
      break;
    default:
      break;
  }
  if (c.syntax.args_not_allowed)
    find_cmd("SMTP-4.1.1-NO-ARGS-RSET-DATA-QUIT", c,
             fmt::format("{} takes no arguments (RFC 5321 §4.1.1)", to_string(v)));

  if (v != Verb::mail && v != Verb::rcpt) return;
  if (c.syntax.space_around_colon)
    find_cmd("SMTP-3.3-NO-SPACE-AROUND-COLON", c, "no spaces are allowed around the colon (RFC 5321 §3.3)");
  // Path lengths (RFC 5321 §4.5.3.1).
  const std::string_view path = c.path;
  const auto at = path.rfind('@');
  if (at != std::string_view::npos && at > 64)
    find_cmd("SMTP-4.5.3.1.1-LOCAL-PART-64", c, fmt::format("the local part is {} octets; the limit is 64", at))
        .severity = Severity::warning;
  if (at != std::string_view::npos && path.size() - at - 1 > 255)
    find_cmd("SMTP-4.5.3.1.2-DOMAIN-255", c, "the domain is longer than 255 octets").severity = Severity::warning;
  if (path.size() + 2 > 256)
    find_cmd("SMTP-4.5.3.1.3-PATH-256", c, "the path is longer than 256 octets").severity = Severity::warning;
  if (has_high_octet(path) && ((v == Verb::mail && !c.param(ParamKey::smtputf8)) || (v == Verb::rcpt && !c_mail_utf8)))
    find_cmd("SMTPUTF8-3.4-PARAM-WHEN-NEEDED", c, "a non-ASCII address without the SMTPUTF8 parameter (RFC 6531 §3.4)");
  if (has_high_octet(path) && ccaps.known && !ccaps.smtputf8)
    find_cmd("SMTPUTF8-3.2-NOT-UNLESS-OFFERED", c, "a non-ASCII address, but SMTPUTF8 was not offered (RFC 6531 §3.2)");

  // Parameters: only those of advertised extensions (RFC 5321 §4.1.1.3), each well formed.
  for (const Param& p : c.params) {
    const std::string_view k = p.key;
    bool offered = true;
    switch (p.id) {
      case ParamKey::size: offered = ccaps.size; break;
      case ParamKey::body: offered = ccaps.eightbit || ccaps.binarymime; break;
      case ParamKey::smtputf8: offered = ccaps.smtputf8; break;
      case ParamKey::ret:
      case ParamKey::envid:
      case ParamKey::notify:
      case ParamKey::orcpt: offered = ccaps.dsn; break;
      case ParamKey::auth: offered = ccaps.auth; break;
      case ParamKey::other: offered = !ccaps.known || ccaps.has(k); break;
    }
    if (!offered && ccaps.known)
      find_cmd("SMTP-4.1.1.3-PARAMS-ONLY-IF-OFFERED", c,
               fmt::format("parameter {} belongs to an extension the server did not advertise (RFC 5321 §4.1.1.3)",
                           escape_bytes(k, 30)));
    const std::string_view value = p.value;
    switch (p.id) {
      case ParamKey::size:
        if (!p.has_value || !all_digits(value, 20)) find_cmd("SIZE-3-MAIL-PARAM", c, "SIZE= takes 1 to 20 digits (RFC 1870 §3)");
        break;
      case ParamKey::body: {
        const bool ok = iequals(value, "7BIT") || iequals(value, "8BITMIME") || iequals(value, "BINARYMIME");
        if (!ok && ccaps.binarymime)
          find_cmd("CHUNK-3-BODY-VALUES", c, "BODY= is 7BIT, 8BITMIME or BINARYMIME (RFC 3030 §3)");
        else if (!ok)
          find_cmd("8BITMIME-2-BODY-VALUES", c, "BODY= is 7BIT or 8BITMIME (RFC 6152 §2)");
        if (iequals(value, "BINARYMIME") && ccaps.known && !ccaps.binarymime)
          find_cmd("CHUNK-3-NO-BINARY-UNLESS-ADVERTISED", c, "BODY=BINARYMIME without BINARYMIME advertised (RFC 3030 §3)");
        break;
      }
      case ParamKey::smtputf8:
        if (p.has_value) find_cmd("SMTPUTF8-3.4-PARAM-NO-VALUE", c, "the SMTPUTF8 parameter takes no value (RFC 6531 §3.4)");
        break;
      case ParamKey::ret:
        if (!(iequals(value, "FULL") || iequals(value, "HDRS"))) find_cmd("DSN-4.3-RET", c, "RET= is FULL or HDRS (RFC 3461 §4.3)");
        break;
      default:
        break;
    }
    const auto semi = value.find(';');
    if ((p.id == ParamKey::envid && p.has_value && !is_xtext(value)) ||
        (p.id == ParamKey::orcpt && semi != std::string_view::npos && !is_xtext(value.substr(semi + 1))))
      find_cmd("DSN-4-XTEXT", c,
               fmt::format("{}= is not valid xtext: '+' must be followed by two upper-case hex digits and '=' or "
                           "control characters must be encoded (RFC 3461 §4)",
                           escape_bytes(k, 10)));
    if (p.id == ParamKey::envid && (!p.has_value || value.empty() || value.size() > 100 || !is_xtext(value)))
      find_cmd("DSN-4.4-ENVID", c, "ENVID= needs an xtext value of at most 100 characters (RFC 3461 §4.4)");
    if (p.id == ParamKey::notify) {
      bool ok = p.has_value && !value.empty();
      bool never = false, other = false;
      std::string_view rest = value;
      while (ok && !rest.empty()) {
        const auto comma = rest.find(',');
        const std::string_view e = rest.substr(0, comma);
        if (iequals(e, "NEVER")) never = true;
        else if (iequals(e, "SUCCESS") || iequals(e, "FAILURE") || iequals(e, "DELAY")) other = true;
        else ok = false;
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      }
      if (!ok || (never && other))
        find_cmd("DSN-4.1-NOTIFY", c, "NOTIFY= is NEVER alone or a list of SUCCESS, FAILURE, DELAY (RFC 3461 §4.1)");
    }
    if (p.id == ParamKey::orcpt &&
        (!p.has_value || semi == std::string_view::npos || semi == 0 || value.size() > 500 || !is_xtext(value.substr(semi + 1))))
      find_cmd("DSN-4.2-ORCPT", c, "ORCPT= is addr-type;xtext, at most 500 characters (RFC 3461 §4.2)");
  }
  if (c.count_param(ParamKey::size) > 1) find_cmd("SIZE-6-ONE-SIZE-PARAM", c, "only one SIZE parameter per MAIL (RFC 1870 §6)");
  if (c.count_param(ParamKey::body) > 1) find_cmd("8BITMIME-3-ONE-BODY-PARAM", c, "only one BODY parameter per MAIL (RFC 6152 §3)");
  if (c.count_param(ParamKey::ret) > 1 || c.count_param(ParamKey::envid) > 1 || c.count_param(ParamKey::notify) > 1 ||
      c.count_param(ParamKey::orcpt) > 1)
    find_cmd("DSN-4.5-NO-DUPLICATES", c, "RET, ENVID, NOTIFY and ORCPT may each appear once (RFC 3461 §4.5)");
}

void Session::Impl::check_content(const ContentReport& rep) {
  auto at = [&](std::string_view rid, const Occurrence& o, std::string text) -> Finding& {
    Finding& f = find(rid, Dir::client, std::move(text));
    f.offset = o.first_offset;
    f.located = true;
    return f;
  };
  if (rep.empty) {
    Finding& f = find("SMTP-4.1.1.4-EOD-SEQUENCE", Dir::client, "the message content is empty: '.' came right after the 354");
    f.offset = rep.start;
    f.located = true;
    f.severity = Severity::note;
  }
  for (const Smuggle& s : rep.smuggling) {
    Finding& f = find("SMUG-1-AMBIGUOUS-EOD-SENT", Dir::client,
                      fmt::format("the content holds {} ({}), an ambiguous end of data that a lenient server may take "
                                  "for the real one: a smuggling candidate (RFC 5321 §2.3.8)",
                                  s.bytes, s.name));
    f.offset = s.offset;
    f.located = true;
    f.bytes = std::string(s.bytes);
  }
  if (rep.bare_lf.count)
    at("SMTP-2.3.8-NO-BARE-CR-LF", rep.bare_lf,
       fmt::format("the content holds {} bare LF line end(s); only CRLF ends a line (RFC 5321 §2.3.8)", rep.bare_lf.count));
  if (rep.bare_cr.count)
    at("SMTP-2.3.8-NO-BARE-CR-LF", rep.bare_cr,
       fmt::format("the content holds {} bare CR(s) (RFC 5321 §2.3.8)", rep.bare_cr.count));
  if (rep.long_lines.count)
    at("SMTP-4.5.3.1.6-TEXT-LINE-1000", rep.long_lines,
       fmt::format("{} content line(s) exceed 1000 octets with CRLF (longest {}) (RFC 5321 §4.5.3.1.6)",
                   rep.long_lines.count, rep.max_line))
        .severity = Severity::warning;
  if (rep.unstuffed_dot.count)
    at("SMTP-4.5.2-DOT-STUFFING", rep.unstuffed_dot,
       fmt::format("{} content line(s) start with a single '.': the client did not double it, so the server will "
                   "delete it (RFC 5321 §4.5.2)",
                   rep.unstuffed_dot.count));
  if (rep.eight_bit.count && !t_mail_body8) {
    at("8BITMIME-3-NO-8BIT-UNLESS-OFFERED", rep.eight_bit,
       ccaps.eightbit ? "the content holds 8-bit octets but MAIL did not declare BODY=8BITMIME (RFC 6152 §3)"
                      : "the content holds 8-bit octets and the server did not offer 8BITMIME (RFC 6152 §3)");
    if (!ccaps.eightbit)
      at("SMTP-2.4-7BIT-CONTENT", rep.eight_bit,
         "the content holds 8-bit octets and no extension allowing them was negotiated (RFC 5321 §2.4)");
  }
}

}  // namespace lockstep
