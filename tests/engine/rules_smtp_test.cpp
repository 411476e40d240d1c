// Rule cases for RFC 5321 (SMTP-*), as LMTP inherits them.
#include "tests/engine/rule_cases.hpp"

namespace lockstep::test {

namespace {
const std::string kGreeting = "S: 220 lmtp.example.test LMTP ready";

// A transaction with `n` accepted recipients, then `rest`.
std::vector<std::string> with_rcpts(int n, std::vector<std::string> rest) {
  std::vector<std::string> v{"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 sender ok"};
  for (int i = 1; i <= n; ++i) {
    v.push_back("C: RCPT TO:<user" + std::to_string(i) + "@example.test>");
    v.push_back("S: 250 2.1.5 recipient ok");
  }
  v.insert(v.end(), rest.begin(), rest.end());
  return hello(v);
}
std::string x(std::size_t n) { return std::string(n, 'x'); }
// A domain name of `n` octets: 63-octet labels.
std::string domain(std::size_t n) {
  std::string d;
  while (d.size() < n) {
    if (!d.empty()) d += '.';
    d += std::string(std::min<std::size_t>(63, n - d.size()), 'd');
  }
  return d;
}
}  // namespace

std::vector<RuleCase> smtp_cases() {
  return {
      // ---- lines, characters, command syntax
      {"SMTP-2.3.8-CRLF-ONLY", hello({"C: NOOP", "S|250 2.0.0 ok\n", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: NOOP", "S|250 2.0.0 ok\r\n", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-2.3.8-NO-BARE-CR-LF", hello({"C|NOOP\n", "S: 500 5.5.2 bare LF", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C|NOOP\r\n", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      // A bare CR inside message content.
      {"SMTP-2.3.8-NO-BARE-CR-LF", data({"C: hello\rworld", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       data({"C: hello world", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-2.4-NO-ACTION-BEFORE-CRLF",
       hello({"C|NOOP", "S: 250 2.0.0 ok", "C|\r\n", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C|NOOP", "C|\r\n", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-2.4-CASE-INSENSITIVE", hello({"C: noop", "S: 500 5.5.1 unknown command", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: noop", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-2.4-ASCII-COMMANDS", hello({"C: NOOP h\xc3\xa9llo", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: NOOP hello", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-2.4-7BIT-CONTENT",
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RCPT TO:<b@example.test>", "S: 250 2.1.5 ok",
              "C: DATA", "S: 354 go ahead", "C: Gr\xc3\xbc\xc3\x9f""e", "C: .", "S: 250 2.0.0 ok", "C: QUIT",
              "S: 221 2.0.0 bye"},
             "PIPELINING,ENHANCEDSTATUSCODES,CHUNKING"),
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RCPT TO:<b@example.test>", "S: 250 2.1.5 ok",
              "C: DATA", "S: 354 go ahead", "C: Gruesse", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"},
             "PIPELINING,ENHANCEDSTATUSCODES,CHUNKING")},
      {"SMTP-3.3-NO-SPACE-AROUND-COLON",
       hello({"C: MAIL FROM: <a@example.org>", "S: 501 5.5.4 syntax error", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.1.1-NO-ARGS-RSET-DATA-QUIT",
       hello({"C: RSET now", "S: 501 5.5.4 no arguments allowed", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: RSET", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.1.1.3-PARAMS-ONLY-IF-OFFERED",
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RCPT TO:<b@example.test> NOTIFY=NEVER",
              "S: 250 2.1.5 ok", "C: RSET", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RCPT TO:<b@example.test>", "S: 250 2.1.5 ok",
              "C: RSET", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.1.1.1-EHLO-RESPONSE-SYNTAX",
       hello({"C: QUIT", "S: 221 2.0.0 bye"}, "PIPELINING,ENHANCEDSTATUSCODES,8BITMIME,SIZE=100000"),
       hello({"C: QUIT", "S: 221 2.0.0 bye"}, "PIPELINING,ENHANCEDSTATUSCODES,8BITMIME,SIZE 100000")},
      {"SMTP-4.1.1.1-EHLO-LISTS-NONREQUIRED",
       hello({"C: EXPN staff", "S: 250 2.1.5 Fred <fred@example.test>", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: EXPN staff", "S: 502 5.5.1 not implemented", "C: QUIT", "S: 221 2.0.0 bye"})},

      // ---- reply syntax
      {"SMTP-4.2-REPLY-CODE-SYNTAX", hello({"C: NOOP", "S: 290 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.2-REPLY-LINE-GRAMMAR", hello({"C: NOOP", "S: 250 2.0.0 ok\x07", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      // The server stream ends inside a multi-line reply.
      {"SMTP-4.2.1-MULTILINE-FORMAT", hello({"C: NOOP", "S: 250-2.0.0 ok"}),
       hello({"C: NOOP", "S: 250-2.0.0 ok", "S: 250 2.0.0 still ok"})},
      {"SMTP-4.2.1-MULTILINE-SAME-CODE",
       hello({"C: NOOP", "S: 250-2.0.0 ok", "S: 251 2.0.0 still ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: NOOP", "S: 250-2.0.0 ok", "S: 250 2.0.0 still ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.2.1-SP-AFTER-CODE", hello({"C: NOOP", "S: 250-2.0.0 ok", "S: 250", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: NOOP", "S: 250-2.0.0 ok", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.2-GREETING-SYNTAX",
       {"S: 220 ", "C: LHLO client.example.test", "S: 250-lmtp.example.test", "S: 250-PIPELINING",
        "S: 250-ENHANCEDSTATUSCODES", "S: 250 8BITMIME", "C: QUIT", "S: 221 2.0.0 bye"},
       {"S: 220 lmtp.example.test", "C: LHLO client.example.test", "S: 250-lmtp.example.test", "S: 250-PIPELINING",
        "S: 250-ENHANCEDSTATUSCODES", "S: 250 8BITMIME", "C: QUIT", "S: 221 2.0.0 bye"}},
      {"SMTP-4.5.3.1.5-REPLY-LINE-512",
       hello({"C: NOOP", "S: 250 2.0.0 " + x(600), "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: NOOP", "S: 250-2.0.0 " + x(300), "S: 250 2.0.0 " + x(300), "C: QUIT", "S: 221 2.0.0 bye"})},

      // ---- reply counting and codes
      {"SMTP-4.2-ONE-REPLY-PER-COMMAND",
       hello({"C: NOOP", "S: 250 2.0.0 ok", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      // A missing reply: RSET is never answered, the replies of the later commands follow.
      {"SMTP-4.2-ONE-REPLY-PER-COMMAND",
       hello({"C: RSET", "C: MAIL FROM:<a@example.org>", "C: RCPT TO:<b@example.test>", "C: QUIT",
              "S: 550 5.1.8 sender domain refused", "S: 503 5.5.1 need MAIL first", "S: 221 2.0.0 bye"}),
       hello({"C: RSET", "C: MAIL FROM:<a@example.org>", "C: RCPT TO:<b@example.test>", "C: QUIT",
              "S: 250 2.0.0 ok", "S: 550 5.1.8 sender domain refused", "S: 503 5.5.1 need MAIL first",
              "S: 221 2.0.0 bye"})},
      // A conforming AUTH exchange: 334 is intermediate, the exchange ends with one final
      // reply (RFC 4954 §4, lmtp-rules.md §15.1). The bad session repeats the final reply.
      {"SMTP-4.2-ONE-REPLY-PER-COMMAND",
       auth_login({"S: 235 2.7.0 authenticated", "C: QUIT", "S: 221 2.0.0 bye"}),
       auth_login({"C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.3.1-SEQUENCE-PRESERVED", txn({"C: DATA", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       txn({"C: DATA", "S: 354 go ahead", "C: hello", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.3.2-REPLY-IN-TABLE",
       hello({"C: MAIL FROM:<a@example.org>", "S: 554 5.7.1 sender refused", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@example.org>", "S: 550 5.7.1 sender refused", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.3.2-NO-500-FOR-REQUIRED",
       hello({"C: NOOP", "S: 500 5.5.1 unknown command", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.5.1-MINIMUM-COMMANDS",
       hello({"C: MAIL FROM:<a@example.org>", "S: 502 5.5.1 not implemented", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.2.4-NO-ADVERTISED-502",
       hello({"C: EXPN staff", "S: 502 5.5.1 not implemented", "C: QUIT", "S: 221 2.0.0 bye"},
             "PIPELINING,ENHANCEDSTATUSCODES,8BITMIME,EXPN"),
       hello({"C: EXPN staff", "S: 250 2.1.5 Fred <fred@example.test>", "C: QUIT", "S: 221 2.0.0 bye"},
             "PIPELINING,ENHANCEDSTATUSCODES,8BITMIME,EXPN")},
      {"SMTP-3.8-UNKNOWN-COMMAND-500", hello({"C: FOO bar", "S: 500 5.5.1 unknown command", "CLOSE S"}),
       hello({"C: FOO bar", "S: 500 5.5.1 unknown command", "C: QUIT", "S: 221 2.0.0 bye", "CLOSE S"})},
      {"SMTP-3.5.2-VRFY-MAILBOX", hello({"C: VRFY fred", "S: 250 2.1.5 user exists", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: VRFY fred", "S: 250 2.1.5 Fred <fred@example.test>", "C: QUIT", "S: 221 2.0.0 bye"})},
      // The same rule for EXPN.
      {"SMTP-3.5.2-VRFY-MAILBOX",
       hello({"C: EXPN staff", "S: 250 2.1.5 staff list", "C: QUIT", "S: 221 2.0.0 bye"},
             "PIPELINING,ENHANCEDSTATUSCODES,8BITMIME,EXPN"),
       hello({"C: EXPN staff", "S: 250 2.1.5 Fred <fred@example.test>", "C: QUIT", "S: 221 2.0.0 bye"},
             "PIPELINING,ENHANCEDSTATUSCODES,8BITMIME,EXPN")},
      {"SMTP-3.5.3-VRFY-NOT-IMPLEMENTED",
       hello({"C: VRFY fred", "S: 502 5.5.1 not implemented", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: VRFY fred", "S: 252 2.1.5 cannot verify, will accept", "C: QUIT", "S: 221 2.0.0 bye"})},

      // ---- command order and session state
      {"SMTP-4.1.1.1-HELLO-BEFORE-MAIL",
       {kGreeting, "C: MAIL FROM:<a@example.org>", "S: 503 5.5.1 LHLO first", "C: QUIT", "S: 221 2.0.0 bye"},
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.1.4-EHLO-RESETS",
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: LHLO client.example.test",
              "S: 250-lmtp.example.test", "S: 250-PIPELINING", "S: 250-ENHANCEDSTATUSCODES", "S: 250 8BITMIME",
              "C: RCPT TO:<b@example.test>", "S: 250 2.1.5 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: LHLO client.example.test",
              "S: 250-lmtp.example.test", "S: 250-PIPELINING", "S: 250-ENHANCEDSTATUSCODES", "S: 250 8BITMIME",
              "C: RCPT TO:<b@example.test>", "S: 503 5.5.1 need MAIL first", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.1.4-EHLO-FAILURE-CODES",
       {kGreeting, "C: LHLO client.example.test", "S: 554 5.7.1 go away", "C: QUIT", "S: 221 2.0.0 bye"},
       {kGreeting, "C: LHLO client.example.test", "S: 550 5.7.1 go away", "C: QUIT", "S: 221 2.0.0 bye"}},
      {"SMTP-4.1.4-NONMAIL-ANYTIME",
       {kGreeting, "C: NOOP", "S: 503 5.5.1 LHLO first", "C: QUIT", "S: 221 2.0.0 bye"},
       {kGreeting, "C: NOOP", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}},
      {"SMTP-4.1.4-NO-NESTED-MAIL",
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: MAIL FROM:<c@example.org>",
              "S: 503 5.5.1 nested MAIL", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RSET", "S: 250 2.0.0 ok",
              "C: MAIL FROM:<c@example.org>", "S: 250 2.1.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.1.4-BAD-MAIL-ARG-501",
       hello({"C: MAIL FROM:a@example.org", "S: 250 2.1.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:a@example.org", "S: 501 5.1.7 bad sender address syntax", "C: QUIT",
              "S: 221 2.0.0 bye"})},
      {"SMTP-4.1.4-OUT-OF-ORDER-503",
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: MAIL FROM:<c@example.org>", "S: 250 2.1.0 ok",
              "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: MAIL FROM:<c@example.org>",
              "S: 503 5.5.1 nested MAIL", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-3.3-RCPT-WITHOUT-MAIL-503",
       hello({"C: RCPT TO:<b@example.test>", "S: 250 2.1.5 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: RCPT TO:<b@example.test>", "S: 503 5.5.1 need MAIL first", "C: QUIT", "S: 221 2.0.0 bye"})},
      // Refused, but with another code than 503.
      {"SMTP-3.3-RCPT-WITHOUT-MAIL-503",
       hello({"C: RCPT TO:<b@example.test>", "S: 550 5.1.1 unknown user", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: RCPT TO:<b@example.test>", "S: 503 5.5.1 need MAIL first", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-3.3-TRANSACTION-ORDER", hello({"C: DATA", "S: 503 5.5.1 need MAIL first", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RCPT TO:<nobody@example.test>",
              "S: 550 5.1.1 unknown", "C: DATA", "S: 503 5.5.1 no valid recipients", "C: QUIT", "S: 221 2.0.0 bye"})},
      // DATA after an accepted MAIL, with no RCPT sent at all.
      {"SMTP-3.3-TRANSACTION-ORDER",
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: DATA", "S: 503 5.5.1 no valid recipients",
              "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RCPT TO:<nobody@example.test>",
              "S: 550 5.1.1 unknown", "C: DATA", "S: 503 5.5.1 no valid recipients", "C: QUIT", "S: 221 2.0.0 bye"})},
      // Content pipelined behind a DATA that is refused.
      {"SMTP-3.3-NO-DATA-WITHOUT-354",
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RCPT TO:<nobody@example.test>",
              "S: 550 5.1.1 unknown", "C: DATA", "C: hello", "C: .", "S: 503 5.5.1 no valid recipients",
              "S: 500 5.5.1 unknown command", "S: 500 5.5.1 unknown command", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RCPT TO:<nobody@example.test>",
              "S: 550 5.1.1 unknown", "C: DATA", "S: 503 5.5.1 no valid recipients", "C: QUIT",
              "S: 221 2.0.0 bye"})},
      {"SMTP-4.1.1.5-RSET-250", hello({"C: RSET", "S: 550 5.0.0 no", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: RSET", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      // RSET answered with a 4yz.
      {"SMTP-4.1.1.5-RSET-250", hello({"C: RSET", "S: 451 4.3.0 try again", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: RSET", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.1.1.9-NOOP-250", hello({"C: NOOP", "S: 251 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      // A reply after the 221: the server answers a command sent after QUIT.
      {"SMTP-4.1.1.10-QUIT-221", hello({"C: QUIT", "S: 221 2.0.0 bye", "C: NOOP", "S: 221 2.0.0 bye", "CLOSE S"}),
       hello({"C: QUIT", "S: 221 2.0.0 bye", "C: NOOP", "CLOSE S"})},
      // QUIT answered with a 2yz other than 221, then the server closes.
      {"SMTP-4.1.1.10-QUIT-221", hello({"C: QUIT", "S: 250 2.0.0 bye", "CLOSE S"}),
       hello({"C: QUIT", "S: 221 2.0.0 bye", "CLOSE S"})},
      // QUIT answered with a 5yz.
      {"SMTP-4.1.1.10-QUIT-221", hello({"C: QUIT", "S: 550 5.0.0 no", "CLOSE S"}),
       hello({"C: QUIT", "S: 221 2.0.0 bye", "CLOSE S"})},
      {"SMTP-4.1.1.10-NO-CLOSE-BEFORE-QUIT", hello({"C: NOOP", "S: 250 2.0.0 ok", "CLOSE C"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye", "CLOSE C"})},
      // The client closes after QUIT without waiting for the 221.
      {"SMTP-4.1.1.10-NO-CLOSE-BEFORE-QUIT", hello({"C: NOOP", "S: 250 2.0.0 ok", "C: QUIT", "CLOSE C"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye", "CLOSE C"})},
      {"SMTP-4.1.4-QUIT-LAST", hello({"C: QUIT", "S: 221 2.0.0 bye", "C: NOOP", "CLOSE S"}),
       hello({"C: QUIT", "S: 221 2.0.0 bye", "CLOSE S"})},

      // ---- opening, 421, closing
      {"SMTP-4.3.1-WAIT-FOR-GREETING",
       {"C: LHLO client.example.test", "S: 220 lmtp.example.test LMTP ready", "S: 250-lmtp.example.test",
        "S: 250-PIPELINING", "S: 250-ENHANCEDSTATUSCODES", "S: 250 8BITMIME", "C: QUIT", "S: 221 2.0.0 bye"},
       {"S: 220 lmtp.example.test LMTP ready", "C: LHLO client.example.test", "S: 250-lmtp.example.test",
        "S: 250-PIPELINING", "S: 250-ENHANCEDSTATUSCODES", "S: 250 8BITMIME", "C: QUIT", "S: 221 2.0.0 bye"}},
      {"SMTP-4.3.1-WAIT-FOR-REPLY",
       hello({"C: MAIL FROM:<a@example.org>", "C: RCPT TO:<b@example.test>", "S: 250 2.1.0 ok", "S: 250 2.1.5 ok",
              "C: RSET", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"},
             "ENHANCEDSTATUSCODES,8BITMIME"),
       hello({"C: MAIL FROM:<a@example.org>", "S: 250 2.1.0 ok", "C: RCPT TO:<b@example.test>", "S: 250 2.1.5 ok",
              "C: RSET", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"},
             "ENHANCEDSTATUSCODES,8BITMIME")},
      {"SMTP-3.1-554-GREETING",
       {"S: 554 lmtp.example.test no service here", "C: LHLO client.example.test", "S: 550 5.7.1 go away",
        "C: QUIT", "S: 221 2.0.0 bye", "CLOSE S"},
       {"S: 554 lmtp.example.test no service here", "C: LHLO client.example.test", "S: 503 5.5.1 bad sequence",
        "C: QUIT", "S: 221 2.0.0 bye", "CLOSE S"}},
      // After a 554 greeting the server must still wait for QUIT before closing.
      {"SMTP-3.1-554-GREETING", {"S: 554 lmtp.example.test no service here", "CLOSE S"},
       {"S: 554 lmtp.example.test no service here", "C: QUIT", "S: 221 2.0.0 bye", "CLOSE S"}},
      {"SMTP-3.8-SERVER-CLOSE", hello({"C: NOOP", "S: 250 2.0.0 ok", "CLOSE S"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye", "CLOSE S"})},
      // A definition, not a prohibition: the engine records a 421 that answers no command
      // under this rule (allowed, RFC 5321 §3.8); a 421 answering a command is not recorded.
      {"SMTP-3.8-421-ASYNC", hello({"C: NOOP", "S: 250 2.0.0 ok", "S: 421 4.3.2 shutting down", "CLOSE S"}),
       hello({"C: NOOP", "S: 421 4.3.2 shutting down", "CLOSE S"})},
      {"SMTP-3.8-FORCED-SHUTDOWN-421", hello({"C: NOOP", "S: 250 2.0.0 ok", "C: NOOP", "CLOSE S"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C: NOOP", "S: 421 4.3.2 shutting down", "CLOSE S"})},
      {"SMTP-3.8-CLIENT-LOSS-IS-451", data({"C: hello", "CLOSE C", "CLOSE S"}),
       data({"C: hello", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye", "CLOSE C", "CLOSE S"})},

      // ---- DATA, end of data, transparency
      {"SMTP-4.1.1.4-EOD-SEQUENCE", data({"C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       data({"C: hello", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.1.1.4-NO-LF-ONLY-LINES", hello({"C|NOOP\n", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C|NOOP\n", "S: 500 5.5.2 line must end in CRLF", "C: QUIT", "S: 221 2.0.0 bye"})},
      // An end-of-data reply right after a "." line ended by bare LF.
      {"SMTP-4.1.1.4-NO-LF-ONLY-LINES",
       data({"C|hello\r\n.\nworld\r\n", "S: 250 2.0.0 ok", "C: .", "C: QUIT", "S: 221 2.0.0 bye"}),
       data({"C|hello\r\n.\nworld\r\n", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.1.1.4-LF-DOT-LF-NOT-EOD",
       data({"C|hello\n.\nMAIL FROM:<x@example.org>\r\n", "S: 250 2.0.0 ok", "C: .", "C: QUIT", "S: 221 2.0.0 bye"}),
       data({"C|hello\n.\nMAIL FROM:<x@example.org>\r\n", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.5.2-DOT-STUFFING",
       data({"C: hello", "C: .hidden", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       data({"C: hello", "C: ..hidden", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},

      // ---- size limits
      {"SMTP-4.5.3.1.1-LOCAL-PART-64",
       hello({"C: MAIL FROM:<" + x(65) + "@example.org>", "S: 250 2.1.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<" + x(64) + "@example.org>", "S: 250 2.1.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.5.3.1.2-DOMAIN-255",
       hello({"C: MAIL FROM:<a@" + domain(256) + ">", "S: 250 2.1.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@" + domain(255) + ">", "S: 250 2.1.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.5.3.1.3-PATH-256",
       hello({"C: MAIL FROM:<" + x(60) + "@" + domain(194) + ">", "S: 250 2.1.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<" + x(60) + "@" + domain(193) + ">", "S: 250 2.1.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.5.3.1.4-COMMAND-LINE-512",
       hello({"C: NOOP " + x(506), "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: NOOP " + x(505), "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      // The client stream ends inside a command line.
      {"SMTP-4.5.3.1.4-COMMAND-LINE-512", hello({"C: NOOP", "S: 250 2.0.0 ok", "C|QUI"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C|QUIT\r\n", "S: 221 2.0.0 bye"})},
      {"SMTP-4.5.3.1.6-TEXT-LINE-1000",
       data({"C: " + x(999), "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"}),
       data({"C: " + x(998), "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.5.3.1.7-MESSAGE-64K",
       data({"C: hello", "C: .", "S: 552 5.3.4 message too big", "C: QUIT", "S: 221 2.0.0 bye"}),
       data({"C: hello", "C: .", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye"})},
      // A size refusal by enhanced code (X.3.4) with another reply code than 552.
      {"SMTP-4.5.3.1.7-MESSAGE-64K",
       data({"C: hello", "C: .", "S: 554 5.3.4 message too big", "C: QUIT", "S: 221 2.0.0 bye"}),
       data({"C: hello", "C: .", "S: 554 5.7.1 message refused", "C: QUIT", "S: 221 2.0.0 bye"})},
      {"SMTP-4.5.3.1.8-100-RECIPIENTS",
       with_rcpts(1, {"C: RCPT TO:<more@example.test>", "S: 452 4.5.3 too many recipients", "C: QUIT",
                      "S: 221 2.0.0 bye"}),
       with_rcpts(100, {"C: RCPT TO:<more@example.test>", "S: 452 4.5.3 too many recipients", "C: QUIT",
                        "S: 221 2.0.0 bye"})},
      {"SMTP-4.5.3.1.10-TOO-MANY-452",
       with_rcpts(100, {"C: RCPT TO:<more@example.test>", "S: 552 5.5.3 too many recipients", "C: QUIT",
                        "S: 221 2.0.0 bye"}),
       with_rcpts(100, {"C: RCPT TO:<more@example.test>", "S: 452 4.5.3 too many recipients", "C: QUIT",
                        "S: 221 2.0.0 bye"})},

      // ---- timeouts (each script step is 1 ms)
      {"SMTP-4.5.3.2-CLIENT-TIMEOUTS", hello({"C: NOOP", "CLOSE C"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "C: QUIT", "S: 221 2.0.0 bye", "CLOSE C"})},
      {"SMTP-4.5.3.2.7-SERVER-TIMEOUT",
       hello({"C: NOOP", "S: 250 2.0.0 ok", "S: 421 4.4.2 idle timeout, closing", "CLOSE S"}),
       hello({"C: NOOP", "S: 250 2.0.0 ok", "S: 421 4.3.2 system shutting down", "CLOSE S"})},

      // ---- what a client does with replies
      {"SMTP-4.2-CLIENT-OUT-OF-RANGE",
       hello({"C: MAIL FROM:<a@example.org>", "S: 650 2.1.0 ok", "C: RCPT TO:<b@example.test>", "S: 250 2.1.5 ok",
              "C: QUIT", "S: 221 2.0.0 bye"}),
       hello({"C: MAIL FROM:<a@example.org>", "S: 650 2.1.0 ok", "C: RSET", "S: 250 2.0.0 ok", "C: QUIT",
              "S: 221 2.0.0 bye"})},
  };
}

}  // namespace lockstep::test
