#include "engine/fit.hpp"

#include <algorithm>
#include <initializer_list>

namespace lockstep {

namespace {
bool in(int code, std::initializer_list<int> set) {
  return std::find(set.begin(), set.end(), code) != set.end();
}
// Generic codes any command may get (RFC 5321 §4.3.2), plus 530 when TLS or AUTH is
// required first (RFC 3207 §4, RFC 4954 §6).
bool generic(int code) { return in(code, {500, 501, 421, 530}); }

// Codes that answer only one command (lmtp-rules.md §3.2): seen elsewhere they are
// impossible.
bool only_for_other(int code, SlotKind kind, Verb verb) {
  const bool cmd = kind == SlotKind::command;
  switch (code) {
    case 354: return !(cmd && verb == Verb::data);
    case 334:
    case 235: return !(cmd && verb == Verb::auth);
    case 221: return !(cmd && verb == Verb::quit);
    case 211:
    case 214: return !(cmd && verb == Verb::help);
    case 220: return !(kind == SlotKind::greeting || (cmd && verb == Verb::starttls));
    case 252: return !(cmd && (verb == Verb::vrfy || verb == Verb::expn));
    default: return false;
  }
}
}  // namespace

Fit fit(SlotKind kind, Verb verb, int code, bool private_verb) {
  const int cls = code / 100;
  if (code < 0 || cls < 2 || cls > 5 || (code / 10) % 10 > 5) return Fit::impossible;
  if (only_for_other(code, kind, verb)) return Fit::impossible;
  const auto table = [&](std::initializer_list<int> listed) {
    return in(code, listed) || generic(code) ? Fit::listed : Fit::unlisted;
  };
  switch (kind) {
    case SlotKind::greeting:
      if (cls == 3 || (cls == 2 && code != 220)) return Fit::impossible;
      return table({220, 554, 521});
    case SlotKind::end_of_data:
    case SlotKind::bdat_last:
      // RFC 2033 §4.2 + RFC 5321 §4.3.2: completion replies only.
      if (cls == 3) return Fit::impossible;
      return table({250, 552, 554, 451, 452, 450, 550});
    case SlotKind::command: break;
  }
  switch (verb) {
    case Verb::lhlo:
      if (cls == 3 || (cls == 2 && code != 250)) return Fit::impossible;
      return table({250, 504, 550, 502});
    case Verb::helo:
    case Verb::ehlo:  // RFC 2033 §4.1: no positive completion in LMTP
      if (cls == 2 || cls == 3) return Fit::impossible;
      return Fit::listed;
    case Verb::mail:
      if (cls == 3 || (cls == 2 && code != 250)) return Fit::impossible;
      return table({250, 552, 451, 452, 550, 553, 503, 455, 555});
    case Verb::rcpt:
      if (cls == 3) return Fit::impossible;
      return table({250, 251, 550, 551, 552, 553, 450, 451, 452, 503, 455, 555, 556});
    case Verb::data:
      if (cls == 2 || (cls == 3 && code != 354)) return Fit::impossible;
      return table({354, 503, 554});
    case Verb::bdat:
      if (cls == 3) return Fit::impossible;
      return cls == 2 ? (code == 250 ? Fit::listed : Fit::unlisted) : Fit::listed;
    case Verb::rset:
      if (cls == 3 || (cls == 2 && code != 250) || (cls == 5 && !in(code, {500, 501})))
        return Fit::impossible;
      return table({250});
    case Verb::noop:
      if (cls == 3 || (cls == 2 && code != 250) || ((cls == 4 || cls == 5) && !generic(code)))
        return Fit::impossible;
      return Fit::listed;
    case Verb::quit:
      if (cls == 3 || (cls == 2 && code != 221)) return Fit::impossible;
      return table({221});
    case Verb::vrfy:
      if (cls == 3) return Fit::impossible;
      return table({250, 251, 252, 550, 551, 553, 502, 504});
    case Verb::expn:
      if (cls == 3) return Fit::impossible;
      return table({250, 252, 550, 500, 502, 504});
    case Verb::help:
      if (cls == 3) return Fit::impossible;
      return table({211, 214, 502, 504});
    case Verb::starttls:
      if (cls == 3 || (cls == 2 && code != 220)) return Fit::impossible;
      return table({220, 501, 454, 503, 502});
    case Verb::auth:
      if ((cls == 3 && code != 334) || (cls == 2 && code != 235)) return Fit::impossible;
      return table({235, 334, 432, 454, 534, 535, 538, 503, 504});
    case Verb::turn:
    case Verb::etrn:
    case Verb::unknown:
      if (cls == 3) return Fit::impossible;
      if (cls == 2) return private_verb ? Fit::unlisted : Fit::impossible;
      return table({500, 502, 503, 504});
  }
  return Fit::unlisted;
}

std::string_view why_impossible(SlotKind kind, Verb verb, int code) {
  const int cls = code / 100;
  if (code < 0) return "it does not start with a three-digit reply code";
  if (cls < 2 || cls > 5) return "reply codes start with a digit from 2 to 5 (RFC 5321 §4.2)";
  if (code == 354) return "354 answers only DATA";
  if (code == 221) return "221 answers only QUIT";
  if (code == 334 || code == 235) return "334 and 235 answer only AUTH";
  if (kind == SlotKind::end_of_data || kind == SlotKind::bdat_last)
    return "after end of data only completion replies (2yz, 4yz, 5yz) are possible, one per accepted recipient (RFC 2033 §4.2)";
  if (kind == SlotKind::greeting) return "a greeting is 220, 554 or 521 (RFC 5321 §4.3.2)";
  if (verb == Verb::data && cls == 2) return "DATA has no positive completion reply: it gets 354 or an error (RFC 5321 §4.3.2)";
  if ((verb == Verb::helo || verb == Verb::ehlo) && cls == 2)
    return "an LMTP server must not accept HELO or EHLO (RFC 2033 §4.1)";
  if (cls == 3) return "only DATA (354) and AUTH (334) have intermediate replies";
  if (verb == Verb::rset) return "RSET gets 250 (RFC 5321 §4.1.1.5)";
  if (verb == Verb::noop) return "NOOP gets 250 (RFC 5321 §4.1.1.9)";
  if (verb == Verb::quit) return "QUIT gets 221 (RFC 5321 §4.1.1.10)";
  return "the command/reply sequences of RFC 5321 §4.3.2 have no such reply";
}

int hint_mismatch(SlotKind kind, Verb verb, const Reply& r) {
  if (!r.enhanced || r.code < 0) return 0;
  const auto& e = *r.enhanced;
  const bool cmd = kind == SlotKind::command;
  if (e.subject == 1 && (e.detail == 0 || e.detail == 7 || e.detail == 8))  // sender status
    return cmd && verb == Verb::mail ? 0 : 1;
  if (e.subject == 1 && e.detail >= 1 && e.detail <= 6)  // recipient status
    return cmd && (verb == Verb::rcpt || verb == Verb::vrfy || verb == Verb::expn) ? 0 : 1;
  if (e.subject == 6)  // content
    return cmd && verb != Verb::data && verb != Verb::bdat ? 1 : 0;
  return 0;
}

}  // namespace lockstep
