#!/usr/bin/env bash
# Usage: tests/peers/fault_live.sh LOCKSTEP [DIR]
#
# Real Postfix -> lockstep proxy with faults -> real Dovecot: what this Postfix does
# when the server misbehaves, from Postfix's log, its queue and the mailboxes.
#   1. cyrus-lockers: "350 lockers" before the end-of-data replies of a message to
#      alice and bob, then a message to carol over the cached connection.
#   2. lost-final-reply, added and removed at runtime over the control API: the
#      connection is lost after the end of data; Postfix retries.
#   3. slow-data-done: the end-of-data reply held back past lmtp_data_done_timeout
#      (shortened to 2 s here); Postfix retries.
# Prints what Postfix did and asserts it. Everything lives in DIR (default: a fresh
# temporary directory, removed at the end). Skips (exit 77) when not root or when the
# peers are not installed.
set -euo pipefail
bin=$(realpath "$1")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/peers/lib.sh
. "$here/lib.sh"
if [ "$(id -u)" -ne 0 ]; then echo "fault_live: needs root, skipped"; exit 77; fi
for tool in postfix dovecot curl; do
  command -v "$tool" >/dev/null || { echo "fault_live: $tool not installed, skipped"; exit 77; }
done
if [ -n "${2:-}" ]; then
  work=$(abs_dir "$2")
else
  work=$(mktemp -d /tmp/lockstep-fault-live.XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi
chmod 755 "$work"
read -r dport sport pport cport < <(python3 -c 'import socket
ss=[socket.socket() for _ in range(4)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pf=$work/postfix
proxy_pid=

cleanup() {
  "$here/postfix.sh" stop "$pf" >/dev/null 2>&1 || true
  [ -z "$proxy_pid" ] || stop_pid "$proxy_pid" 10 || true
  "$here/dovecot.sh" stop "$work/dovecot" >/dev/null 2>&1 || true
}
trap 'cleanup; [ -n "${2:-}" ] || rm -rf "$work"' EXIT

"$here/dovecot.sh" start "$work/dovecot" "$dport" >/dev/null
mkdir -p "$work/rec"
"$bin" proxy --listen "127.0.0.1:$pport" --upstream "127.0.0.1:$dport" --record "$work/rec" \
  --control "127.0.0.1:$cport" --color never </dev/null >"$work/proxy.log" 2>&1 &
proxy_pid=$!
wait_port "$pport" 10 "$proxy_pid" "$work/proxy.log"
wait_port "$cport" 10 "$proxy_pid" "$work/proxy.log"
api() { curl -sS -X "$1" "http://127.0.0.1:$cport$2" ${3:+-H 'Content-Type: application/json' -d "$3"}; }

"$here/postfix.sh" start "$pf" "$sport" "inet:127.0.0.1:$pport" >/dev/null
# One message at a time over cached connections, as a busy Postfix delivers.
"$here/postfix.sh" conf "$pf" lmtp_connection_cache_destinations=127.0.0.1 lmtp_destination_concurrency_limit=1 \
  lmtp_data_done_timeout=2s
sleep 1
log=$("$here/postfix.sh" log "$pf")
copies() {  # copies USER SUBJECT: how many messages with SUBJECT USER's Maildir holds
  local d=$work/dovecot/mail/$1/Maildir
  { grep -lx "Subject: $2" "$d"/new/* "$d"/cur/* 2>/dev/null || true; } | wc -l
}
status_of() {  # status_of RCPT SUBJECT-QUEUE-ID-LESS: the status lines for RCPT
  grep -E "to=<$1>" "$log" | sed -E 's/.*(to=<[^>]*>).*(dsn=[^,]*), (status=[a-z]+) ?(.*)/\1 \2 \3 \4/'
}

# --- 1. cyrus-lockers
echo "== 1. cyrus-lockers: '350 lockers' before the end-of-data replies"
# Only the first transaction of a connection: if Postfix reused the connection for the
# next message, that message would meet the surplus reply, not a new stray.
api POST /faults '{"name": "lockers", "spec": "cyrus-lockers,txn=1"}' >/dev/null
"$here/postfix.sh" send "$pf" sender@example.org alice@lab.test,bob@lab.test "lockers one" >/dev/null
"$here/postfix.sh" wait-queue-empty "$pf" 60 >/dev/null
api DELETE /faults/lockers >/dev/null
"$here/postfix.sh" send "$pf" sender@example.org carol@lab.test "lockers two" >/dev/null
"$here/postfix.sh" wait-queue-empty "$pf" 60 >/dev/null
sleep 3  # a cached connection idles out (lmtp_connection_cache_time_limit 2s)
status_of alice@lab.test
status_of bob@lab.test
status_of carol@lab.test
echo "mailboxes: alice $(copies alice 'lockers one'), bob $(copies bob 'lockers one'), carol $(copies carol 'lockers two')"
grep -qE 'to=<alice@lab.test>.*status=bounced .*said: 350 lockers \(in reply to end of DATA command\)' "$log" ||
  fail "Postfix did not bounce alice with '350 lockers' as the end-of-data reply"
grep -qE 'to=<bob@lab.test>.*status=sent .*250 2.0.0 <alice@lab.test>' "$log" ||
  fail "Postfix did not take alice's 250 as bob's reply"
[ "$(copies alice 'lockers one')" -eq 1 ] || fail "alice should hold the message Postfix bounced (Dovecot delivered it)"
[ "$(copies bob 'lockers one')" -eq 1 ] || fail "bob should hold one copy"
[ "$(copies carol 'lockers two')" -eq 1 ] || fail "carol should hold one copy"
grep -qE 'to=<carol@lab.test>.*conn_use=2' "$log" && fail "Postfix reused the desynchronised connection"
"$bin" check --format json "$work/rec" >"$work/check1.json" || true
python3 - "$work/check1.json" <<'PY' || fail "the recording does not show the injected desync"
import json, sys
doc = json.load(open(sys.argv[1]))
sessions = [s for s in doc["sessions"] if any("lockers" in f for f in s.get("faults", []))]
assert sessions, "no session with the lockers fault"
s = sessions[0]
errors = [f for f in s["findings"] if f["severity"] == "error"]
print("recording of the faulted connection:", ", ".join(
    f'{f["rule"]}{"" if f.get("injected") else " (Postfix, after the fault)"}' for f in errors))
assert any(f["rule"] == "LMTP-4.2-PER-RCPT-REPLIES" and f.get("injected") for f in errors), errors
assert all(f.get("injected") or f.get("after_fault") for f in errors), "an error neither injected nor after the fault"
# What Postfix did next: it dropped the connection without QUIT instead of caching it.
assert errors[-1]["rule"] == "SMTP-4.1.1.10-NO-CLOSE-BEFORE-QUIT", errors[-1]
# Carol's message went over a new connection, in lockstep (Postfix closes its cached
# connections without QUIT: the one error it has).
others = [t for t in doc["sessions"] if t is not s and t["commands"] > 0]
clean = [t for t in others if not t["desynced"] and
         all(f["rule"] == "SMTP-4.1.1.10-NO-CLOSE-BEFORE-QUIT" for f in t["findings"] if f["severity"] == "error")]
assert clean, "carol's message did not go over a new connection in lockstep"
PY
conns_before=$(ls "$work/rec" | wc -l)

# --- 2. lost-final-reply
echo "== 2. lost-final-reply: the connection lost after the end of data"
api POST /faults '{"name": "lost", "spec": "lost-final-reply"}' >/dev/null
"$here/postfix.sh" send "$pf" sender@example.org alice@lab.test "lost reply" >/dev/null
deadline=$((SECONDS + 30))
until grep -qE 'to=<alice@lab.test>.*status=deferred' "$log"; do
  [ "$SECONDS" -lt "$deadline" ] || { fail "no deferral after the lost reply"; break; }
  sleep 0.2
done
api DELETE /faults/lost >/dev/null
"$here/postfix.sh" wait-queue-empty "$pf" 60 >/dev/null
grep -E 'to=<alice@lab.test>.*(deferred|sent)' "$log" | tail -2 | sed -E 's/.*(to=<[^>]*>).*(status=[a-z]+) ?(.*)/\1 \2 \3/'
echo "mailboxes: alice $(copies alice 'lost reply')"
[ "$(copies alice 'lost reply')" -eq 2 ] || fail "alice should hold the message twice (delivered, lost reply, delivered again)"
sleep 3  # the retry's cached connection idles out: the next fault applies to new connections

# --- 3. slow-data-done
echo "== 3. slow-data-done: the end-of-data reply 4 s late, lmtp_data_done_timeout 2 s"
api POST /faults '{"name": "slow", "spec": "slow-data-done,ms=4000"}' >/dev/null
"$here/postfix.sh" send "$pf" sender@example.org bob@lab.test "slow reply" >/dev/null
deadline=$((SECONDS + 30))
until grep -qE 'to=<bob@lab.test>.*status=deferred' "$log"; do
  [ "$SECONDS" -lt "$deadline" ] || { fail "no deferral after the slow reply"; break; }
  sleep 0.2
done
api DELETE /faults/slow >/dev/null
"$here/postfix.sh" wait-queue-empty "$pf" 60 >/dev/null
grep -E 'to=<bob@lab.test>.*slow|to=<bob@lab.test>.*(deferred)' "$log" | tail -1 | sed -E 's/.*(to=<[^>]*>).*(status=[a-z]+) ?(.*)/\1 \2 \3/'
echo "mailboxes: bob $(copies bob 'slow reply')"
[ "$(copies bob 'slow reply')" -eq 2 ] || fail "bob should hold the message twice (timed out, delivered again)"
grep -qE 'to=<bob@lab.test>.*status=deferred.*timed out while sending end of data -- message may be sent more than once' "$log" ||
  fail "no 'timed out while sending end of data' deferral"

"$here/postfix.sh" stop "$pf" >/dev/null
stop_pid "$proxy_pid" 10 && proxy_pid=
echo "recordings: $(ls "$work/rec" | wc -l) connection(s), $conns_before after the first part"
[ "$failures" -eq 0 ] && echo "1 passed, 0 failed" || { echo "0 passed, 1 failed ($failures check(s))"; exit 1; }
