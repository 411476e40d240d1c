#!/usr/bin/env bash
# Usage: bench/fuzz_targets.sh [SECONDS]   (default 20; the fuzz preset must be built)
#
# Runs every libFuzzer target for SECONDS on one core with its dictionary and seed
# corpus (copied: the corpus in the repository is not changed) and prints exec/s, the
# coverage reached and whether anything crashed. Exit 1 when a target crashed. The
# figures are of clang 14 with ASan + UBSan + libFuzzer instrumentation (the fuzz preset).
# -seed=1: the same mutations on every run, so CI's short runs are repeatable.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
status=0
printf '%-18s %10s %8s %8s  %s\n' target exec/s cov ft result
for bin in build/fuzz/fuzz/fuzz_*; do
  t=${bin##*/fuzz_}
  [ -d "corpus/$t" ] || continue
  case $t in scenario|faults|control|importer_jsonl|importer_postfix|importer_socat) dict=$t ;; *) dict=protocol ;; esac
  work=$(mktemp -d)
  cp -r "corpus/$t" "$work/corpus"
  log=$work/log
  (cd "$work" && "$OLDPWD/$bin" -dict="$OLDPWD/fuzz/dict/$dict.dict" -max_total_time="$secs" -rss_limit_mb=2048 -seed=1 \
     -timeout=10 -print_final_stats=1 corpus >"$log" 2>&1)
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  result=ok
  if [ $rc -ne 0 ]; then
    result="CRASH (kept in $work)"
    status=1
    grep -m3 -E 'ERROR|SUMMARY|Test unit written' "$log" | sed 's/^/    /'
  fi
  printf '%-18s %10s %8s %8s  %s\n' "$t" "$(( ${execs:-0} / secs ))" "${cov:-?}" "${ft:-?}" "$result"
  [ $rc -eq 0 ] && rm -rf "$work"
done
exit $status
