#!/usr/bin/env bash
# Usage: tests/peers/suite_live.sh LOCKSTEP
#
# The server suite against the real Dovecot LMTP and Cyrus lmtpd (started by
# tests/peers/ in a temporary directory): every case must pass except those listed in
# tests/peers/suite-expected.txt, which must have exactly the listed verdict. Prints
# the per-peer result table. Skips (exit 77) when not root or the peers are missing.
set -euo pipefail
bin=$(realpath "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/peers/lib.sh
. "$here/lib.sh"
if [ "$(id -u)" -ne 0 ]; then echo "suite_live: needs root, skipped"; exit 77; fi
for tool in dovecot /usr/lib/cyrus/bin/master; do
  command -v "$tool" >/dev/null || { echo "suite_live: $tool not installed, skipped"; exit 77; }
done
work=$(mktemp -d /tmp/lockstep-suite-live.XXXXXX)
cleanup() {
  "$here/dovecot.sh" stop "$work/dovecot" >/dev/null 2>&1 || true
  "$here/cyrus.sh" stop "$work/cyrus" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
read -r dport cport < <(python3 -c 'import socket
ss=[socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
"$here/dovecot.sh" start "$work/dovecot" "$dport" >/dev/null
"$here/cyrus.sh" start "$work/cyrus" "$cport" >/dev/null
"$bin" suite server --target "127.0.0.1:$dport" --format json -o "$work/dovecot.json" --html "$work/dovecot.html" || true
"$bin" suite server --target "127.0.0.1:$cport" --format json -o "$work/cyrus.json" || true
# The incidents library's server cases, judged like the suite's.
incidents=$here/../../scenarios/incidents/servers
"$bin" run --target "127.0.0.1:$dport" --format json -o "$work/dovecot-incidents.json" "$incidents" || true
"$bin" run --target "127.0.0.1:$cport" --format json -o "$work/cyrus-incidents.json" "$incidents" || true
# The same traffic against the other server: each peer's recorded transcript replayed
# against the other gets the same reply codes.
fx=$here/../fixtures/transcripts
replay_fail=0
"$bin" replay "$fx/dovecot.txt" --target "127.0.0.1:$cport" --color never >"$work/replay-cyrus.txt" ||
  { echo "FAIL: Dovecot's transcript replayed against Cyrus"; cat "$work/replay-cyrus.txt"; replay_fail=1; }
"$bin" replay "$fx/cyrus.txt" --target "127.0.0.1:$dport" --color never >"$work/replay-dovecot.txt" ||
  { echo "FAIL: Cyrus's transcript replayed against Dovecot"; cat "$work/replay-dovecot.txt"; replay_fail=1; }
[ "$replay_fail" -eq 0 ] && echo "replay: Dovecot's transcript against Cyrus and Cyrus's against Dovecot give the recorded codes"
python3 - "$here/suite-expected.txt" "$work/dovecot.json" "$work/cyrus.json" "$replay_fail" \
  "$work/dovecot-incidents.json" "$work/cyrus-incidents.json" <<'PY'
import json, sys
expected = {}
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if line:
        peer, case, verdict = line.split()
        expected[(peer, case)] = verdict
ok = True
for peer, path, incidents in (("dovecot", sys.argv[2], sys.argv[5]), ("cyrus", sys.argv[3], sys.argv[6])):
    doc = json.load(open(path))
    t = doc["totals"]
    print(f"{peer}: {doc['peer']}: {t['cases']} cases, {t['passed']} passed, {t['failed']} failed, "
          f"{t['not_applicable']} not applicable, {t['errors']} could not run")
    inc = json.load(open(incidents))
    print(f"{peer}: incidents: " + ", ".join(f"{c['id']} {c['verdict']}" for c in inc["cases"]))
    seen = set()
    for c in doc["cases"] + inc["cases"]:
        want = expected.get((peer, c["id"]), "pass")
        seen.add(c["id"])
        if c["verdict"] != want:
            ok = False
            print(f"  UNEXPECTED {peer} {c['id']}: {c['verdict']} (expected {want}): {c['reason']}")
    for (p, case), v in expected.items():
        if p == peer and case not in seen:
            ok = False
            print(f"  MISSING {peer} {case}: listed as {v} but the suite has no such case")
ok = ok and sys.argv[4] == "0"
print("1 passed, 0 failed" if ok else "0 passed, 1 failed")
sys.exit(0 if ok else 1)
PY
