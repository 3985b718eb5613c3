#!/usr/bin/env bash
# bench/run.sh [BUILD_DIR]: the relay benchmark behind `make bench`.
#
# Builds havend and haven_loadgen in Release (in BUILD_DIR, default
# build-bench, relative to the repository), starts havend on a fresh data
# directory with the per-address and per-mailbox rate limits raised (every
# connection comes from 127.0.0.1), runs the default profile and writes the
# figures into the "## Relay" section of docs/BENCHMARKS.md (other sections
# are kept). Takes about a minute on a 2-core machine.
#
# Profile (override with the environment variables named in brackets):
#   1. online, 50 connections x 2,000 envelopes of 1 KiB, window 32, flat out
#      [BENCH_CONNECTIONS, BENCH_MESSAGES, BENCH_SIZE, BENCH_WINDOW]
#   2. online at a fixed 1,000 msg/s for latency, 50 connections x 200
#      [BENCH_RATE, BENCH_RATE_MESSAGES]
#   3. offline: 10,000 envelopes queued for 50 disconnected recipients, then
#      drained when they log in [BENCH_OFFLINE_MESSAGES per sender, 200]
# BENCH_NO_WRITE=1 prints the section instead of writing docs/BENCHMARKS.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build-bench}
[[ $build = /* ]] || build="$repo/$build"

connections=${BENCH_CONNECTIONS:-50}
messages=${BENCH_MESSAGES:-2000}
size=${BENCH_SIZE:-1024}
window=${BENCH_WINDOW:-32}
rate=${BENCH_RATE:-1000}
rate_messages=${BENCH_RATE_MESSAGES:-200}
offline_messages=${BENCH_OFFLINE_MESSAGES:-200}
timeout=${BENCH_TIMEOUT:-90}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

# ---------------------------------------------------------------- build
if [[ ! -f $build/CMakeCache.txt ]]; then
  say "configuring a Release build in $build"
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
[[ $build_type == Release ]] ||
  say "warning: $build is a '${build_type:-default}' build; figures are meant for Release"
say "building havend and haven_loadgen"
if ! cmake --build "$build" --target havend haven_loadgen -j "$(nproc)" >"$build/bench-build.log" 2>&1; then
  tail -n 30 "$build/bench-build.log" >&2
  die "build failed (full log: $build/bench-build.log)"
fi
havend=$build/server/havend
loadgen=$build/bench/loadgen/haven_loadgen

# ---------------------------------------------------------------- set-up
# The data directory lives beside the build (a real disk, not a tmpfs /tmp),
# so WAL syncs cost what they cost.
work=$(mktemp -d "$build/bench-run.XXXXXX")
havend_pid=
cleanup() {
  local rc=$?
  if [[ -n $havend_pid ]] && kill -0 "$havend_pid" 2>/dev/null; then
    kill -KILL "$havend_pid" 2>/dev/null || true
    wait "$havend_pid" 2>/dev/null || true
  fi
  if ((rc == 0)); then
    rm -rf "$work"
  else
    say "failed; havend's log and the run's files are in $work"
  fi
}
trap cleanup EXIT

cat >"$work/havend.toml" <<'EOF'
# All load comes from one address and few mailboxes: lift the abuse limits.
[limits]
connections_per_address = { per_second = 1e6, burst = 1e6 }
logins_per_address = { per_second = 1e6, burst = 1e6 }
sends_per_mailbox = { per_second = 1e6, burst = 1e6 }

[store]
max_queue_per_device = 1000000
EOF

data=$work/data
"$havend" --config "$work/havend.toml" --data-dir "$data" admin create-org Bench >/dev/null \
  2>>"$work/havend.log" || die "havend admin create-org failed (see $work/havend.log)"
# Invite tokens: `admin invite` prints at most 1,000 per call.
make_invites() {  # FILE COUNT
  local file=$1 left=$2 n
  : >"$file"
  while ((left > 0)); do
    n=$((left > 1000 ? 1000 : left))
    "$havend" --config "$work/havend.toml" --data-dir "$data" admin invite Bench --count "$n" \
      >>"$file" 2>>"$work/havend.log" || die "havend admin invite failed (see $work/havend.log)"
    left=$((left - n))
  done
}
make_invites "$work/invites-online.txt" "$connections"
make_invites "$work/invites-rate.txt" "$connections"
make_invites "$work/invites-offline.txt" $((2 * connections))

"$havend" --config "$work/havend.toml" --port 0 --data-dir "$data" \
  >"$work/havend.out" 2>>"$work/havend.log" &
havend_pid=$!
port=
for _ in $(seq 100); do
  line=$(head -n 1 "$work/havend.out" 2>/dev/null || true)
  if [[ $line == "havend listening on "* ]]; then
    port=${line##*:}
    break
  fi
  kill -0 "$havend_pid" 2>/dev/null || die "havend exited at start-up (see $work/havend.log)"
  sleep 0.1
done
[[ -n $port ]] || die "havend did not print its address within 10 s"
say "havend (pid $havend_pid) listening on 127.0.0.1:$port"

# ---------------------------------------------------------------- runs
# Each run prints its summary and leaves one JSON object in $work/NAME.json.
cmd_online="haven_loadgen --port PORT --invites FILE --mode online --connections $connections --messages $messages --size $size --window $window --server-pid PID"
cmd_rate="haven_loadgen --port PORT --invites FILE --mode online --connections $connections --messages $rate_messages --size $size --window $window --rate $rate --server-pid PID"
cmd_offline="haven_loadgen --port PORT --invites FILE --mode offline --connections $connections --messages $offline_messages --size $size --window $window --server-pid PID"
run_loadgen() {  # NAME COMMAND-WITH-PLACEHOLDERS
  local name=$1 cmd=$2
  cmd=${cmd/PORT/$port}
  cmd=${cmd/FILE/$work/invites-$name.txt}
  cmd=${cmd/PID/$havend_pid}
  cmd=${cmd/haven_loadgen/$loadgen}
  say "run: $name"
  # shellcheck disable=SC2086 # the command is a word list on purpose
  $cmd --timeout "$timeout" --json "$work/$name.json" ||
    die "the $name run failed (havend's log: $work/havend.log)"
}
# CPU used by everything else on the machine meanwhile tells how disturbed
# the figures are: machine-wide busy time minus havend's and the runs'.
ticks=$(getconf CLK_TCK)
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
havend_ticks() { awk '{ print $14 + $15 }' "/proc/$havend_pid/stat"; }
children_ticks() { awk '{ print $16 + $17 }' /proc/$$/stat; }  # waited-for loadgen runs
busy0=$(busy_ticks) havend0=$(havend_ticks) children0=$(children_ticks) wall0=$(date +%s.%N)
run_loadgen online "$cmd_online"
run_loadgen rate "$cmd_rate"
run_loadgen offline "$cmd_offline"
busy1=$(busy_ticks) havend1=$(havend_ticks) children1=$(children_ticks) wall1=$(date +%s.%N)
read -r other_cpu wall <<<"$(awk -v b="$((busy1 - busy0))" -v h="$((havend1 - havend0))" \
  -v c="$((children1 - children0))" -v t="$ticks" -v w0="$wall0" -v w1="$wall1" \
  'BEGIN { o = (b - h - c) / t; if (o < 0) o = 0; printf "%.1f %.1f", o, w1 - w0 }')"

say "stopping havend (SIGTERM)"
kill -TERM "$havend_pid"
rc=0
wait "$havend_pid" || rc=$?
havend_pid=
((rc == 0)) || die "havend exited with status $rc after SIGTERM (see $work/havend.log)"

# ---------------------------------------------------------------- results
get() {  # FILE KEY: a value from a flat JSON object, 'null' when absent
  local v
  v=$(sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1")
  printf '%s' "${v:-null}"
}
fmt() {  # VALUE DECIMALS [1: whole number with thousands separators]
  local v=$1
  [[ $v == null ]] && { printf -- '-'; return; }
  if [[ ${3:-0} == 1 ]]; then
    LC_ALL=C awk -v v="$v" 'BEGIN {
      s = sprintf("%.0f", v); t = ""
      while (length(s) > 3) { t = "," substr(s, length(s) - 2) t; s = substr(s, 1, length(s) - 3) }
      printf "%s%s", s, t }'
  else
    LC_ALL=C awk -v v="$v" -v d="$2" 'BEGIN { printf ("%." d "f"), v }'
  fi
}
thousands() { fmt "$1" 0 1; }

o=$work/online.json r=$work/rate.json f=$work/offline.json
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$repo" status --porcelain -- server protocol crypto/verify bench/loadgen \
  bench/run.sh CMakeLists.txt 2>/dev/null) ]]; then
  commit="$commit (with uncommitted changes)"
fi
cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
fs=$(df -T "$build" 2>/dev/null | awk 'NR == 2 { print $2 }')
date=$(date -u '+%Y-%m-%d %H:%M UTC')
total_online=$((connections * messages))
total_rate=$((connections * rate_messages))
total_offline=$((connections * offline_messages))

section=$work/relay.md
{
  echo "## Relay"
  echo
  echo "Written by \`make bench\` (\`bench/run.sh\`): havend and \`bench/loadgen\` on one machine"
  echo "over loopback. Durable ack: havend answers a send only once the envelope is in the"
  echo "synced RocksDB WAL. Latency is send-to-delivery: from the sender building the"
  echo "frame to the recipient reading the pushed envelope. havend runs with its defaults"
  echo "(one I/O thread, delivery window 128) and the rate limits raised by a config file,"
  echo "data directory on ${fs:-?}."
  echo
  echo "| run | durable-ack sends/s | p50 ms | p99 ms | p99.9 ms | drain/s | havend CPU µs/msg | loadgen CPU s |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  echo "| online, $(fmt "$size" 0) B, $connections conns x $(thousands "$messages"), window $window, flat out | $(fmt "$(get "$o" sends_per_s)" 0 1) | $(fmt "$(get "$o" p50_ms)" 3) | $(fmt "$(get "$o" p99_ms)" 3) | $(fmt "$(get "$o" p999_ms)" 3) | - | $(fmt "$(get "$o" server_cpu_us_per_msg)" 1) | $(fmt "$(get "$o" loadgen_cpu_s)" 2) |"
  echo "| online, paced at $(thousands "$rate") msg/s, $connections conns x $(thousands "$rate_messages") | $(fmt "$(get "$r" sends_per_s)" 0 1) | $(fmt "$(get "$r" p50_ms)" 3) | $(fmt "$(get "$r" p99_ms)" 3) | $(fmt "$(get "$r" p999_ms)" 3) | - | $(fmt "$(get "$r" server_cpu_us_per_msg)" 1) | $(fmt "$(get "$r" loadgen_cpu_s)" 2) |"
  echo "| offline, $(thousands "$total_offline") queued for $connections disconnected recipients, then drained | $(fmt "$(get "$f" sends_per_s)" 0 1) | - | - | - | $(fmt "$(get "$f" drain_per_s)" 0 1) | $(fmt "$(get "$f" server_cpu_us_per_msg)" 1) | $(fmt "$(get "$f" loadgen_cpu_s)" 2) |"
  echo
  echo "Totals: $(thousands "$total_online") / $(thousands "$total_rate") / $(thousands "$total_offline") envelopes; every send acknowledged and every"
  echo "envelope delivered exactly once (the load generator fails the run otherwise)."
  echo "havend CPU is its utime + stime from /proc over the measured part of each run, per message"
  echo "(offline: queueing and draining together). Flat-out latency is mostly queueing: with"
  echo "$connections x $window sends in flight it is about $((connections * window)) / (sends/s)."
  echo
  echo "- Commit: \`$commit\`, build type ${build_type:-default}"
  echo "- Date: $date"
  echo "- Machine: $(nproc) cores ($cpu_model), $mem memory, Linux $(uname -r)."
  echo "  havend and the load generator share these cores at the same time, so the"
  echo "  figures are for both together. Everything else (other processes, and kernel threads"
  echo "  such as the ext4 journal, partly working for havend) used $other_cpu CPU-seconds during"
  echo "  the ${wall} s of runs."
  echo "- Command: \`make bench\`, i.e. \`bench/run.sh $(realpath --relative-to="$repo" "$build" 2>/dev/null || echo "$build")\`, which runs"
  echo
  echo '```'
  echo "havend --config havend.toml --port 0 --data-dir DATA   # config: see bench/run.sh"
  echo "$cmd_online"
  echo "$cmd_rate"
  echo "$cmd_offline"
  echo '```'
  echo
} >"$section"

cat "$section"
if [[ ${BENCH_NO_WRITE:-0} == 1 ]]; then
  say "BENCH_NO_WRITE=1: docs/BENCHMARKS.md left as it was"
  exit 0
fi

"$repo/bench/write_section.sh" Relay "$section"
