// Rule cases for desynchronisation proofs (DESYNC-*) and SMTP smuggling (SMUG-*).
#include "tests/engine/rule_cases.hpp"

namespace lockstep::test {

std::vector<RuleCase> desync_cases() {
  return {
      // A second reply to NOOP arrives while the client has nothing outstanding.
      {"DESYNC-1-UNSOLICITED", hello({"C: NOOP", "S: 250 2.0.0 ok", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      // A conforming AUTH LOGIN exchange: each 334 is answered by a continuation line,
      // not a command, and the 235 is AUTH's final reply.
      {"DESYNC-1-UNSOLICITED",
       auth_login({"S: 235 2.7.0 authenticated", "C: QUIT", "S: 221 2.0.0 bye"}),
       auth_login({"C: QUIT", "S: 221 2.0.0 bye"})},
      // The surplus 250 is what the client takes as the reply to QUIT.
      {"DESYNC-2-IMPOSSIBLE-CODE",
       hello({"C: NOOP", "S: 250 2.0.0 ok", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      // Two accepted recipients, one per-recipient reply, then VRFY's reply.
      {"DESYNC-3-PER-RCPT-COUNT",
       txn2({"C: DATA", "S: 354 go ahead", "C: hello", "C: .", "S: 250 2.0.0 <b@example.test> delivered",
             "C: VRFY postmaster", "S: 252 2.1.5 cannot verify", "C: QUIT", "S: 221 2.0.0 bye"}),
       txn2({"C: DATA", "S: 354 go ahead", "C: hello", "C: .", "S: 250 2.0.0 <b@example.test> delivered",
             "S: 250 2.0.0 <c@example.test> delivered", "C: VRFY postmaster", "S: 252 2.1.5 cannot verify",
             "C: QUIT", "S: 221 2.0.0 bye"})},
      // A surplus: two per-recipient replies for one accepted recipient.
      {"DESYNC-3-PER-RCPT-COUNT",
       data({"C: hello", "C: .", "S: 250 2.0.0 ok", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       data({"C: hello", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      // A 421 spliced into a multi-line reply.
      {"DESYNC-4-MULTILINE-SPLICE",
       hello({"C: NOOP", "S: 250-2.0.0 ok", "S: 421 4.3.2 shutting down", "CLOSE S"}),
       hello({"C: NOOP", "S: 250-2.0.0 ok", "S: 250 2.0.0 still ok", "S: 421 4.3.2 shutting down", "CLOSE S"})},
      // The connection ends with a reply still owed.
      {"DESYNC-5-ACCOUNTING", hello({"C: NOOP", "S: 250 2.0.0 ok", "C: RSET"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C: RSET", "S: 250 2.0.0 ok"})},
      // Without the order of both streams: a reply after the 221 to QUIT.
      {"DESYNC-5-ACCOUNTING", hello({"C: QUIT", "S: 221 2.0.0 bye", "S: 250 2.0.0 ok", "CLOSE S"}),
       hello({"C: QUIT", "S: 221 2.0.0 bye", "CLOSE S"}), unordered()},
      // A surplus reply shifts the client's pairing: it takes '250 2.1.0' (a sender
      // status) for the reply to RCPT.
      {"DESYNC-6-HINTS",
       hello({"C: NOOP", "S: 250 2.0.0 ok", "S: 250 2.0.0 ok", "C: MAIL FROM:<a@example.org>",
              "C: RCPT TO:<b@example.test>", "S: 250 2.1.0 sender ok", "S: 250 2.1.5 recipient ok", "C: RSET",
              "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C: MAIL FROM:<a@example.org>", "C: RCPT TO:<b@example.test>",
              "S: 250 2.1.0 sender ok", "S: 250 2.1.5 recipient ok", "C: RSET", "S: 250 2.0.0 ok", "C: QUIT",
              "S: 221 2.0.0 bye"})},
      // Without order, the surplus is found by realignment.
      {"DESYNC-7-REALIGN",
       hello({"C: NOOP", "S: 250 2.0.0 ok", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}), unordered()},
      // The client counts the refused recipient as accepted: it got the surplus reply.
      {"DESYNC-8-CLIENT-ACTIONS",
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 sender ok", "S: 250 2.1.0 sender ok",
              "C: RCPT TO:<b@example.test>", "S: 550 5.1.1 unknown user", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 sender ok", "C: RCPT TO:<b@example.test>",
              "S: 550 5.1.1 unknown user", "C: QUIT", "S: 221 2.0.0 bye"})},

      // ---------------------------------------------------------------- smuggling
      {"SMUG-1-AMBIGUOUS-EOD-SENT",
       data({"C|hello\r\n.\nworld\r\n", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       data({"C|hello\r\n..\r\nworld\r\n", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      // The server answers right after <CR><LF>.<LF>, while content is still coming.
      {"SMUG-2-SERVER-ACCEPTS-AMBIGUOUS-EOD",
       data({"C|hello\r\n.\nMAIL FROM:<x@example.org>\r\n", "S: 250 2.0.0 ok", "C: .", "C: QUIT",
             "S: 221 2.0.0 bye"}),
       data({"C|hello\r\n.\nMAIL FROM:<x@example.org>\r\n", "C: .", "S: 250 2.0.0 ok", "C: QUIT",
             "S: 221 2.0.0 bye"})},
      {"SMUG-3-SAFE-SERVER-BEHAVIOUR",
       data({"C|hello\nworld\r\n", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       data({"C|hello\nworld\r\n", "C: .", "S: 554 5.6.0 bare LF in content", "C: QUIT", "S: 221 2.0.0 bye"})},
  };
}

}  // namespace lockstep::test
