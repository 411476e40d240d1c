#!/usr/bin/env bash
# Usage: tests/peers/client_suite_live.sh LOCKSTEP
#
# The client suite against the real Postfix lmtp client: a private Postfix instance
# (tests/peers/postfix.sh) delivers to lockstep, which plays each case's server; the
# trigger injects one message for alice and bob, the reset empties the queue between
# cases. Every case must pass except those listed in tests/peers/suite-expected.txt
# (peer "postfix"). Skips (exit 77) when not root or Postfix is missing.
set -euo pipefail
bin=$(realpath "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/peers/lib.sh
. "$here/lib.sh"
if [ "$(id -u)" -ne 0 ]; then echo "client_suite_live: needs root, skipped"; exit 77; fi
command -v postfix >/dev/null || { echo "client_suite_live: postfix not installed, skipped"; exit 77; }
work=$(mktemp -d /tmp/lockstep-client-suite.XXXXXX)
cleanup() {
  "$here/postfix.sh" stop "$work/postfix" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
read -r sport lport < <(python3 -c 'import socket
ss=[socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
"$here/postfix.sh" start "$work/postfix" "$sport" "inet:127.0.0.1:$lport" >/dev/null
"$bin" suite client --listen "127.0.0.1:$lport" --timeout 40 --format json -o "$work/postfix.json" \
  --trigger "$here/postfix.sh send $work/postfix sender@example.org alice@lab.test,bob@lab.test lockstep-client-suite" \
  --reset "postsuper -c $work/postfix/etc -d ALL" || true
# The incidents library's client cases, judged like the suite's.
"$bin" run --listen "127.0.0.1:$lport" --timeout 40 --format json -o "$work/postfix-incidents.json" \
  --trigger "$here/postfix.sh send $work/postfix sender@example.org alice@lab.test,bob@lab.test lockstep-incident" \
  --reset "postsuper -c $work/postfix/etc -d ALL" "$here/../../scenarios/incidents/clients" || true
python3 - "$here/suite-expected.txt" "$work/postfix.json" "$work/postfix-incidents.json" <<'PY'
import json, sys
expected = {}
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if line:
        peer, case, verdict = line.split()
        if peer == "postfix":
            expected[case] = verdict
doc = json.load(open(sys.argv[2]))
t = doc["totals"]
print(f"postfix: {t['cases']} cases, {t['passed']} passed, {t['failed']} failed, {t['not_applicable']} not applicable, "
      f"{t['errors']} could not run")
inc = json.load(open(sys.argv[3]))
print("postfix: incidents: " + ", ".join(f"{c['id']} {c['verdict']}" for c in inc["cases"]))
ok = True
for c in doc["cases"] + inc["cases"]:
    want = expected.get(c["id"], "pass")
    if c["verdict"] != want:
        ok = False
        print(f"  UNEXPECTED postfix {c['id']}: {c['verdict']} (expected {want}): {c['reason']}")
        for line in c["transcript"][-12:]:
            print(f"      {line}")
print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
sys.exit(0 if ok else 1)
PY
