#!/usr/bin/env bash
# bench/profile.sh [BUILD_DIR] [RUN]: where havend's CPU goes under one of
# bench/run.sh's loads. Samples havend with `perf record` (call graphs by
# DWARF unwinding, so the Release build needs no frame pointers) while
# haven_loadgen runs, then writes perf's reports beside perf.data and
# prints the top of each. Not part of `make bench`.
#
# RUN: online (flat out, window 32; the default), offline (queue, then
# drain), rate2 (paced at 10,000 msg/s), fanout (one sender to a group of
# BENCH_FANOUT_MEMBERS, 1,000) or idle (log-ins).
# BENCH_CONNECTIONS, BENCH_MESSAGES, BENCH_WINDOW as in bench/run.sh.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build-bench}
[[ $build = /* ]] || build="$repo/$build"
run=${2:-online}
connections=${BENCH_CONNECTIONS:-50}
messages=${BENCH_MESSAGES:-2000}
window=${BENCH_WINDOW:-32}
say() { printf 'profile: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
command -v perf >/dev/null || die "perf is missing (deploy/install-deps.sh bench installs linux-perf)"
# As bench/run.sh: on a shared machine, the cores first (BENCH_PRIORITY=0 leaves it).
priority=${BENCH_PRIORITY:--10}
autogroup_before=
if [[ $priority != 0 && -w /proc/self/autogroup ]]; then
  autogroup_before=$(sed -n 's/.* nice //p' /proc/self/autogroup)
  echo "$priority" 2>/dev/null >/proc/self/autogroup || autogroup_before=
fi

cmake --build "$build" --target havend haven_loadgen fill_store >/dev/null
havend=$build/server/havend
loadgen=$build/bench/loadgen/haven_loadgen
work=$(mktemp -d "$build/profile-$run.XXXXXX")
pid=
trap '[[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null; [[ -n $autogroup_before ]] && echo "$autogroup_before" >/proc/self/autogroup; true' EXIT

cat >"$work/havend.toml" <<'EOF'
[limits]
connections_per_address = { per_second = 1e6, burst = 1e6 }
logins_per_address = { per_second = 1e6, burst = 1e6 }
sends_per_mailbox = { per_second = 1e6, burst = 1e6 }
[store]
max_queue_per_device = 1000000
EOF
case $run in
  online) args="--mode online --connections $connections --messages $messages --window $window" ;;
  offline) args="--mode offline --connections $connections --messages $messages --window $window" ;;
  rate2) args="--mode online --connections $connections --messages $messages --window $window --rate 10000" ;;
  fanout)
    connections=${BENCH_FANOUT_MEMBERS:-1000}
    args="--mode fanout --connections $connections --messages ${BENCH_MESSAGES:-200} --window $window" ;;
  idle) args="--mode idle --connections ${BENCH_IDLE_CONNECTIONS:-5000} --open-concurrency 256" ;;
  *) die "unknown run '$run' (online, offline, rate2, fanout, idle)" ;;
esac
if [[ $run == idle ]]; then
  "$build/bench/startup/fill_store" --data-dir "$work/data" --accounts "${BENCH_IDLE_CONNECTIONS:-5000}" \
    --envelopes-per-account 0 --accounts-out "$work/accounts.txt" 2>/dev/null
  who="--accounts $work/accounts.txt"
else
  "$havend" --data-dir "$work/data" admin create-org Bench >/dev/null 2>&1
  n=$connections
  [[ $run == offline ]] && n=$((2 * connections))
  "$havend" --data-dir "$work/data" admin invite Bench --count "$n" >"$work/invites.txt" 2>/dev/null
  who="--invites $work/invites.txt"
fi

"$havend" --config "$work/havend.toml" --port 0 --data-dir "$work/data" >"$work/havend.out" 2>"$work/havend.log" &
pid=$!
for _ in $(seq 100); do [[ -s $work/havend.out ]] && break; sleep 0.05; done
port=$(sed -n 's/^havend listening on .*://p' "$work/havend.out")
[[ -n $port ]] || die "havend did not start (see $work/havend.log)"

perf record -F 997 --call-graph dwarf,16384 -p "$pid" -o "$work/perf.data" 2>"$work/perf.log" &
perf_pid=$!
sleep 0.5
# shellcheck disable=SC2086
"$loadgen" --port "$port" $who $args --size 1024 --server-pid "$pid" >"$work/loadgen.txt"
kill -INT "$perf_pid"
wait "$perf_pid" || true
kill -TERM "$pid"
wait "$pid" || true
pid=

perf report -i "$work/perf.data" --no-children --sort sym --stdio --percent-limit 0.7 \
  -g none >"$work/self.txt" 2>/dev/null
perf report -i "$work/perf.data" --children --sort sym --stdio --percent-limit 3 \
  -g none >"$work/children.txt" 2>/dev/null
perf report -i "$work/perf.data" --no-children --sort pid --stdio -g none >"$work/threads.txt" 2>/dev/null
cat "$work/loadgen.txt"
echo "--- by thread"; grep -E '^ +[0-9]' "$work/threads.txt" | head -12
echo "--- self"; grep -E '^ +[0-9]' "$work/self.txt" | head -40
echo "--- with callees"; grep -E '^ +[0-9]' "$work/children.txt" | head -50
say "perf.data and the reports are in $work"
