#!/usr/bin/env bash
# Usage: tests/peers/proxy_live.sh LOCKSTEP
#
# Real peers through the proxy: Postfix -> lockstep proxy -> Dovecot and -> Cyrus, with
# TCP and unix-socket upstreams, several recipients (one unknown). smoke.sh checks that
# every message landed exactly once in the right mailboxes; this script then checks the
# recordings: every session recorded, one end-of-data reply per accepted recipient, and
# no finding of error severity but Cyrus 3.6's known multi-line 550 deviation.
# Skips (exit 77) when not root.
set -euo pipefail
bin=$(realpath "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ "$(id -u)" -ne 0 ]; then echo "proxy_live: needs root, skipped"; exit 77; fi
for tool in postfix dovecot /usr/lib/cyrus/bin/master; do
  command -v "$tool" >/dev/null || { echo "proxy_live: $tool not installed, skipped"; exit 77; }
done
work=$(mktemp -d /tmp/lockstep-proxy-live.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
# Ports the kernel says are free now (other tests may run beside this one); the proxy
# uses PROXY_PORT and PROXY_PORT+1.
read -r p1 p2 p3 p4 < <(python3 -c 'import socket
ss=[socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
while True:
    a, b = socket.socket(), socket.socket()
    a.bind(("127.0.0.1", 0))
    try:
        b.bind(("127.0.0.1", a.getsockname()[1] + 1))
        break
    except OSError:
        a.close(); b.close()
print(*[s.getsockname()[1] for s in ss], a.getsockname()[1])')
export DOVECOT_PORT=$p1 CYRUS_PORT=$p2 SMTP_PORT=$p3 PROXY_PORT=$p4 LOCKSTEP=$bin
timeout 300 "$here/smoke.sh" "$work/peers" </dev/null >"$work/smoke.out" 2>&1 || {
  echo "FAIL: deliveries through the proxy"; tail -30 "$work/smoke.out"; for f in "$work"/peers/proxy-*.log; do tail -5 "$f"; done; exit 1; }
fail=0
for peer in dovecot cyrus; do
  "$bin" check --format json --ladder all "$work/peers/rec-$peer" >"$work/$peer.json" || true
  python3 - "$peer" "$work/$peer.json" <<'PY' || fail=1
import json, sys
peer, path = sys.argv[1], sys.argv[2]
doc = json.load(open(path))
ok = True
sessions = doc["sessions"]
# 3 messages over TCP and 1 over the unix socket, each on its own connection or reused.
if len(sessions) < 2:
    print(f"FAIL {peer}: {len(sessions)} sessions recorded"); ok = False
total_rcpt_ok = total_eod = 0
# The readiness probe (a connect and close with no command) is a session of its own.
sessions = [s for s in sessions if s["commands"] > 0]
for s in sessions:
    rcpt_ok = sum(1 for l in s["ladder"] if l["dir"] == "server" and l.get("client_pair", "").startswith("RCPT") and l["text"].startswith("2"))
    eod = sum(1 for l in s["ladder"] if l["dir"] == "server" and l.get("client_pair", "").startswith("end of data"))
    total_rcpt_ok += rcpt_ok; total_eod += eod
    if rcpt_ok != eod:
        print(f"FAIL {peer} {s['conn']}: {rcpt_ok} accepted recipients but {eod} end-of-data replies"); ok = False
    for f in s["findings"]:
        if f["severity"] != "error": continue
        if peer == "cyrus" and f["rule"] == "ESC-4-REQUIRED-ON-2-4-5" and f["bytes"].startswith("550-"): continue
        print(f"FAIL {peer} {s['conn']}: {f['rule']}: {f['explanation']}"); ok = False
# alice+bob, alice+carol (nobody refused), bob+carol, alice+carol over unix = 8 deliveries
if total_eod != 8:
    print(f"FAIL {peer}: {total_eod} per-recipient replies in all, expected 8"); ok = False
print(f"{peer}: {len(sessions)} sessions, {total_eod} per-recipient replies, all paired")
sys.exit(0 if ok else 1)
PY
done
[ "$fail" -eq 0 ] && echo "1 passed, 0 failed" || { echo "0 passed, 1 failed"; exit 1; }
