#!/usr/bin/env bash
# Builds the libFuzzer targets (clang 19, ASan + UBSan) and runs each for
# SECONDS on a scratch copy of its seed corpus; the corpus in the repo is
# never changed. One summary line per target; crash, leak, timeout and
# out-of-memory inputs are kept in BUILD_DIR/fuzz-artifacts, logs in
# BUILD_DIR/fuzz-logs. Exits non-zero if any target failed.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]     (make fuzz, make test)
set -euo pipefail

usage="usage: tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]"
[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(realpath -m "$1")
seconds=$2
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] ||
  targets=(relay sealed_sender ratchet sender_key vault contact_code config invite_token
           websocket_frame)

# Configure once; only what the fuzz targets link is built (the top-level
# CMakeLists.txt leaves out the client library, CLI, web client, Catch2
# suites and benches). -O1 and line tables only, as OSS-Fuzz builds: the
# sanitizers make Beast's templates slow to compile at -O2 -g; assertions
# stay on (Beast's catch misuse of its streams). Warnings are not errors for
# the rest of the tree here: clang warns where the g++ CI build does not;
# the fuzz targets themselves keep -Werror.
if [ ! -f "$build/build.ninja" ]; then
  launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  CC=clang-19 CXX=clang++-19 cmake -S "$repo" -B "$build" -G Ninja "${launcher[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHAVEN_SANITIZE=fuzzer -DHAVEN_WERROR=OFF \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only"
fi
cmake --build "$build" --target fuzz_all -j "$(nproc)"

artifacts="$build/fuzz-artifacts"
logs="$build/fuzz-logs"
mkdir -p "$artifacts" "$logs"
# Scratch corpora and the targets' temp dirs (RocksDB, a profile) in memory
# when there is /dev/shm.
base=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
scratch=$(mktemp -d "$base/haven-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export TMPDIR="$scratch/tmp"
mkdir -p "$TMPDIR"
# Symbolized stacks: Debian's clang-19 has no llvm-symbolizer of its own.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
  ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer-19 || command -v llvm-symbolizer || true)
  export ASAN_SYMBOLIZER_PATH
fi
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:symbolize=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"

failed=()
printf '%-14s %12s %8s %7s %7s %8s %8s\n' target execs exec/s corpus cov features rss_mb
for t in "${targets[@]}"; do
  corpus="$scratch/corpus/$t"
  mkdir -p "$corpus"
  cp -r "$here/corpus/$t/." "$corpus/"
  log="$logs/$t.log"
  extra=()
  [ -f "$here/$t.dict" ] && extra+=(-dict="$here/$t.dict")
  # The relay's own threads allocate while an input runs, so libFuzzer's
  # per-input leak check would only re-run inputs; LeakSanitizer still
  # checks the whole process when it exits (after a clean shutdown).
  [ "$t" = relay ] && extra+=(-detect_leaks=0)
  status=0
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/$t-" "${extra[@]}" "$corpus" >"$log" 2>&1 ||
    status=$?
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
  field() { sed -n "s/.* $1: \([0-9]*\).*/\1/p" <<<"$done_line"; }
  printf '%-14s %12s %8s %7s %7s %8s %8s' "$t" "$(stat number_of_executed_units)" \
    "$(stat average_exec_per_sec)" "$(find "$corpus" -type f | wc -l)" "$(field cov)" "$(field ft)" \
    "$(stat peak_rss_mb)"
  if [ "$status" -ne 0 ]; then
    failed+=("$t")
    printf '  FAILED (exit %s, log %s)\n' "$status" "$log"
    grep -E 'ERROR:|SUMMARY:|runtime error|Test unit written|relay fuzz:|==[0-9]+==' "$log" | head -8 | sed 's/^/    /'
  else
    printf '\n'
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]} (inputs in $artifacts; reproduce: $build/tests/fuzz/fuzz_TARGET FILE)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a crash, leak, timeout or OOM"
