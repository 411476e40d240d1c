#!/usr/bin/env bash
# Usage: tests/peers/incident-lockers.sh DIR [before|before-late|after|after-late|none]
#
# Reproduces the "350 lockers" incident with the real Postfix LMTP client:
# fake_lmtp.py (a Dovecot-like LMTP server) writes the stray line "350 lockers"
# before (default) or after the end-of-data replies of the first message of
# each connection; the "-late" modes put 0.5 s between the stray line and
# those replies, so they reach Postfix in separate reads ("none": no stray,
# the baseline). Postfix caches LMTP
# connections to 127.0.0.1 and delivers one message at a time, and two
# one-recipient messages are sent back to back, so the second one goes over
# the cached connection if Postfix keeps it.
# Everything lives in DIR: DIR/postfix (the Postfix instance), DIR/fake.log
# (the server's view) and DIR/postfix-excerpt.log (the lmtp -v lines).
# Ports: SMTP_PORT (default 24027) and LMTP_PORT (default 24004).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/peers/lib.sh
. "$here/lib.sh"

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  sed -n '2s/^# Usage: *//p' "${BASH_SOURCE[0]}" >&2
  exit 2
fi
need_root
dir=$(abs_dir "$1")
mode=${2:-before}
smtp_port=${SMTP_PORT:-24027}
lmtp_port=${LMTP_PORT:-24004}
python=/usr/bin/python3
[ -x "$python" ] || python=python3

stray=()
case "$mode" in
  before) stray=(--stray "350 lockers") ;;
  before-late) stray=(--stray "350 lockers" --stray-delay 0.5) ;;
  after) stray=(--stray "350 lockers" --stray-after) ;;
  after-late) stray=(--stray "350 lockers" --stray-after --stray-delay 0.5) ;;
  none) ;;
  *) die "unknown mode '$mode'" ;;
esac

cleanup() {
  "$here/postfix.sh" stop "$dir/postfix" >/dev/null || true
  if pid=$(read_pid "$dir/fake.pid"); then stop_pid "$pid" 5 || true; fi
}
trap cleanup EXIT

port_open "$lmtp_port" && die "127.0.0.1:$lmtp_port is already in use"
rm -f "$dir/fake.log"
"$python" "$here/fake_lmtp.py" --port "$lmtp_port" "${stray[@]}" --timeout 300 \
  --pidfile "$dir/fake.pid" --log "$dir/fake.log" </dev/null >"$dir/fake.out" 2>&1 &
wait_port "$lmtp_port" 10 "$!" "$dir/fake.out"

"$here/postfix.sh" start "$dir/postfix" "$smtp_port" "inet:127.0.0.1:$lmtp_port"
# Cache every connection to the fake server (the destination's host part) and
# deliver one message at a time, so the second message finds the first one's
# connection in the cache.
"$here/postfix.sh" conf "$dir/postfix" \
  lmtp_connection_cache_destinations=127.0.0.1 \
  lmtp_destination_concurrency_limit=1
sleep 1 # let the reloaded daemons settle
"$here/postfix.sh" send "$dir/postfix" sender@example.org alice@lab.test "lockers 1"
"$here/postfix.sh" send "$dir/postfix" sender@example.org bob@lab.test "lockers 2"
"$here/postfix.sh" wait-queue-empty "$dir/postfix" 60
sleep 3 # let a cached connection idle out (lmtp_connection_cache_time_limit 2s)
cleanup
trap - EXIT

"$here/postfix.sh" excerpt "$dir/postfix" >"$dir/postfix-excerpt.log"
echo "--- server view ($dir/fake.log)"
grep -vE ' S: 250-' "$dir/fake.log"
echo "--- postfix ($dir/postfix-excerpt.log, protocol and status lines)"
grep -E 'lmtp\[[0-9]+\]: ([<>] |[0-9A-F]+: to=|smtp_connect_addr|smtp_session_activate|connection closed)' \
  "$dir/postfix-excerpt.log"
