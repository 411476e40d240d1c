// Rule cases for RFC 2033 (LMTP-*).
#include <catch2/catch.hpp>

#include <map>

#include "tests/engine/rule_cases.hpp"

namespace lockstep::test {

std::vector<RuleCase> lmtp_cases() {
  return {
      {"LMTP-4.2-DATA-NO-RCPT-503",
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RCPT TO:<nobody@example.test>",
              "S: 550 5.1.1 unknown", "C: DATA", "S: 354 go ahead", "C: .", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RCPT TO:<nobody@example.test>",
              "S: 550 5.1.1 unknown", "C: DATA", "S: 503 5.5.1 no valid recipients", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"LMTP-4.2-PER-RCPT-REPLIES",
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RCPT TO:<b@example.test>", "S: 250 2.1.5 ok",
              "C: DATA", "S: 354 go ahead", "C: hello", "C: .", "S: 350 lockers", "S: 250 2.0.0 ok", "C: QUIT",
              "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RCPT TO:<b@example.test>", "S: 250 2.1.5 ok",
              "C: DATA", "S: 354 go ahead", "C: hello", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      // A missing per-recipient reply: two accepted recipients, one reply, then the
      // next command's reply (252 cannot answer end of data).
      {"LMTP-4.2-PER-RCPT-REPLIES",
       txn2({"C: DATA", "S: 354 go ahead", "C: hello", "C: .", "S: 250 2.0.0 <b@example.test> delivered",
             "C: VRFY postmaster", "S: 252 2.1.5 cannot verify", "C: QUIT", "S: 221 2.0.0 bye"}),
       txn2({"C: DATA", "S: 354 go ahead", "C: hello", "C: .", "S: 250 2.0.0 <b@example.test> delivered",
             "S: 250 2.0.0 <c@example.test> delivered", "C: VRFY postmaster", "S: 252 2.1.5 cannot verify",
             "C: QUIT", "S: 221 2.0.0 bye"})},

      {"LMTP-4.1-LHLO-NOT-HELO-EHLO",
       {"S: 220 lmtp.example.test LMTP ready", "C: HELO client.example.test", "S: 500 5.5.1 this is LMTP",
        "C: QUIT", "S: 221 2.0.0 bye"},
       {"S: 220 lmtp.example.test LMTP ready", "C: LHLO client.example.test", "S: 250-lmtp.example.test",
        "S: 250-PIPELINING", "S: 250-ENHANCEDSTATUSCODES", "S: 250 8BITMIME", "C: QUIT", "S: 221 2.0.0 bye"}},
      {"LMTP-4.1-HELO-EHLO-NOT-2XX",
       hello({"C: EHLO client.example.test", "S: 250 lmtp.example.test", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: EHLO client.example.test", "S: 500 5.5.1 this is LMTP", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"LMTP-4.1-HELO-EHLO-500",
       hello({"C: HELO client.example.test", "S: 502 5.5.1 not implemented", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: HELO client.example.test", "S: 500 5.5.1 this is LMTP", "C: QUIT", "S: 221 2.0.0 bye"})},

      {"LMTP-4.2-PER-RCPT-ORDER",
       txn2({"C: DATA", "S: 354 go ahead", "C: hello", "C: .", "S: 250 2.0.0 <c@example.test> delivered",
             "S: 452 4.2.2 <b@example.test> mailbox full", "C: QUIT", "S: 221 2.0.0 bye"}),
       txn2({"C: DATA", "S: 354 go ahead", "C: hello", "C: .", "S: 452 4.2.2 <b@example.test> mailbox full",
             "S: 250 2.0.0 <c@example.test> delivered", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"LMTP-4.2-PER-RCPT-CODES",
       txn({"C: DATA", "S: 354 go ahead", "C: hello", "C: .", "S: 354 2.0.0 queued", "C: QUIT", "S: 221 2.0.0 bye"}),
       txn({"C: DATA", "S: 354 go ahead", "C: hello", "C: .", "S: 250 2.0.0 queued", "C: QUIT", "S: 221 2.0.0 bye"})},

      {"LMTP-4.3-BDAT-LAST-PER-RCPT",
       txn({"C: BDAT 7 LAST", "C|hello\r\n", "S: 250 2.0.0 <b@example.test> delivered", "S: 250 2.0.0 ok",
            "C: QUIT", "S: 221 2.0.0 bye"}),
       txn({"C: BDAT 7 LAST", "C|hello\r\n", "S: 250 2.0.0 <b@example.test> delivered", "C: QUIT",
            "S: 221 2.0.0 bye"})},
      // A missing reply to BDAT LAST: two accepted recipients, one reply.
      {"LMTP-4.3-BDAT-LAST-PER-RCPT",
       txn2({"C: BDAT 7 LAST", "C|hello\r\n", "S: 250 2.0.0 <b@example.test> delivered", "C: VRFY postmaster",
             "S: 252 2.1.5 cannot verify", "C: QUIT", "S: 221 2.0.0 bye"}),
       txn2({"C: BDAT 7 LAST", "C|hello\r\n", "S: 250 2.0.0 <b@example.test> delivered",
             "S: 250 2.0.0 <c@example.test> delivered", "C: VRFY postmaster", "S: 252 2.1.5 cannot verify",
             "C: QUIT", "S: 221 2.0.0 bye"})},
      {"LMTP-4.3-BDAT-LAST-ZERO-REPLIES",
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RCPT TO:<nobody@example.test>",
              "S: 550 5.1.1 unknown", "C: BDAT 7 LAST", "C|hello\r\n", "S: 250 2.0.0 ok", "C: QUIT",
              "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RCPT TO:<nobody@example.test>",
              "S: 550 5.1.1 unknown", "C: BDAT 7 LAST", "C|hello\r\n", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"LMTP-4.3-BDAT-NONLAST-ONE-REPLY",
       txn({"C: BDAT 7", "C|hello\r\n", "S: 250 2.0.0 chunk ok", "S: 250 2.0.0 chunk ok", "C: BDAT 0 LAST",
            "S: 250 2.0.0 <b@example.test> delivered", "C: QUIT", "S: 221 2.0.0 bye"}),
       txn({"C: BDAT 7", "C|hello\r\n", "S: 250 2.0.0 chunk ok", "C: BDAT 0 LAST",
            "S: 250 2.0.0 <b@example.test> delivered", "C: QUIT", "S: 221 2.0.0 bye"})},

      {"LMTP-5-MUST-PIPELINING", hello({"C: QUIT", "S: 221 2.0.0 bye"}, "ENHANCEDSTATUSCODES,8BITMIME,CHUNKING"),
       hello({"C: QUIT", "S: 221 2.0.0 bye"}, "PIPELINING,ENHANCEDSTATUSCODES,8BITMIME,CHUNKING")},
      {"LMTP-5-MUST-ENHANCEDSTATUSCODES", hello({"C: QUIT", "S: 221 bye"}, "PIPELINING,8BITMIME,CHUNKING"),
       hello({"C: QUIT", "S: 221 2.0.0 bye"}, "PIPELINING,ENHANCEDSTATUSCODES,8BITMIME,CHUNKING")},
      {"LMTP-5-SHOULD-8BITMIME", hello({"C: QUIT", "S: 221 2.0.0 bye"}, "PIPELINING,ENHANCEDSTATUSCODES,CHUNKING"),
       hello({"C: QUIT", "S: 221 2.0.0 bye"}, "PIPELINING,ENHANCEDSTATUSCODES,8BITMIME,CHUNKING")},

      // The connection ends after one of two per-recipient replies.
      {"LMTP-5-PARTIAL-REPLIES",
       txn2({"C: DATA", "S: 354 go ahead", "C: hello", "C: .", "S: 250 2.0.0 <b@example.test> delivered",
             "CLOSE S", "CLOSE C"}),
       txn2({"C: DATA", "S: 354 go ahead", "C: hello", "C: .", "S: 250 2.0.0 <b@example.test> delivered",
             "S: 250 2.0.0 <c@example.test> delivered", "C: QUIT", "S: 221 2.0.0 bye", "CLOSE S", "CLOSE C"})},
      // A 421 inside the per-recipient block of three: the third recipient is owed.
      {"LMTP-5-PARTIAL-REPLIES",
       txn2({"C: RCPT TO:<d@example.test>", "S: 250 2.1.5 recipient ok", "C: DATA", "S: 354 go ahead", "C: hello",
             "C: .", "S: 250 2.0.0 <b@example.test> delivered", "S: 421 4.3.2 shutting down", "CLOSE S",
             "CLOSE C"}),
       txn2({"C: RCPT TO:<d@example.test>", "S: 250 2.1.5 recipient ok", "C: DATA", "S: 354 go ahead", "C: hello",
             "C: .", "S: 250 2.0.0 <b@example.test> delivered", "S: 250 2.0.0 <c@example.test> delivered",
             "S: 421 4.3.2 shutting down", "CLOSE S", "CLOSE C"})},
      // Deployment rules, judged from the peer addresses.
      {"LMTP-5-NOT-PORT-25", hello({"C: QUIT", "S: 221 2.0.0 bye"}), hello({"C: QUIT", "S: 221 2.0.0 bye"}), {}, false,
       {"10.0.0.5:40000", "10.0.0.1:25"}, {"10.0.0.5:40000", "10.0.0.1:24"}},
      {"LMTP-5-NO-WAN", hello({"C: QUIT", "S: 221 2.0.0 bye"}), hello({"C: QUIT", "S: 221 2.0.0 bye"}), {}, false,
       {"198.51.100.7:40000", "203.0.113.9:24"}, {"192.168.1.7:40000", "192.168.1.9:24"}},
      {"LMTP-5-NO-WAN", hello({"C: QUIT", "S: 221 2.0.0 bye"}), hello({"C: QUIT", "S: 221 2.0.0 bye"}), {}, false,
       {"198.51.100.7:40000", "203.0.113.9:24"}, {"unix:/run/dovecot/lmtp", "unix:/run/dovecot/lmtp"}},
  };
}

}  // namespace lockstep::test

