#!/usr/bin/env bash
# Usage: bench/fuzz_sessions.sh LOCKSTEP [SESSIONS]   (as root: starts Dovecot from tests/peers/)
#
# Network fuzzing speed against the real Dovecot LMTP: `lockstep fuzz --no-minimise`
# sessions per second, against a baseline measured in the same run: clean sessions per
# second (Dovecot's recorded transcript replayed with `lockstep replay`, the same
# connect-send-judge loop without mutations). Prints both and their ratio.
set -euo pipefail
bin=$(realpath "$1")
n=${2:-100}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/lockstep-fuzz-bench.XXXXXX)
trap '"$here/tests/peers/dovecot.sh" stop "$work/d" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
chmod 755 "$work"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$here/tests/peers/dovecot.sh" start "$work/d" "$port" >/dev/null
now() { date +%s.%N; }
t0=$(now)
for _ in $(seq 1 20); do "$bin" replay "$here/tests/fixtures/transcripts/dovecot.txt" --target "127.0.0.1:$port" >/dev/null; done
t1=$(now)
"$bin" fuzz --target "127.0.0.1:$port" --seed 1 --sessions "$n" --duration 3600 --no-minimise -q -o "$work/out" >/dev/null || true
t2=$(now)
python3 - "$t0" "$t1" "$t2" "$n" <<'PY'
import sys
t0, t1, t2, n = map(float, sys.argv[1:])
clean = 20 / (t1 - t0)
fuzz = n / (t2 - t1)
print(f"clean replayed sessions: {clean:.1f}/s; fuzz sessions (no minimising): {fuzz:.1f}/s; ratio {fuzz / clean:.2f}")
PY
