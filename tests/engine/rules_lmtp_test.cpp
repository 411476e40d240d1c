// Rule cases for RFC 2033 (LMTP-*).
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
  };
}

}  // namespace lockstep::test
