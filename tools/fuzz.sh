#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets (clang, ASan+UBSan) in build/fuzz, replays every seed
# (tests/fuzz/seeds: the regression inputs, deep nesting included) once through its target, then fuzzes
# each target for ${FUZZ_SECONDS:-60} s from its corpus, ${FUZZ_JOBS:-2} targets at a time.
# A crash, leak, UBSan report or timeout fails it; the log of each target is build/fuzz/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-2}
GEN=$(command -v ninja >/dev/null 2>&1 && echo "-G Ninja" || true)
# -O1 with line tables only: what libFuzzer's docs suggest, and half the compile time of -O2 -g.
cmake -S . -B build/fuzz $GEN -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DNC_FUZZ=ON -DNC_TESTS=OFF -DNC_SANITIZE=ON >/dev/null
TARGETS=(fuzz_gguf fuzz_tokenizer fuzz_chat_template fuzz_request fuzz_gateway fuzz_jobs fuzz_upload)
cmake --build build/fuzz -j "$(nproc)" --target "${TARGETS[@]}"
bash tools/fuzz-corpus.sh build/fuzz/corpus/gguf build/fuzz/corpus/tokenizer build/fuzz/corpus/chat
for d in request gateway jobs gguf upload; do
  mkdir -p build/fuzz/corpus/$d
  cp -n tests/fuzz/seeds/$d/* build/fuzz/corpus/$d/
done
# Regression: every seed once (a fixed input that crashed once stays fixed).
for d in request gateway jobs gguf upload; do
  echo "fuzz: replaying $(ls tests/fuzz/seeds/$d | wc -l) seeds through fuzz_$d"
  build/fuzz/bin/fuzz_$d -runs=1 -rss_limit_mb=4096 tests/fuzz/seeds/$d/* >build/fuzz/replay-$d.log 2>&1 || {
    tail -40 build/fuzz/replay-$d.log
    exit 1
  }
done
# target corpus max_len extra-flags
run_one() {
  local t=$1 corpus=$2 max_len=$3
  shift 3
  cd build/fuzz
  if bin/$t -max_total_time="$SECONDS_EACH" -max_len="$max_len" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 "$@" \
    "corpus/$corpus" >"$t.log" 2>&1; then
    echo "fuzz: $t ok: $(grep -m1 -o 'stat::number_of_executed_units: [0-9]*' "$t.log" || true)"
  else
    echo "fuzz: $t FAILED"
    tail -40 "$t.log"
    return 1
  fi
}
export -f run_one
export SECONDS_EACH
printf '%s\n' \
  "fuzz_gguf gguf 65536" \
  "fuzz_tokenizer tokenizer 4096" \
  "fuzz_chat_template chat 16384 -dict=../../tests/fuzz/chat_template.dict" \
  "fuzz_request request 16384" \
  "fuzz_gateway gateway 8192" \
  "fuzz_jobs jobs 8192" \
  "fuzz_upload upload 16384" |
  xargs -P "$JOBS" -L 1 bash -c 'run_one "$@"' _
