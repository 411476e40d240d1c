#!/usr/bin/env bash
# Usage: fuzz/minimise.sh [TARGET...]
#
# Minimises the seed corpora with libFuzzer's -merge=1 (the fuzz preset must be built:
# cmake --preset fuzz && cmake --build --preset fuzz): keeps the smallest set of inputs
# that reaches the same coverage, renamed to the SHA-1 of their content. Inputs that once
# crashed a target live in corpus/<target>/regressions/ and are kept whatever their
# coverage: ctest replays them, so a fixed bug stays fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(ls corpus))
for t in "${targets[@]}"; do
  bin=build/fuzz/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "minimise: $bin not built (cmake --build --preset fuzz)" >&2; exit 2; }
  new=$(mktemp -d) old=$(mktemp -d)
  find "corpus/$t" -maxdepth 1 -type f -exec cp {} "$old/" \;   # the seeds, not regressions/
  "$bin" -merge=1 -rss_limit_mb=2048 "$new" "$old" >/dev/null 2>&1
  before=$(ls "$old" | wc -l)
  find "corpus/$t" -maxdepth 1 -type f -delete
  for f in "$new"/*; do cp "$f" "corpus/$t/$(sha1sum "$f" | cut -c1-40)"; done
  rm -rf "$new" "$old"
  echo "$t: $before -> $(find "corpus/$t" -maxdepth 1 -type f | wc -l) seeds (+ $(ls "corpus/$t/regressions" 2>/dev/null | wc -l) regressions)"
done
