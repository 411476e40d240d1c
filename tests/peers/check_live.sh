#!/usr/bin/env bash
# Usage: tests/peers/check_live.sh LOCKSTEP
#
# Records fresh Postfix lmtp -v logs from the real peers (tests/peers/smoke.sh: Postfix
# delivering to Dovecot and to Cyrus, one unknown recipient each) and checks them with
# lockstep: Dovecot's sessions must give no error; Cyrus's only the one known deviation
# of Cyrus 3.6 (a multi-line 550 whose first lines carry no enhanced status code).
# Skips (exit 77) when not root, since the daemons need it.
set -euo pipefail
bin=$(realpath "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ "$(id -u)" -ne 0 ]; then echo "check_live: needs root, skipped"; exit 77; fi
for tool in postfix dovecot /usr/lib/cyrus/bin/master; do
  command -v "$tool" >/dev/null || { echo "check_live: $tool not installed, skipped"; exit 77; }
done
work=$(mktemp -d /tmp/lockstep-live.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
# Ports the kernel says are free now (other tests may run beside this one).
read -r p1 p2 p3 < <(python3 -c 'import socket
ss=[socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
export DOVECOT_PORT=$p1 CYRUS_PORT=$p2 SMTP_PORT=$p3
timeout 300 "$here/smoke.sh" "$work/peers" "$work/logs" </dev/null >"$work/smoke.out" 2>&1 || {
  echo "FAIL: smoke.sh"; tail -30 "$work/smoke.out"; exit 1; }
fail=0
"$bin" check --format json "$work/logs/postfix-dovecot-clean.log" >"$work/dovecot.json" || true
"$bin" check --format json "$work/logs/postfix-cyrus-clean.log" >"$work/cyrus.json" || true
python3 - "$work/dovecot.json" "$work/cyrus.json" <<'PY' || fail=1
import json, sys
dov = json.load(open(sys.argv[1]))
cyr = json.load(open(sys.argv[2]))
ok = True
def errors(doc):
    return [(s["conn"], f["rule"], f["bytes"]) for s in doc["sessions"] for f in s["findings"] if f["severity"] == "error"]
if dov["totals"]["sessions"] < 1 or errors(dov):
    print("FAIL dovecot:", dov["totals"], errors(dov)); ok = False
if cyr["totals"]["sessions"] < 1:
    print("FAIL cyrus: no sessions"); ok = False
for conn, rule, data in errors(cyr):
    if rule != "ESC-4-REQUIRED-ON-2-4-5" or not data.startswith("550-"):
        print("FAIL cyrus:", conn, rule, data); ok = False
print("dovecot sessions:", dov["totals"]["sessions"], "cyrus sessions:", cyr["totals"]["sessions"])
sys.exit(0 if ok else 1)
PY
[ "$fail" -eq 0 ] && echo "1 passed, 0 failed" || { echo "0 passed, 1 failed"; exit 1; }
