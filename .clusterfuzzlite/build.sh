#!/bin/bash -eu
# ClusterFuzzLite / OSS-Fuzz build: every target of fuzz/ with the engine's own
# sanitizer and fuzzing flags ($CXXFLAGS, $LIB_FUZZING_ENGINE), its seed corpus zipped
# and its dictionary, as $OUT/<target>, <target>_seed_corpus.zip and <target>.dict.
cd "$SRC/lockstep"
cmake -S . -B build-cflite -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOCKSTEP_TESTS=OFF -DLOCKSTEP_FUZZ=ON -DLOCKSTEP_FUZZ_ENGINE="$LIB_FUZZING_ENGINE" \
  -DCMAKE_CXX_FLAGS="$CXXFLAGS"
cmake --build build-cflite -j"$(nproc)"
for bin in build-cflite/fuzz/fuzz_*; do
  target=$(basename "$bin")
  name=${target#fuzz_}
  cp "$bin" "$OUT/$target"
  (cd "corpus/$name" && zip -q -r "$OUT/${target}_seed_corpus.zip" .)
  case $name in
    scenario|faults|control|importer_jsonl|importer_postfix|importer_socat) dict=$name ;;
    *) dict=protocol ;;
  esac
  cp "fuzz/dict/$dict.dict" "$OUT/$target.dict"
done
