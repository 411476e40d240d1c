#!/usr/bin/env bash
# A/B of two lockstep builds as recording proxies: relay CPU per message, the two
# proxies up side by side and the order swapped every round (this machine is shared
# and noisy: compare rounds, not runs at different times).
#
# Usage: bench/proxy_ab.sh LOCKSTEP_A LOCKSTEP_B [ROUNDS]
#   env: S (sessions, 10), M (messages per run, 3000), L (message size, 102400)
# Needs: /usr/sbin/smtp-source and /usr/sbin/smtp-sink (Debian package postfix).
# Everything is on 127.0.0.1; the recordings go to a fresh temporary directory and are
# emptied after every run.
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n '2,10p' "$0" >&2; exit 2; }
A=$1 B=$2 R=${3:-6} S=${S:-10} M=${M:-3000} L=${L:-102400}
for t in "$A" "$B" /usr/sbin/smtp-source /usr/sbin/smtp-sink; do [[ -x $t ]] || { echo "proxy_ab: needs $t" >&2; exit 2; }; done
dir=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ps=$(free_port) pa=$(free_port) pb=$(free_port)
user=(); [[ $(id -u) == 0 ]] && user=(-u nobody)
pids=()
cleanup() { kill "${pids[@]}" 2> /dev/null || true; wait 2> /dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
/usr/sbin/smtp-sink "${user[@]}" -L "127.0.0.1:$ps" 1024 & pids+=($!)
"$A" proxy --listen "127.0.0.1:$pa" --upstream "127.0.0.1:$ps" --record "$dir/a.jsonl" --quiet > /dev/null 2>&1 & pids+=($!); PA=$!
"$B" proxy --listen "127.0.0.1:$pb" --upstream "127.0.0.1:$ps" --record "$dir/b.jsonl" --quiet > /dev/null 2>&1 & pids+=($!); PB=$!
sleep 0.5
ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
echo "A=$A B=$B; $S sessions, $M messages of $L octets per run, $R rounds"
for ((i = 1; i <= R; i++)); do
  if ((i % 2)); then order=("A $PA $pa" "B $PB $pb"); else order=("B $PB $pb" "A $PA $pa"); fi
  for o in "${order[@]}"; do
    read -r name pid port <<< "$o"
    t0=$(ticks "$pid") w0=$(date +%s%N)
    timeout 300 /usr/sbin/smtp-source -L -d -s "$S" -m "$M" -l "$L" "127.0.0.1:$port"
    w1=$(date +%s%N); sleep 0.3; t1=$(ticks "$pid")
    awk -v n="$name" -v i="$i" -v t="$((t1 - t0))" -v hz="$hz" -v m="$M" -v w="$((w1 - w0))" \
      'BEGIN { printf "round %d %s cpu_us_per_msg %.1f wall_s %.3f\n", i, n, t / hz * 1e6 / m, w / 1e9 }'
    : > "$dir/$(tr AB ab <<< "$name").jsonl"
  done
done | tee "$dir/rounds.txt"
awk '{ v[$3] = v[$3] " " $5 } END { for (k in v) { n = split(v[k], a, " "); asort(a); printf "%s median %.1f us/msg over %d runs (%s .. %s)\n", k, (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2), n, a[1], a[n] } }' "$dir/rounds.txt"
