#!/usr/bin/env bash
# Throughput, CPU cost and added latency of `lockstep proxy` as an LMTP relay,
# measured against no relay ("direct"), socat and haproxy (TCP mode) in the same
# run. Load: Postfix's smtp-source -L (no pipelining) -> relay -> smtp-sink -L.
# Everything is on 127.0.0.1. The machine may be shared and noisy: the relays are
# interleaved (each cell runs every relay back to back, in a rotating order, in
# every round) and the numbers to compare are the per-round ratios to direct.
#
# Usage: bench/proxy_throughput.sh [-d DIR] [-r ROUNDS] [-b LOCKSTEP] [--threads N]
#                                  [--cells LIST] [--relays LIST] [--scale F]
#                                  [-n NOOPS] [--latency-runs K] [--no-latency | --latency-only]
#                                  [--perf] [--max-time S]
#   -d DIR       where results go (default: a fresh mktemp -d under $TMPDIR)
#   -r ROUNDS    interleaved rounds per cell, 3 or more for a report (default 3)
#   -b LOCKSTEP  the binary (default: build/release/cli/lockstep next to this script)
#   --threads N  lockstep proxy --threads (default: none given, lockstep's own default of one per CPU)
#   --cells LIST comma-separated cell names to run (default: all; see CELLS below)
#   --relays LIST comma-separated relays (default: socat,haproxy,lockstep; direct is
#                always included: it is the baseline). Extra variants, off by default:
#                lockstep-norec (no --record: checking only) and lockstep-t2 (--threads 2)
#   --scale F    multiply every cell's message count by F (e.g. 0.2 for a smoke test)
#   -n NOOPS     NOOP round trips per target for the latency test (default 2000)
#   --latency-runs K  runs of the NOOP latency test (default 3); the table shows medians
#   --no-latency skip the NOOP latency test
#   --latency-only    only the NOOP latency test (no throughput cells)
#   --perf       also profile lockstep (perf record -g -p PID, then --call-graph dwarf)
#                during extra 1 KB / 10-session runs; reports in DIR/perf-*.txt
#   --max-time S stop starting new measurements after S seconds (default 1500)
#
# Needs: /usr/sbin/smtp-source and /usr/sbin/smtp-sink (Debian package postfix),
# socat, haproxy, python3, ss (iproute2), GNU /usr/bin/time; perf for --perf.
# Run as root (smtp-sink then runs with -u nobody) or as a user.
#
# The relays:
#   direct    smtp-source talks to smtp-sink itself
#   socat     socat TCP-LISTEN:P,bind=127.0.0.1,backlog=1024,fork,reuseaddr TCP:127.0.0.1:SINK
#             (backlog: socat's default of 5 drops SYNs when 10+ sessions connect at once)
#   haproxy   haproxy -db -f DIR/haproxy.cfg: mode tcp, no logging, default threads
#   lockstep  lockstep proxy --quiet --record DIR/lockstep-rec.jsonl (live checking and
#             recording on; the recording is emptied after every measurement)
#   lockstep-norec / lockstep-t2: the same without --record / with --threads 2
#
# What one measurement is: `smtp-source -L [-d] -s S -m M -l L -r R 127.0.0.1:PORT`
# with a fixed M per cell (about 1-2 s direct). messages/s = M / wall time. The
# relay's CPU time is utime+stime+cutime+cstime of its process from /proc/PID/stat
# (all threads; socat's forked children are counted once reaped, and the script
# waits until no relayed connection is left before it reads it). Checks after every
# measurement: smtp-source exit status 0 and no stderr (it exits on any lost
# connection or non-2xx reply); for lockstep also the number of "250 2.2.0" replies
# in the recording (= M x R) and every line lockstep printed (with --quiet it
# prints only errors); lines other than the two known smtp-sink findings go to
# DIR/lockstep-unexpected.txt.
#
# Output: Markdown tables on stdout (also DIR/results.md): messages/s and their ratios
# to direct, CPU per message, each lockstep against haproxy round by round (when both
# run), the NOOP latency; raw rows in
# DIR/rounds.tsv; latency samples in DIR/latency-*.tsv; relay logs in DIR.
# Bounded in time: every smtp-source run is under `timeout`, --max-time caps the
# whole run, and every process the script starts is killed on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
dir= rounds=3 bin="$root/build/release/cli/lockstep" threads= only_cells= relays_arg= scale=1
noops=2000 latency=1 doperf=0 max_time=1500 lat_runs=3 lat_only=0
while [[ $# -gt 0 ]]; do
  case $1 in
    -d) dir=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    -b) bin=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --cells) only_cells=$2; shift 2 ;;
    --relays) relays_arg=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    -n) noops=$2; shift 2 ;;
    --no-latency) latency=0; shift ;;
    --latency-only) lat_only=1; shift ;;
    --latency-runs) lat_runs=$2; shift 2 ;;
    --perf) doperf=1; shift ;;
    --max-time) max_time=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

# CELLS: name sessions message-bytes recipients connection-mode messages
#   keep = one connection per session for all its messages (smtp-source -d)
#   new  = a new connection per message (smtp-source without -d)
CELLS=(
  "s1-1k-r1      1    1024 1 keep  6000"
  "s10-1k-r1    10    1024 1 keep 30000"
  "s100-1k-r1  100    1024 1 keep 30000"
  "s10-1k-r5    10    1024 5 keep 15000"
  "s1-100k-r1    1  102400 1 keep  2000"
  "s10-100k-r1  10  102400 1 keep  5000"
  "s100-100k-r1 100 102400 1 keep  5000"
  "s10-100k-r5  10  102400 5 keep  4000"
  "s1-1k-new     1    1024 1 new   2000"
  "s10-1k-new   10    1024 1 new   8000"
)

die() { echo "proxy_throughput: $*" >&2; exit 2; }
(( rounds >= 1 )) || die "need at least 1 round"
(( rounds >= 3 )) || echo "proxy_throughput: warning: fewer than 3 rounds; medians are not meaningful" >&2
for t in /usr/sbin/smtp-source /usr/sbin/smtp-sink /usr/bin/time; do [[ -x $t ]] || die "needs $t"; done
for t in socat haproxy python3 ss awk; do command -v "$t" > /dev/null || die "needs $t in PATH"; done
RELAYS=(direct socat haproxy lockstep)
if [[ -n $relays_arg ]]; then
  RELAYS=(direct)
  IFS=, read -r -a want <<< "$relays_arg"
  for r in "${want[@]}"; do
    case $r in direct) ;; socat|haproxy|lockstep|lockstep-norec|lockstep-t2) RELAYS+=("$r") ;; *) die "unknown relay $r" ;; esac
  done
fi
has_relay() { local r; for r in "${RELAYS[@]}"; do [[ $r == "$1" ]] && return 0; done; return 1; }
LOCKSTEPS=()
for r in "${RELAYS[@]}"; do [[ $r == lockstep* ]] && LOCKSTEPS+=("$r"); done
if (( ${#LOCKSTEPS[@]} > 0 )); then
  [[ -x $bin ]] || die "no lockstep binary at $bin (cmake --preset release && cmake --build --preset release)"
fi

if [[ -z $dir ]]; then dir=$(mktemp -d "${TMPDIR:-/tmp}/lockstep-proxybench.XXXXXX"); fi
mkdir -p "$dir"
export LC_ALL=C
start_s=$SECONDS
hz=$(getconf CLK_TCK)

# --- processes we start; all are killed on exit -----------------------------------
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -TERM -- "-$p" 2> /dev/null || kill -TERM "$p" 2> /dev/null || true
  done
  for p in "${PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2> /dev/null || break; sleep 0.1; done
    kill -KILL -- "-$p" 2> /dev/null || kill -KILL "$p" 2> /dev/null || true
  done
  # The recording can be large; the small logs stay.
  rm -f "$dir"/lockstep*-rec.jsonl "$dir/perf-dwarf.data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME CMD...: starts CMD in the background as its own process group (setsid
# without a fork: a background child of a script is not a group leader), so that
# cleanup can kill it together with anything it forks.
start() {
  local name=$1; shift
  setsid "$@" > "$dir/$name.out" 2> "$dir/$name.err" < /dev/null &
  PIDS+=("$!")
  LAST_PID=$!
}
wait_listen() {  # PORT NAME: up to 10 s
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -n $(ss -Hltn "sport = :$1") ]] && return 0
    sleep 0.1
  done
  die "$2 does not listen on 127.0.0.1:$1 (see $dir/$2.err)"
}

# Free loopback ports: the sink and one per relay.
read -r -a ports <<< "$(python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
for s in ss: s.close()' "${#RELAYS[@]}")"
p_sink=${ports[0]}
declare -A PORT=([direct]=$p_sink) RPID=([direct]=0)
for ((i = 1; i < ${#RELAYS[@]}; i++)); do PORT[${RELAYS[$i]}]=${ports[$i]}; done

user_opt=()
(( EUID == 0 )) && user_opt=(-u nobody)
start sink /usr/sbin/smtp-sink "${user_opt[@]}" -L -m 1024 "127.0.0.1:$p_sink" 1024
sink_pid=$LAST_PID
wait_listen "$p_sink" sink
if has_relay socat; then
  start socat socat "TCP-LISTEN:${PORT[socat]},bind=127.0.0.1,backlog=1024,fork,reuseaddr" "TCP:127.0.0.1:$p_sink"
  RPID[socat]=$LAST_PID; wait_listen "${PORT[socat]}" socat
fi
if has_relay haproxy; then
  cat > "$dir/haproxy.cfg" <<EOF
global
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
listen lmtp
    bind 127.0.0.1:${PORT[haproxy]:-0}
    server sink 127.0.0.1:$p_sink
EOF
  start haproxy haproxy -db -f "$dir/haproxy.cfg"
  RPID[haproxy]=$LAST_PID; wait_listen "${PORT[haproxy]}" haproxy
fi
declare -A REC=() OUTLINES=()
for r in "${LOCKSTEPS[@]}"; do
  args=(proxy --listen "127.0.0.1:${PORT[$r]}" --upstream "127.0.0.1:$p_sink" --quiet)
  case $r in
    lockstep) REC[$r]="$dir/$r-rec.jsonl"; args+=(--record "${REC[$r]}" ${threads:+--threads "$threads"}) ;;
    lockstep-t2) REC[$r]="$dir/$r-rec.jsonl"; args+=(--record "${REC[$r]}" --threads 2) ;;
    lockstep-norec) REC[$r]=; args+=(${threads:+--threads "$threads"}) ;;
  esac
  start "$r" "$bin" "${args[@]}"
  RPID[$r]=$LAST_PID; OUTLINES[$r]=0; wait_listen "${PORT[$r]}" "$r"
done
echo "sink :$p_sink; relays: $(for r in "${RELAYS[@]}"; do printf '%s :%s  ' "$r" "${PORT[$r]}"; done)(lockstep --threads ${threads:-default: one per CPU}); results in $dir" >&2

# --- helpers --------------------------------------------------------------------
# CPU ticks of a process (utime+stime+cutime+cstime) plus those of its live children.
proc_ticks() {
  local pid=$1 total=0 c f
  [[ $pid == 0 ]] && { echo 0; return; }
  for f in "/proc/$pid/stat" $(for c in $(cat "/proc/$pid/task/"*/children 2> /dev/null); do echo "/proc/$c/stat"; done); do
    [[ -r $f ]] || continue
    total=$((total + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "$f" 2> /dev/null || echo 0)))
  done
  echo "$total"
}
machine_busy() {  # busy and total jiffies of the whole machine
  awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat
}
# Waits (up to 5 s) until no TCP connection to the sink or the relay is established.
wait_drained() {
  local port=$1 i
  for ((i = 0; i < 100; i++)); do
    [[ -z $(ss -Htn state established "( dport = :$p_sink or sport = :$p_sink or sport = :$port )" | head -1) ]] && return 0
    sleep 0.05
  done
  return 1
}
# Classifies the output of lockstep relay $1 since line $2 (label $3): prints
# "closed broken known other". Expected per smtp-sink session: two error findings
# about smtp-sink itself (its LHLO reply ends with an empty "250 " line; "221 Bye" has
# no enhanced status code although ENHANCEDSTATUSCODES is announced) and the
# "closed: ... 2 error(s), 0 warning(s), 0 note(s)" line. Anything else is unexpected.
classify_lockstep_output() {
  local relay=$1 from=$2 label=$3
  awk -v from="$from" -v label="$label" -v unexp="$dir/lockstep-unexpected.txt" '
    NR <= from { next }
    / closed: / { closed++; if (/lockstep broken/) broken++; if ($0 !~ / 2 error\(s\), 0 warning\(s\), 0 note\(s\)$/) { other++; print label ": " $0 >> unexp }; next }
    /SMTP-4\.1\.1\.1-EHLO-RESPONSE-SYNTAX error: capability line .. is not ehlo-keyword/ { known++; next }
    /ESC-4-REQUIRED-ON-2-4-5 error: .221 Bye. has no enhanced status code/ { known++; next }
    { other++; print label ": " $0 >> unexp }
    END { printf "%d %d %d %d\n", closed + 0, broken + 0, known + 0, other + 0 }' "$dir/$relay.out"
}

tsv="$dir/rounds.tsv"
printf 'round\tcell\trelay\tsessions\tbytes\trcpts\tmode\tmsgs\twall_s\tmsgs_per_s\trelay_cpu_s\tsink_cpu_s\tsource_cpu_s\tmachine_busy\tok\tnote\n' > "$tsv"
: > "$dir/lockstep-unexpected.txt"
: > "$dir/failures.txt"
declare -A DEAD=()

# measure ROUND CELL RELAY SESSIONS BYTES RCPTS MODE MSGS
measure() {
  local round=$1 cell=$2 relay=$3 s=$4 l=$5 r=$6 mode=$7 m=$8
  local port=${PORT[$relay]} rpid=${RPID[$relay]} ok=1 note=
  if [[ -n ${DEAD[$relay]:-} ]]; then return; fi
  if [[ $rpid != 0 ]] && ! kill -0 "$rpid" 2> /dev/null; then
    DEAD[$relay]=1
    echo "round $round $cell $relay: the $relay process is gone (see $dir/$relay.err)" | tee -a "$dir/failures.txt" >&2
    return
  fi
  local dflag=(-d); [[ $mode == new ]] && dflag=()
  local c0 c1 k0 k1 b0 t0 b1 t1 w0 w1 rc=0
  c0=$(proc_ticks "$rpid"); k0=$(proc_ticks "$sink_pid"); read -r b0 t0 < <(machine_busy)
  local lim=$((30 + m / 50))   # generous: 50 messages/s at least
  w0=$EPOCHREALTIME
  timeout -k 5 "$lim" /usr/bin/time -f '%U %S' -o "$dir/src.time" \
    /usr/sbin/smtp-source -L "${dflag[@]}" -s "$s" -m "$m" -l "$l" -r "$r" "127.0.0.1:$port" \
    > "$dir/src.out" 2> "$dir/src.err" || rc=$?
  w1=$EPOCHREALTIME
  wait_drained "$port" || note+="connections-left;"
  sleep 0.1   # the relay finishes its close handling (socat reaps, lockstep ends the sessions)
  c1=$(proc_ticks "$rpid"); k1=$(proc_ticks "$sink_pid"); read -r b1 t1 < <(machine_busy)
  if (( rc != 0 )) || [[ -s $dir/src.err ]]; then
    ok=0; note+="smtp-source-exit-$rc:$(tr '\n' ' ' < "$dir/src.err" | cut -c1-200);"
    [[ $rc == 124 || $rc == 137 ]] && note+="TIMEOUT(${lim}s);"
  fi
  if [[ $relay == lockstep* ]]; then
    local rec=${REC[$relay]} want=$((m * r)) got
    if [[ -n $rec ]]; then
      got=$(grep -F '"dir":"s"' "$rec" | grep -o '250 2\.2\.0' | wc -l || true)
      [[ $got == "$want" ]] || { ok=0; note+="recorded-deliveries-$got-of-$want;"; }
    fi
    local cls closed broken known other sessions
    cls=$(classify_lockstep_output "$relay" "${OUTLINES[$relay]}" "$relay round $round $cell")
    OUTLINES[$relay]=$(wc -l < "$dir/$relay.out")
    read -r closed broken known other <<< "$cls"
    sessions=$s; [[ $mode == new ]] && sessions=$m
    (( closed == sessions )) || note+="sessions-reported-$closed-of-$sessions;"
    (( broken == 0 )) || { ok=0; note+="desynced-$broken;"; }
    (( other == 0 )) || { ok=0; note+="unexpected-output-$other;"; }
    if [[ -n $rec ]]; then
      note+="rec-bytes-per-msg-$(( $(stat -c %s "$rec") / m ));"
      : > "$rec"   # O_APPEND: lockstep keeps writing at the new end
    fi
  fi
  local wall rate src_cpu busy
  wall=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.4f", b - a }')
  rate=$(awk -v m="$m" -v w="$wall" 'BEGIN { printf "%.1f", m / w }')
  src_cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$dir/src.time" 2> /dev/null || echo nan)
  busy=$(awk -v a="$b0" -v b="$b1" -v c="$t0" -v d="$t1" 'BEGIN { printf "%.2f", (d > c) ? (b - a) / (d - c) : 0 }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$cell" "$relay" "$s" "$l" "$r" "$mode" "$m" \
    "$wall" "$rate" "$(awk -v t=$((c1 - c0)) -v h="$hz" 'BEGIN { printf "%.2f", t / h }')" \
    "$(awk -v t=$((k1 - k0)) -v h="$hz" 'BEGIN { printf "%.2f", t / h }')" "$src_cpu" "$busy" "$ok" "${note:--}" >> "$tsv"
  printf '  round %s %-13s %-8s %8.0f msg/s  wall %6.2f s  relay cpu %5.2f s  busy %s  %s\n' "$round" "$cell" "$relay" \
    "$rate" "$wall" "$(awk -v t=$((c1 - c0)) -v h="$hz" 'BEGIN { print t / h }')" "$busy" "$( ((ok)) && echo ok || echo "FAILED $note")" >&2
  if (( ! ok )); then echo "round $round $cell $relay: $note" >> "$dir/failures.txt"; fi
}

# --- warm-up: a few messages through every relay ---------------------------------
for relay in "${RELAYS[@]}"; do
  timeout 30 /usr/sbin/smtp-source -L -d -s 2 -m 200 -l 1024 "127.0.0.1:${PORT[$relay]}" > /dev/null 2>&1 \
    || echo "warm-up through $relay failed" | tee -a "$dir/failures.txt" >&2
done
wait_drained "$p_sink" || true
sleep 0.2
for r in "${LOCKSTEPS[@]}"; do
  OUTLINES[$r]=$(wc -l < "$dir/$r.out")
  [[ -n ${REC[$r]} ]] && : > "${REC[$r]}"
done

# --- the rounds --------------------------------------------------------------------
selected=()
for c in "${CELLS[@]}"; do
  read -r name _ <<< "$c"
  if [[ -z $only_cells || ",$only_cells," == *",$name,"* ]]; then selected+=("$c"); fi
done
(( ${#selected[@]} > 0 )) || die "no cell selected"
(( lat_only )) && selected=()
nrel=${#RELAYS[@]}
stopped=0
for ((round = 1; round <= rounds && !stopped; round++)); do
  ci=0
  for c in "${selected[@]}"; do
    read -r name s l r mode m <<< "$c"
    m=$(awk -v m="$m" -v f="$scale" -v s="$s" 'BEGIN { v = int(m * f); if (v < s) v = s; print v }')
    if (( SECONDS - start_s > max_time )); then
      echo "max time ${max_time}s reached: stopping in round $round" | tee -a "$dir/failures.txt" >&2
      stopped=1; break
    fi
    # Rotate the relay order with the round and the cell.
    for ((k = 0; k < nrel; k++)); do
      relay=${RELAYS[$(((k + round + ci) % nrel))]}
      measure "$round" "$name" "$relay" "$s" "$l" "$r" "$mode" "$m"
    done
    ci=$((ci + 1))
  done
done

# --- NOOP latency ----------------------------------------------------------------------
lat_rows=()
if (( latency )); then
  targets=()
  for relay in "${RELAYS[@]}"; do
    [[ -z ${DEAD[$relay]:-} ]] && targets+=("$relay=127.0.0.1:${PORT[$relay]}")
  done
  for ((i = 1; i <= lat_runs; i++)); do
    if timeout 300 python3 "$here/noop_latency.py" -n "$noops" --raw "$dir/latency-$i.tsv" "${targets[@]}" \
        > "$dir/latency-summary-$i.tsv" 2> "$dir/latency-$i.err"; then
      sed "s/^/$i\t/" "$dir/latency-summary-$i.tsv" >> "$dir/latency.tsv"
    else
      echo "latency run $i failed: $(cat "$dir/latency-$i.err")" | tee -a "$dir/failures.txt" >&2
    fi
  done
  sleep 0.2
  for r in "${LOCKSTEPS[@]}"; do
    cls=$(classify_lockstep_output "$r" "${OUTLINES[$r]}" "$r latency")
    OUTLINES[$r]=$(wc -l < "$dir/$r.out")
    echo "$r output during the latency runs (closed broken known other): $cls" >&2
  done
fi

# --- perf profile of lockstep at 1 KB / 10 sessions ------------------------------------
# Two extra runs: `perf record -g` (frame pointers: exact kernel stacks, user stacks
# mostly broken in a -O2 build) and `--call-graph dwarf` (user stacks too: splits the
# time between relaying, checking and recording).
if (( doperf )) && has_relay lockstep && [[ -z ${DEAD[lockstep]:-} ]] && command -v perf > /dev/null; then
  m=$(awk -v f="$scale" 'BEGIN { v = int(30000 * f); print v < 10 ? 10 : v }')
  for kind in fp dwarf; do
    cg=(-g); [[ $kind == dwarf ]] && cg=(--call-graph dwarf,16384)
    data="$dir/perf-$kind.data"
    perf record "${cg[@]}" -F 999 -o "$data" -p "${RPID[lockstep]}" > "$dir/perf-$kind-record.out" 2>&1 &
    perf_pid=$!; PIDS+=("$perf_pid")
    sleep 1
    c0=$(proc_ticks "${RPID[lockstep]}"); w0=$EPOCHREALTIME
    timeout 300 /usr/sbin/smtp-source -L -d -s 10 -m "$m" -l 1024 "127.0.0.1:${PORT[lockstep]}" > /dev/null 2>&1 || true
    w1=$EPOCHREALTIME; c1=$(proc_ticks "${RPID[lockstep]}")
    kill -INT "$perf_pid" 2> /dev/null || true
    wait "$perf_pid" 2> /dev/null || true
    echo "perf $kind run: $m messages, $(awk -v a="$w0" -v b="$w1" -v m="$m" 'BEGIN { printf "%.0f msg/s under perf", m / (b - a) }'), lockstep CPU $(awk -v t=$((c1 - c0)) -v h="$hz" -v m="$m" 'BEGIN { printf "%.1f us/msg", t / h / m * 1e6 }')" >> "$dir/perf-summary.txt"
    : > "${REC[lockstep]}"
  done
  # As asked for: the default report (children, call graphs), first 80 lines.
  perf report -i "$dir/perf-fp.data" --stdio 2> /dev/null | head -80 > "$dir/perf-report.txt" || true
  # Flat: self time per symbol, and per shared object.
  perf report -i "$dir/perf-fp.data" --stdio --no-children -g none --percent-limit 0.4 2> /dev/null \
    | grep -v '^#' | grep -v '^$' | cut -c1-200 > "$dir/perf-flat.txt" || true
  perf report -i "$dir/perf-fp.data" --stdio --no-children -g none --sort dso 2> /dev/null \
    | grep -v '^#' | grep -v '^$' > "$dir/perf-dso.txt" || true
  # Inclusive time of the syscalls (kernel stacks are exact with -g).
  perf report -i "$dir/perf-fp.data" --stdio --children -g none --sort sym 2> /dev/null \
    | grep -E '\[k\] (__x64_sys_[a-z_0-9]+|net_rx_action|ksys_write)$' | head -20 > "$dir/perf-syscalls.txt" || true
  # Inclusive time of lockstep's own functions (dwarf stacks).
  perf report -i "$dir/perf-dwarf.data" --stdio --children -g none --sort sym 2> /dev/null \
    | grep -E '\[\.\] (lockstep::|__libc_send|__libc_recv|__GI___libc_write|epoll_wait)' | cut -c1-160 | head -40 > "$dir/perf-dwarf-inclusive.txt" || true
  {
    echo "== perf runs"; cat "$dir/perf-summary.txt"
    echo "== CPU by shared object (self)"; cat "$dir/perf-dso.txt"
    echo "== syscalls, inclusive (frame-pointer kernel stacks)"; cat "$dir/perf-syscalls.txt"
    echo "== lockstep functions, inclusive (dwarf)"; cat "$dir/perf-dwarf-inclusive.txt"
    echo "== top symbols, self"; head -40 "$dir/perf-flat.txt"
  } > "$dir/perf-hotspots.txt"
  echo "perf: $dir/perf-hotspots.txt (summary), perf-report.txt (perf report --stdio | head -80)" >&2
fi

relay_rss() { [[ ${RPID[$1]} != 0 ]] && awk '/^VmHWM/ { print $2 }' "/proc/${RPID[$1]}/status" 2> /dev/null || echo 0; }
declare -A RSS=()
for relay in "${RELAYS[@]}"; do RSS[$relay]=$(relay_rss "$relay"); done

# --- report --------------------------------------------------------------------------
report=$(awk -F'\t' -v relays="${RELAYS[*]}" '
  function median(arr, n,   i, j, t) {
    if (n == 0) return -1
    for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j + 1] = arr[j]; arr[j + 1] = t }
    return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
  }
  NR == 1 { next }
  {
    cell = $2; relay = $3
    if (!(cell in seen)) { seen[cell] = 1; cells[++nc] = cell; desc[cell] = sprintf("%s sess, %s B, %s rcpt, %s", $4, $5, $6, $7 == "new" ? "new conn/msg" : "1 conn/session") }
    rate[cell, relay, $1] = $10; ok[cell, relay, $1] = $15; msgs[cell] = $8; rounds[$1] = 1; cpu[cell, relay, $1] = $11 / $8 * 1e6
    if ($15 == 1) {
      n = ++nr[cell, relay]; R[cell, relay, n] = $10
      C[cell, relay, n] = $11 / $8 * 1e6; K[cell, relay, n] = $12 / $8 * 1e6; S[cell, relay, n] = $13 / $8 * 1e6
    } else fails[cell, relay]++
  }
  END {
    nrel = split(relays, rl, " ")
    # Ratios: per round, relay rate / direct rate of the same round; median over rounds.
    for (ci = 1; ci <= nc; ci++) for (k = 1; k <= nrel; k++) {
      cell = cells[ci]; relay = rl[k]; n = 0
      for (r in rounds) if (ok[cell, relay, r] == 1 && ok[cell, "direct", r] == 1 && rate[cell, "direct", r] > 0) { a[++n] = rate[cell, relay, r] / rate[cell, "direct", r] }
      ratio[cell, relay] = median(a, n); delete a
      n = nr[cell, relay]; for (j = 1; j <= n; j++) a[j] = R[cell, relay, j]; mr[cell, relay] = median(a, n); delete a
      for (j = 1; j <= n; j++) a[j] = C[cell, relay, j]; mc[cell, relay] = median(a, n); delete a
      for (j = 1; j <= n; j++) a[j] = K[cell, relay, j]; mk[cell, relay] = median(a, n); delete a
      for (j = 1; j <= n; j++) a[j] = S[cell, relay, j]; ms[cell, relay] = median(a, n); delete a
    }
    printf "Messages/s, median over rounds (in brackets: median of the per-round ratio to direct; F = failed runs):\n\n"
    printf "| cell | messages |"; for (k = 1; k <= nrel; k++) printf " %s |", rl[k]; printf "\n|---|---:|"; for (k = 1; k <= nrel; k++) printf "---:|"; printf "\n"
    for (ci = 1; ci <= nc; ci++) {
      cell = cells[ci]; printf "| %s (%s) | %d |", cell, desc[cell], msgs[cell]
      for (k = 1; k <= nrel; k++) {
        relay = rl[k]
        if (mr[cell, relay] < 0) v = "n/a"
        else if (relay == "direct") v = sprintf("%.0f", mr[cell, relay])
        else v = sprintf("%.0f (%.2fx)", mr[cell, relay], ratio[cell, relay])
        if (fails[cell, relay]) v = v sprintf(" %dF", fails[cell, relay])
        printf " %s |", v
      }
      printf "\n"
    }
    printf "\nRelay CPU time per message, microseconds (user+sys of the relay process, median over rounds):\n\n"
    printf "| cell |"; for (k = 2; k <= nrel; k++) printf " %s |", rl[k]; printf " smtp-sink (direct) | smtp-source (direct) |\n|---|"; for (k = 2; k <= nrel; k++) printf "---:|"; printf "---:|---:|\n"
    for (ci = 1; ci <= nc; ci++) {
      cell = cells[ci]; printf "| %s |", cell
      for (k = 2; k <= nrel; k++) printf " %s |", mc[cell, rl[k]] < 0 ? "n/a" : sprintf("%.1f", mc[cell, rl[k]])
      printf " %.1f | %.1f |\n", mk[cell, "direct"], ms[cell, "direct"]
    }
    # Each lockstep against haproxy, round by round (the two ran minutes apart at most, so
    # the machine'"'"'s drift cancels better than in the ratios to direct): the median of the
    # per-round ratios, and in how many rounds lockstep was at least as fast (used at most
    # as much CPU).
    for (k = 1; k <= nrel; k++) has[rl[k]] = 1
    for (k = 1; k <= nrel; k++) {
      relay = rl[k]
      if (!("haproxy" in has) || relay !~ /^lockstep/) continue
      printf "\n%s against haproxy, round by round (median of the per-round ratios; in brackets, the rounds %s was at least as fast, or used at most as much CPU):\n\n", relay, relay
      printf "| cell | messages/s, %s / haproxy | CPU per message, %s / haproxy |\n|---|---:|---:|\n", relay, relay
      for (ci = 1; ci <= nc; ci++) {
        cell = cells[ci]; n = 0; fast = 0; lean = 0
        for (r in rounds) if (ok[cell, relay, r] == 1 && ok[cell, "haproxy", r] == 1 && rate[cell, "haproxy", r] > 0 && cpu[cell, "haproxy", r] > 0) {
          a[++n] = rate[cell, relay, r] / rate[cell, "haproxy", r]; b[n] = cpu[cell, relay, r] / cpu[cell, "haproxy", r]
          fast += a[n] >= 1; lean += b[n] <= 1
        }
        if (n == 0) printf "| %s | n/a | n/a |\n", cell
        else printf "| %s | %.2f (%d/%d) | %.2f (%d/%d) |\n", cell, median(a, n), fast, n, median(b, n), lean, n
        delete a; delete b
      }
    }
  }' "$tsv")

lat_report=
if [[ -s $dir/latency.tsv ]]; then
  lat_report=$(awk -F'\t' '
    function median(arr, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j + 1] = arr[j]; arr[j + 1] = t }
      return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
    }
    { t = $2; if (!(t in seen)) { seen[t] = 1; order[++nt] = t }; n = ++cnt[t]; N[t] = $3
      P50[t, n] = $4; P99[t, n] = $6; A50[t, n] = $8; A99[t, n] = $9; runs = ($1 > runs ? $1 : runs) }
    END {
      printf "NOOP round trip (one connection per target, interleaved; %d runs of %d round trips; medians over runs), microseconds:\n\n", runs, N[order[1]]
      printf "| target | p50 | p99 | added p50 vs direct | added p99 vs direct |\n|---|---:|---:|---:|---:|\n"
      for (i = 1; i <= nt; i++) {
        t = order[i]; n = cnt[t]
        for (j = 1; j <= n; j++) a[j] = P50[t, j]; p50 = median(a, n); delete a
        for (j = 1; j <= n; j++) a[j] = P99[t, j]; p99 = median(a, n); delete a
        for (j = 1; j <= n; j++) a[j] = A50[t, j]; a50 = median(a, n); delete a
        for (j = 1; j <= n; j++) a[j] = A99[t, j]; a99 = median(a, n); delete a
        if (i == 1) printf "| %s | %.1f | %.1f | - | - |\n", t, p50, p99
        else printf "| %s | %.1f | %.1f | %+.1f | %+.1f |\n", t, p50, p99, a50, a99
      }
    }' "$dir/latency.tsv")
fi

{
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) CPUs; $rounds interleaved rounds; lockstep --threads ${threads:-one per CPU}; total time $((SECONDS - start_s)) s."
  echo "smtp-source -L -> relay -> smtp-sink -L on 127.0.0.1; $(haproxy -v 2> /dev/null | head -1 | cut -d' ' -f1-3); $(socat -V 2> /dev/null | grep -m1 'socat version' | cut -d' ' -f1-3)."
  echo
  (( lat_only )) || { echo "$report"; echo; }
  [[ -n $lat_report ]] && { echo "$lat_report"; echo; }
  echo "Peak RSS (VmHWM): $(for r in "${RELAYS[@]}"; do [[ $r != direct ]] && printf '%s %s MB; ' "$r" "$(awk -v k="${RSS[$r]}" 'BEGIN { printf "%.1f", k / 1024 }')"; done)"
  echo "Machine busy during the measurements (fraction of all CPUs, median): $(awk -F'\t' 'NR > 1 { print $14 }' "$tsv" | sort -n | awk '{ a[NR] = $1 } END { print (NR ? a[int((NR + 1) / 2)] : "n/a") }')"
  if [[ -s $dir/failures.txt ]]; then echo; echo "Failures:"; sed 's/^/  /' "$dir/failures.txt"; else echo "Failures: none."; fi
  if [[ -s $dir/lockstep-unexpected.txt ]]; then echo "Unexpected lockstep output: $(wc -l < "$dir/lockstep-unexpected.txt") lines in $dir/lockstep-unexpected.txt"; fi
  for r in "${LOCKSTEPS[@]}"; do
    echo "$r printed $(wc -l < "$dir/$r.out") lines in all (the smtp-sink findings and a closed line per session)."
    if grep -qv 'listening on' "$dir/$r.err"; then echo "$r stderr:"; grep -v 'listening on' "$dir/$r.err" | head -20; fi
  done
} | tee "$dir/results.md"
echo "raw rows in $tsv; total time $((SECONDS - start_s)) s" >&2
