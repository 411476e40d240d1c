#!/usr/bin/env bash
# Usage: fuzz/minimise.sh [TARGET...]
#
# Minimises the seed corpora with libFuzzer's -merge=1 (the fuzz preset must be built:
# cmake --preset fuzz && cmake --build --preset fuzz): keeps the smallest set of inputs
# that reaches the same coverage, renamed to the SHA-1 of their content.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(ls corpus))
for t in "${targets[@]}"; do
  bin=build/fuzz/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "minimise: $bin not built (cmake --build --preset fuzz)" >&2; exit 2; }
  new=$(mktemp -d)
  "$bin" -merge=1 -rss_limit_mb=2048 "$new" "corpus/$t" >/dev/null 2>&1
  before=$(ls "corpus/$t" | wc -l)
  rm -rf "corpus/$t" && mkdir "corpus/$t"
  for f in "$new"/*; do cp "$f" "corpus/$t/$(sha1sum "$f" | cut -c1-40)"; done
  rm -rf "$new"
  echo "$t: $before -> $(ls "corpus/$t" | wc -l) seeds"
done
