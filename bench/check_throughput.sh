#!/usr/bin/env bash
# Throughput of `lockstep check` on a large synthetic recording, measured against
# `wc -l` and `grep -c '^250'` on the same file in the same run. lockstep runs twice per
# round: with `--ladder none --format json` (every check and finding, no ladders: the
# headline ratio) and as plain `lockstep check FILE` (the default text report, with the
# ladders of the sessions that had problems). Also against
# lockstep with its wide JSON decoder turned off (LOCKSTEP_NO_WIDE_DECODE=1), and against
# jsonl_floor (bench/jsonl_floor.c, built here with cc when there is one): the least any
# JSON Lines reader must do, finding every quote, backslash and line end. The machine this
# runs on may be shared and noisy, so the numbers that matter are the ratios
# (medians over interleaved rounds), not the absolute MB/s.
#
# Usage: bench/check_throughput.sh [-d DIR] [-s SIZE] [-r ROUNDS] [-b LOCKSTEP] [--seed N]
#                                  [--keep] [--perf]
#   -d DIR      where the recording lives (default: a fresh mktemp -d under $TMPDIR)
#   -s SIZE     recording size for gen_recording.py (default 1G)
#   -r ROUNDS   interleaved rounds, at least 3 (default 5)
#   -b LOCKSTEP the binary (default: build/release/cli/lockstep next to this script)
#   --seed N    generator seed (default 1)
#   --keep      keep the recording afterwards (it is reused if it is already there)
#   --perf      also run `perf stat` on one lockstep check (if perf works here)
#
# Output: a Markdown table on stdout (also written to DIR/results.md), the raw
# per-round timings in DIR/rounds.tsv.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
dir= size=1G rounds=5 bin="$root/build/release/cli/lockstep" seed=1 keep=0 doperf=0
while [[ $# -gt 0 ]]; do
  case $1 in
    -d) dir=$2; shift 2 ;;
    -s) size=$2; shift 2 ;;
    -r) rounds=$2; shift 2 ;;
    -b) bin=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --perf) doperf=1; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
(( rounds >= 3 )) || { echo "need at least 3 rounds" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }
[[ -x $bin ]] || { echo "no lockstep binary at $bin (cmake --preset release && cmake --build --preset release)" >&2; exit 2; }

if [[ -z $dir ]]; then dir=$(mktemp -d "${TMPDIR:-/tmp}/lockstep-bench.XXXXXX"); fi
mkdir -p "$dir"
file="$dir/recording-$size-seed$seed.jsonl"
cleanup() {  # the recording goes; the small result files stay in $dir
  if (( ! keep )); then rm -f "$file" "$file.part"; fi
}
trap cleanup EXIT

export LC_ALL=C  # the same byte-oriented locale for every tool

if [[ -s $file ]]; then
  echo "reusing $file" >&2
else
  echo "generating $file ..." >&2
  python3 "$here/gen_recording.py" --size "$size" --seed "$seed" --out "$file.part"
  mv "$file.part" "$file"
fi
bytes=$(stat -L -c %s "$file")
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')

# Into the page cache, and a check that it stays there (enough free memory).
cat "$file" > /dev/null
cat "$file" > /dev/null
if command -v fincore > /dev/null; then fincore "$file" >&2 || true; fi

tsv="$dir/rounds.tsv"
printf 'round\ttool\twall_s\tuser_s\tsys_s\tmaxrss_kb\texit\n' > "$tsv"

# timer OUT ERR CMD...: run CMD with stdout to OUT and stderr to ERR; print
# "wall_s user_s sys_s maxrss_kb exit". Wall clock and CPU times come from
# perf_counter and wait4 (microseconds; GNU time alone prints hundredths, too
# coarse for wc on a cached file). The peak RSS comes from GNU time's %M, which
# wraps the command: rusage of a child of python would count python's own pages
# from before the exec. GNU time's own start-up (~1 ms) is inside the wall time.
timer() {
  python3 -c '
import os, sys, time
out, err, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
rssf = out + ".rss" if out != "/dev/null" else err + ".rss"
fa = [(os.POSIX_SPAWN_OPEN, 1, out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
      (os.POSIX_SPAWN_OPEN, 2, err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
argv = ["/usr/bin/time", "-f", "%M", "-o", rssf] + cmd
t0 = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=fa)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
rss = int(open(rssf).read().split()[-1])
os.unlink(rssf)
print("%.4f %.4f %.4f %d %d" % (wall, ru.ru_utime, ru.ru_stime, rss, os.waitstatus_to_exitcode(status)))
' "$@"
}

# run NAME ROUND CMD...: time one command, append a row to the TSV.
run() {
  local name=$1 round=$2; shift 2
  local wall user sys rss rc
  read -r wall user sys rss rc <<< "$(timer /dev/null "$dir/$name.stderr" "$@")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$name" "$wall" "$user" "$sys" "$rss" "$rc" >> "$tsv"
  printf '  round %s %-14s wall %7.3f s  cpu %7.3f s  rss %7d KB  exit %d\n' \
    "$round" "$name" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}')" "$rss" "$rc" >&2
}

floor_bin="$dir/jsonl_floor"
tools=(wc grep lockstep default bytewise)
if command -v cc > /dev/null &&
   { cc -O2 -march=native -o "$floor_bin" "$here/jsonl_floor.c" 2> /dev/null || cc -O2 -o "$floor_bin" "$here/jsonl_floor.c"; }; then
  tools+=(floor)
else
  echo "no C compiler: the jsonl_floor row is left out" >&2
fi
echo "file: $file ($mb MB, $(wc -l < "$file") lines); $rounds rounds" >&2
for ((r = 1; r <= rounds; r++)); do
  # Rotate the order each round so no tool always runs first after a pause.
  order=()
  for ((i = 0; i < ${#tools[@]}; i++)); do order+=("${tools[(i + r) % ${#tools[@]}]}"); done
  for tool in "${order[@]}"; do
    case $tool in
      wc) run wc "$r" wc -l "$file" ;;
      grep) run grep "$r" grep -c '^250' "$file" ;;
      lockstep) run lockstep-json "$r" "$bin" check --ladder none --format json "$file" ;;
      default) run lockstep-default "$r" "$bin" check "$file" ;;
      bytewise) run lockstep-bytewise "$r" env LOCKSTEP_NO_WIDE_DECODE=1 "$bin" check --ladder none --format json "$file" ;;
      floor) run floor "$r" "$floor_bin" "$file" ;;
    esac
  done
done
# The text report once, kept (its summary line tells whether the file checked clean).
timer "$dir/text-report.txt" "$dir/lockstep-text.stderr" "$bin" check "$file" > /dev/null
summary=$(tail -n 1 "$dir/text-report.txt")
echo "lockstep text summary: $summary" >&2
cat "$dir/lockstep-text.stderr" >&2
if (( doperf )) && command -v perf > /dev/null; then
  perf stat -e task-clock,context-switches,cpu-migrations,page-faults \
    "$bin" check --ladder none --format json "$file" > /dev/null 2> "$dir/perf-stat.txt" || true
  sed -n '/Performance counter/,$p' "$dir/perf-stat.txt" >&2
fi

# Medians and ratios.
report=$(awk -F'\t' -v bytes="$bytes" -v rounds="$rounds" '
  function median(arr, n,   i, j, t) {
    for (i = 2; i <= n; i++) { t = arr[i]; for (j = i - 1; j >= 1 && arr[j] > t; j--) arr[j + 1] = arr[j]; arr[j + 1] = t }
    return n % 2 ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2
  }
  NR > 1 {
    k = $2; n[k]++
    W[k, n[k]] = $3; C[k, n[k]] = $4 + $5
    if ($6 > rss[k]) rss[k] = $6
    if (!(k in seen)) { seen[k] = 1; order[++nt] = k }
  }
  END {
    for (i = 1; i <= nt; i++) {
      k = order[i]
      delete a; for (j = 1; j <= n[k]; j++) a[j] = W[k, j]; mw[k] = median(a, n[k])
      delete a; for (j = 1; j <= n[k]; j++) a[j] = C[k, j]; mc[k] = median(a, n[k])
      # Per-round wall-clock ratios against the same rounds wc and grep (lockstep-json only).
    }
    for (j = 1; j <= n["lockstep-json"]; j++) { rg[j] = W["lockstep-json", j] / (W["grep", j] > 0 ? W["grep", j] : 1e-9); rw[j] = W["lockstep-json", j] / (W["wc", j] > 0 ? W["wc", j] : 1e-9) }
    mrg = median(rg, n["lockstep-json"]); mrw = median(rw, n["lockstep-json"])
    printf "| tool | runs | wall s (median) | CPU s user+sys (median) | MB/s (wall) | MB/s (CPU) | wall vs grep | wall vs wc | peak RSS |\n"
    printf "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    for (i = 1; i <= nt; i++) {
      k = order[i]
      name = k == "wc" ? "`wc -l`" : k == "grep" ? "`grep -c '\''^250'\''`" : k == "lockstep-json" ? "`lockstep check --ladder none --format json`" : k == "floor" ? "`jsonl_floor` (find quotes, backslashes, LFs)" : k == "lockstep-bytewise" ? "`lockstep check --ladder none --format json`, byte-wise decoder" : "`lockstep check` (default: text, ladders of sessions with problems)"
      vg = mw["grep"] > 0 ? sprintf("%.2fx", mw[k] / mw["grep"]) : "n/a"; vw = mw["wc"] > 0 ? sprintf("%.2fx", mw[k] / mw["wc"]) : "n/a"
      if (k == "lockstep-json") { vg = sprintf("**%.2fx**", mrg); vw = sprintf("**%.2fx**", mrw) }
      printf "| %s | %d | %.3f | %.3f | %.0f | %.0f | %s | %s | %.1f MB |\n", name, n[k], mw[k], mc[k],
             (mw[k] > 0 ? bytes / 1e6 / mw[k] : 0), (mc[k] > 0 ? bytes / 1e6 / mc[k] : 0), vg, vw, rss[k] / 1024
    }
  }' "$tsv")

{
  echo "File: $mb MB ($bytes bytes), $(wc -l < "$file") lines; $rounds interleaved rounds; LC_ALL=C."
  echo "lockstep: $summary"
  echo
  echo "$report"
  echo
  echo "Ratios are lockstep's wall time over the other tool's (median of the per-round ratios for the"
  echo "--ladder none run; medians over medians for the others). Higher means lockstep is slower."
} | tee "$dir/results.md"
echo "raw timings in $tsv$( (( keep )) && echo "; kept $file")" >&2
