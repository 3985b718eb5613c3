#!/usr/bin/env bash
# bench/cli_latency.sh [BUILD_DIR]: how long a message takes from `haven send`
# to a listening `haven listen` printing it, through a real havend on
# loopback. Writes the "## CLI" section of docs/BENCHMARKS.md.
#
# Each send is a whole CLI run: process start, Argon2id to open the profile
# (the cost of a passphrase-protected vault), log-in, seal, durable send.
# The receiver stays connected; it prints a message after decrypting it and
# saving its profile. BENCH_CLI_MESSAGES (default 200) messages are timed.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# As bench/run.sh: on a shared machine the run's scheduling group gets the
# cores first where it may (BENCH_PRIORITY, default -10; 0 leaves it).
priority=${BENCH_PRIORITY:--10}
autogroup_before=
if [[ $priority != 0 && -w /proc/self/autogroup ]]; then
  autogroup_before=$(sed -n 's/.* nice //p' /proc/self/autogroup)
  echo "$priority" 2>/dev/null >/proc/self/autogroup || autogroup_before=
fi
build=${1:-build-bench}
[[ $build = /* ]] || build="$repo/$build"
count=${BENCH_CLI_MESSAGES:-200}

if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build" --target havend haven >/dev/null
havend=$build/server/havend
haven=$build/clients/cli/haven

work=$(mktemp -d "$build/cli-bench.XXXXXX")
havend_pid=""
listener_pid=""
cleanup() {
  [[ -n $autogroup_before ]] && echo "$autogroup_before" >/proc/self/autogroup 2>/dev/null
  [[ -n $listener_pid ]] && kill "$listener_pid" 2>/dev/null || true
  if [[ -n $havend_pid ]]; then kill -TERM "$havend_pid" 2>/dev/null || true; wait "$havend_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$havend" --data-dir "$work/data" admin create-org Bench >/dev/null
invites=$("$havend" --data-dir "$work/data" admin invite Bench --count 2)
invite_a=$(sed -n 1p <<<"$invites")
invite_b=$(sed -n 2p <<<"$invites")
cat >"$work/havend.toml" <<'TOML'
[limits]
logins_per_address = { per_second = 1000, burst = 1000 }
connections_per_address = { per_second = 1000, burst = 1000 }
TOML
"$havend" --config "$work/havend.toml" --data-dir "$work/data" --port 0 >"$work/havend.out" 2>"$work/havend.log" &
havend_pid=$!
for _ in $(seq 100); do [[ -s $work/havend.out ]] && break; sleep 0.05; done
port=$(head -1 "$work/havend.out" | sed 's/.*://')
url="ws://127.0.0.1:$port"

export HAVEN_PASSPHRASE="benchmark passphrase"
"$haven" --profile "$work/a" init --server "$url" --invite "$invite_a" --name a >/dev/null
"$haven" --profile "$work/b" init --server "$url" --invite "$invite_b" --name b >/dev/null
"$haven" --profile "$work/a" contact add b "$("$haven" --profile "$work/b" code)" >/dev/null
"$haven" --profile "$work/b" contact add a "$("$haven" --profile "$work/a" code)" >/dev/null

mkfifo "$work/lines"
"$haven" --profile "$work/b" listen --count "$count" --seconds 600 >"$work/lines" &
listener_pid=$!
exec 3<"$work/lines"
sleep 1  # let the listener log in

now_us() { echo $(( $(date +%s%N) / 1000 )); }
: >"$work/total" ; : >"$work/send"
for i in $(seq "$count"); do
  t0=$(now_us)
  "$haven" --profile "$work/a" send b "message $i" >/dev/null
  t1=$(now_us)
  read -r line <&3
  t2=$(now_us)
  [[ $line == "from a: message $i" ]] || { echo "bench: expected message $i, got '$line'" >&2; exit 1; }
  echo $(( t2 - t0 )) >>"$work/total"
  echo $(( t1 - t0 )) >>"$work/send"
done
wait "$listener_pid"; listener_pid=""

pct() {  # FILE PERCENT -> milliseconds
  sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int((NR * p + 99) / 100); if (i < 1) i = 1; printf "%.1f", v[i] / 1000 }'
}
TIMEFORMAT=%R
argon_ms=$( { time "$haven" --profile "$work/a" contact list >/dev/null; } 2>&1 | awk '{ printf "%.0f", $1 * 1000 }')

section=$work/cli.md
{
  echo "## CLI"
  echo
  echo "Time from starting \`haven send\` to a listening \`haven listen\` printing the"
  echo "message, through havend on loopback, $count messages one after another."
  echo "Measured $(date -u +%Y-%m-%d) at commit $(git -C "$repo" rev-parse --short HEAD) on"
  echo "$(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)$([[ -n $autogroup_before ]] && echo ", shared with other work: run at autogroup nice $priority as bench/run.sh")."
  echo
  echo "| | p50 ms | p99 ms |"
  echo "|---|---:|---:|"
  echo "| send to printed (whole path) | $(pct "$work/total" 50) | $(pct "$work/total" 99) |"
  echo "| \`haven send\` alone (process, Argon2id unlock, log-in, X3DH/ratchet, seal, durable send) | $(pct "$work/send" 50) | $(pct "$work/send" 99) |"
  echo
  echo "Most of it is unlocking the profile: a \`haven contact list\`, which only"
  echo "opens the vault, takes ${argon_ms} ms (Argon2id, 64 MiB, 2 passes). A client"
  echo "that stays unlocked (the listener) adds only its decrypt and save."
  echo
  echo '```'
  echo "bench/cli_latency.sh  # BENCH_CLI_MESSAGES=$count"
  echo '```'
  echo
} >"$section"
cat "$section"
[[ ${BENCH_NO_WRITE:-0} == 1 ]] || "$repo/bench/write_section.sh" CLI "$section"
