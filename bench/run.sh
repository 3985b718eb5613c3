#!/usr/bin/env bash
# bench/run.sh [BUILD_DIR]: the relay benchmark behind `make bench`.
#
# Measures havend and, in the same run on the same machine, Mosquitto (the
# MQTT broker from Debian, persistence on) under load of the same shape,
# plus the ceiling of RocksDB itself on the same disk, and writes the
# "## Relay" section of docs/BENCHMARKS.md (other sections are kept) and
# the plots in docs/bench/. Takes about three minutes on a 2-core machine.
#
#   1. RocksDB ceiling: db_bench, 1 KiB values, synced WAL: one put per
#      write, batches of 64 and of 256.
#   2. havend, then Mosquitto, each with its load generator
#      (bench/loadgen/haven_loadgen, bench/mqtt/mqtt_loadgen), same
#      connections, size, window, counts and pacing:
#        online flat out (window 32)            [BENCH_CONNECTIONS 50, BENCH_MESSAGES 2000]
#        window sweep, flat out                 [BENCH_SWEEP "1 4 16 32 64 128", BENCH_SWEEP_MESSAGES 400]
#        paced at 1,000 msg/s                   [BENCH_RATE_MESSAGES 200 per connection]
#        paced at 10,000 msg/s                  [BENCH_RATE2_MESSAGES 1000 per connection,
#                                                BENCH_REPEATS 3 runs]
#        offline queue, then drain              [BENCH_OFFLINE_MESSAGES 1000 per recipient]
#        group fan-out: one group (havend) or topic (Mosquitto) of 1,000
#        members, each message to every member but its sender
#                                               [BENCH_FANOUT_MEMBERS 1000, BENCH_FANOUT_SENDERS 1,
#                                                BENCH_FANOUT_MESSAGES 200 per sender,
#                                                BENCH_REPEATS 3 runs]
#        idle connections: as many as the open-file limit allows, memory each
#                                               [BENCH_IDLE_CONNECTIONS: soft limit - 100]
#   3. havend start-up with 1,000,000 queued envelopes (bench/startup)
#                                               [BENCH_STARTUP_ACCOUNTS 1000 x BENCH_STARTUP_PER_ACCOUNT 1000]
#
# The two rows nearest their targets, p99 at 10,000 msg/s and fan-out,
# swing by up to a third from minute to minute on a shared machine, so
# each is run BENCH_REPEATS times and the tables show the median run.
#
# Every run checks that every send was acknowledged and every message
# delivered exactly once, or the script fails. BENCH_NO_WRITE=1 prints the
# section instead of writing docs/BENCHMARKS.md and the plots.
#
# A shared machine: where it may (root), the script raises the CPU
# priority of its scheduling group (/proc/self/autogroup, nice
# BENCH_PRIORITY, default -10; 0 leaves it) for the run and restores it at
# the end, so havend and Mosquitto alike get the cores before other work.
# Plain `nice` does nothing against other sessions' autogroups. Disk syncs
# still queue behind other work's I/O; the section reports both.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build-bench}
[[ $build = /* ]] || build="$repo/$build"

connections=${BENCH_CONNECTIONS:-50}
messages=${BENCH_MESSAGES:-2000}
size=${BENCH_SIZE:-1024}
window=${BENCH_WINDOW:-32}
sweep=${BENCH_SWEEP:-1 4 16 32 64 128}
sweep_messages=${BENCH_SWEEP_MESSAGES:-400}
rate=1000
rate_messages=${BENCH_RATE_MESSAGES:-200}
rate2=10000
rate2_messages=${BENCH_RATE2_MESSAGES:-1000}
offline_messages=${BENCH_OFFLINE_MESSAGES:-1000}
fanout_members=${BENCH_FANOUT_MEMBERS:-1000}
fanout_senders=${BENCH_FANOUT_SENDERS:-1}
fanout_messages=${BENCH_FANOUT_MESSAGES:-200}
repeats=${BENCH_REPEATS:-3}
startup_accounts=${BENCH_STARTUP_ACCOUNTS:-1000}
startup_per_account=${BENCH_STARTUP_PER_ACCOUNT:-1000}
rocksdb_sync_writes=${BENCH_ROCKSDB_SYNC_WRITES:-3000}
rocksdb_batch_writes=${BENCH_ROCKSDB_BATCH_WRITES:-256000}
delivery_window=128  # havend's default; Mosquitto's max_inflight_messages is set to it
timeout=${BENCH_TIMEOUT:-120}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[[ $repeats =~ ^[1-9][0-9]*$ ]] || die "BENCH_REPEATS must be a whole number of runs, 1 or more"

priority=${BENCH_PRIORITY:--10}
autogroup_before=
if [[ $priority != 0 && -w /proc/self/autogroup ]]; then
  autogroup_before=$(sed -n 's/.* nice //p' /proc/self/autogroup)
  if echo "$priority" 2>/dev/null >/proc/self/autogroup; then
    say "scheduling group at nice $priority for the run (BENCH_PRIORITY=0 leaves it)"
  else
    autogroup_before= priority=0
  fi
else
  priority=0
fi
restore_priority() { [[ -n $autogroup_before ]] && echo "$autogroup_before" >/proc/self/autogroup 2>/dev/null || true; }

# ---------------------------------------------------------------- build
if [[ ! -f $build/CMakeCache.txt ]]; then
  say "configuring a Release build in $build"
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
[[ $build_type == Release ]] ||
  say "warning: $build is a '${build_type:-default}' build; figures are meant for Release"
for tool in mosquitto db_bench gnuplot; do
  command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] ||
    die "$tool is missing: run deploy/install-deps.sh bench (make bench does)"
done
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
# cmake re-checks for libmosquitto, which install-deps.sh may just have added.
cmake "$build" >/dev/null
say "building havend and the load generators"
targets=(havend haven_loadgen mqtt_loadgen fill_store startup_probe)
if ! cmake --build "$build" --target "${targets[@]}" -j "$(nproc)" >"$build/bench-build.log" 2>&1; then
  tail -n 30 "$build/bench-build.log" >&2
  die "build failed (full log: $build/bench-build.log)"
fi
havend=$build/server/havend
loadgen=$build/bench/loadgen/haven_loadgen
mqtt_loadgen=$build/bench/mqtt/mqtt_loadgen
fill_store=$build/bench/startup/fill_store
startup_probe=$build/bench/startup/startup_probe

# ---------------------------------------------------------------- set-up
# Every data directory lives beside the build (a real disk, not a tmpfs
# /tmp), so WAL syncs cost what they cost.
work=$(mktemp -d "$build/bench-run.XXXXXX")
server_pid=
cleanup() {
  local rc=$?
  restore_priority
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if ((rc == 0)) && [[ ${BENCH_KEEP:-0} != 1 ]]; then
    rm -rf "$work"
  else
    say "the run's files (logs, JSON, latency files) are in $work"
  fi
}
trap cleanup EXIT

# Idle connections: one process may hold as many as its open-file limit.
nofile_soft0=$(ulimit -Sn) nofile_hard=$(ulimit -Hn)
ulimit -n "$nofile_hard" 2>/dev/null || true
nofile_soft=$(ulimit -Sn)
idle_connections=${BENCH_IDLE_CONNECTIONS:-$((nofile_soft - 100))}
say "open files: soft limit $nofile_soft0 raised to $nofile_soft (hard $nofile_hard); $idle_connections idle connections"
# Fan-out: mqtt_loadgen holds three descriptors per client (libmosquitto's
# wake-up socketpair), the servers one per member.
((nofile_soft >= 3 * fanout_members + 100)) ||
  die "the fan-out runs need an open-file limit of $((3 * fanout_members + 100)); it is $nofile_soft"

ticks=$(getconf CLK_TCK)
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
children_ticks() { awk '{ print $16 + $17 }' /proc/$$/stat; }  # waited-for load generators
# Machine-wide busy time minus the server's and the load generators' tells
# how disturbed a block of runs was.
block_begin() { b_busy=$(busy_ticks) b_srv=$(proc_ticks "$server_pid") b_kids=$(children_ticks) b_wall=$(date +%s.%N); }
block_end() {  # -> "OTHER_CPU_S WALL_S"
  local busy srv kids wall
  busy=$(busy_ticks) srv=$(proc_ticks "$server_pid") kids=$(children_ticks) wall=$(date +%s.%N)
  awk -v b="$((busy - b_busy))" -v s="$((srv - b_srv))" -v c="$((kids - b_kids))" -v t="$ticks" \
    -v w0="$b_wall" -v w1="$wall" \
    'BEGIN { o = (b - s - c) / t; if (o < 0) o = 0; printf "%.1f %.1f", o, w1 - w0 }'
}

stop_server() {  # NAME
  kill -TERM "$server_pid"
  local rc=0
  wait "$server_pid" || rc=$?
  server_pid=
  ((rc == 0)) || die "$1 exited with status $rc after SIGTERM (see $work)"
}

load_before=$(cut -d ' ' -f 1-3 /proc/loadavg)

# ---------------------------------------------------------------- 1. RocksDB ceiling
rocksdb_run() {  # NAME BATCH ENTRIES
  local name=$1 batch=$2 num=$3 out
  say "RocksDB ceiling: synced writes of $batch x 1 KiB ($num entries)"
  mkdir -p "$work/rocksdb"
  db_bench --db="$work/rocksdb/$name" --benchmarks=fillrandom --sync=1 --value_size="$size" \
    --key_size=16 --batch_size="$batch" --num="$num" --threads=1 --compression_type=none \
    >"$work/rocksdb-$name.txt" 2>&1 || die "db_bench failed (see $work/rocksdb-$name.txt)"
  out=$(awk '/^fillrandom/ { for (i = 1; i <= NF; i++) if ($i == "ops/sec") print $(i - 1) }' \
    "$work/rocksdb-$name.txt")
  [[ -n $out ]] || die "no result in $work/rocksdb-$name.txt"
  rm -rf "$work/rocksdb/$name"
  printf '%s' "$out"
}
rocks_1=$(rocksdb_run one 1 "$rocksdb_sync_writes")
rocks_64=$(rocksdb_run b64 64 "$rocksdb_batch_writes")
rocks_256=$(rocksdb_run b256 256 "$rocksdb_batch_writes")
rocksdb_version=$(dpkg-query -W -f='${Version}' librocksdb7.8 2>/dev/null ||
  dpkg-query -W -f='${Version}' rocksdb-tools 2>/dev/null || echo '?')

# ---------------------------------------------------------------- 2a. havend
cat >"$work/havend.toml" <<'EOF'
# All load comes from one address and few mailboxes: lift the abuse limits.
[limits]
connections_per_address = { per_second = 1e6, burst = 1e6 }
logins_per_address = { per_second = 1e6, burst = 1e6 }
sends_per_mailbox = { per_second = 1e6, burst = 1e6 }

[store]
max_queue_per_device = 1000000
EOF

start_havend() {  # DATA_DIR
  "$havend" --config "$work/havend.toml" --port 0 --data-dir "$1" \
    >"$work/havend.out" 2>>"$work/havend.log" &
  server_pid=$!
  port=
  for _ in $(seq 200); do
    local line
    line=$(head -n 1 "$work/havend.out" 2>/dev/null || true)
    if [[ $line == "havend listening on "* ]]; then
      port=${line##*:}
      break
    fi
    kill -0 "$server_pid" 2>/dev/null || die "havend exited at start-up (see $work/havend.log)"
    sleep 0.05
  done
  [[ -n $port ]] || die "havend did not print its address within 10 s"
  say "havend (pid $server_pid) listening on 127.0.0.1:$port"
}

data=$work/havend-data
"$havend" --config "$work/havend.toml" --data-dir "$data" admin create-org Bench >/dev/null \
  2>>"$work/havend.log" || die "havend admin create-org failed (see $work/havend.log)"
# One pool of invite tokens (`admin invite` prints at most 1,000 a call);
# each run takes the next slice.
# offline takes 2N; rate2 and fanout run $repeats times
invites_needed=$((connections * (4 + repeats + $(wc -w <<<"$sweep")) + fanout_members * repeats))
: >"$work/invites.txt"
left=$invites_needed
while ((left > 0)); do
  n=$((left > 1000 ? 1000 : left))
  "$havend" --config "$work/havend.toml" --data-dir "$data" admin invite Bench --count "$n" \
    >>"$work/invites.txt" 2>>"$work/havend.log" || die "havend admin invite failed (see $work/havend.log)"
  left=$((left - n))
done
invites_used=0
take_invites() {  # COUNT FILE
  sed -n "$((invites_used + 1)),$((invites_used + $1))p" "$work/invites.txt" >"$2"
  invites_used=$((invites_used + $1))
}

# The runs, as both load generators take them (same flags for both).
run_args() {  # KIND [WINDOW] -> the flags of that run
  case $1 in
    online) echo "--mode online --connections $connections --messages $messages --size $size --window $window" ;;
    sweep) echo "--mode online --connections $connections --messages $sweep_messages --size $size --window $2" ;;
    rate) echo "--mode online --connections $connections --messages $rate_messages --size $size --window $window --rate $rate" ;;
    rate2) echo "--mode online --connections $connections --messages $rate2_messages --size $size --window $window --rate $rate2" ;;
    offline) echo "--mode offline --connections $connections --messages $offline_messages --size $size --window $window" ;;
    fanout) echo "--mode fanout --connections $fanout_members --senders $fanout_senders --messages $fanout_messages --size $size --window $window" ;;
  esac
}
havend_run() {  # NAME KIND [WINDOW]
  local name=$1 kind=$2 needed=$connections
  [[ $kind == offline ]] && needed=$((2 * connections))
  [[ $kind == fanout ]] && needed=$fanout_members
  take_invites "$needed" "$work/invites-$name.txt"
  say "havend: $name"
  # shellcheck disable=SC2046 # the flags are a word list on purpose
  "$loadgen" --port "$port" --invites "$work/invites-$name.txt" $(run_args "$kind" "${3:-}") \
    --server-pid "$server_pid" --timeout "$timeout" --json "$work/havend-$name.json" \
    --latency-out "$work/havend-$name.cdf" >"$work/havend-$name.txt" ||
    die "the havend $name run failed (see $work/havend.log)"
  sed 's/^/  /' "$work/havend-$name.txt" >&2
}

# The load runs in order, through havend_run or mqtt_run, so both servers
# take the same ones.
load_runs() {  # RUN_FUNCTION
  "$1" online online
  for w in $sweep; do "$1" "sweep-$w" sweep "$w"; done
  "$1" rate rate
  for i in $(seq "$repeats"); do "$1" "rate2-$i" rate2; done
  "$1" offline offline
  for i in $(seq "$repeats"); do "$1" "fanout-$i" fanout; done
}

start_havend "$data"
block_begin
load_runs havend_run
read -r havend_other_cpu havend_wall <<<"$(block_end)"
say "stopping havend (SIGTERM)"
stop_server havend

# ---------------------------------------------------------------- 2b. Mosquitto
start_mosquitto() {  # DIR
  local dir=$1 try
  mkdir -p "$dir"
  for try in $(seq 20); do
    port=$((20000 + RANDOM % 40000))
    sed -e "s|@PORT@|$port|; s|@DIR@|$dir|g; s|@INFLIGHT@|$delivery_window|; s|@USER@|$(id -un)|" \
      "$repo/bench/mqtt/mosquitto.conf" >"$dir/mosquitto.conf"
    "$mosquitto" -c "$dir/mosquitto.conf" >>"$dir/mosquitto.out" 2>&1 &
    server_pid=$!
    # Listening once a client connects; a taken port makes it exit.
    for _ in $(seq 100); do
      kill -0 "$server_pid" 2>/dev/null || break
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        say "mosquitto (pid $server_pid) listening on 127.0.0.1:$port"
        return 0
      fi
      sleep 0.05
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  done
  die "mosquitto did not start (see $dir/mosquitto.out)"
}
mqtt_run() {  # NAME KIND [WINDOW]
  local name=$1 kind=$2
  say "mosquitto: $name"
  # shellcheck disable=SC2046
  "$mqtt_loadgen" --port "$port" $(run_args "$kind" "${3:-}") --receive-maximum "$delivery_window" --server-pid "$server_pid" \
    --timeout "$timeout" --json "$work/mosquitto-$name.json" \
    --latency-out "$work/mosquitto-$name.cdf" >"$work/mosquitto-$name.txt" ||
    die "the mosquitto $name run failed (see $work/mosquitto)"
  sed 's/^/  /' "$work/mosquitto-$name.txt" >&2
}

start_mosquitto "$work/mosquitto"
block_begin
load_runs mqtt_run
read -r mosquitto_other_cpu mosquitto_wall <<<"$(block_end)"
mosquitto_db=$(stat -c %s "$work/mosquitto/mosquitto.db" 2>/dev/null || echo 0)
say "stopping mosquitto (SIGTERM; it writes its database)"
t0=$(date +%s%N)
stop_server mosquitto
mosquitto_save_ms=$((($(date +%s%N) - t0) / 1000000))
mosquitto_db=$(stat -c %s "$work/mosquitto/mosquitto.db" 2>/dev/null || echo 0)

# ---------------------------------------------------------------- 2c. idle connections
say "idle: $idle_connections accounts for havend"
"$fill_store" --data-dir "$work/idle-data" --accounts "$idle_connections" --envelopes-per-account 0 \
  --accounts-out "$work/idle-accounts.txt" 2>>"$work/havend.log" ||
  die "fill_store failed (see $work/havend.log)"
start_havend "$work/idle-data"
say "havend: idle"
"$loadgen" --port "$port" --accounts "$work/idle-accounts.txt" --mode idle \
  --connections "$idle_connections" --open-concurrency 256 --server-pid "$server_pid" \
  --timeout "$timeout" --json "$work/havend-idle.json" >"$work/havend-idle.txt" ||
  die "the havend idle run failed (see $work/havend.log)"
sed 's/^/  /' "$work/havend-idle.txt" >&2
stop_server havend

start_mosquitto "$work/mosquitto-idle"
say "mosquitto: idle"
"$mqtt_loadgen" --port "$port" --mode idle --connections "$idle_connections" \
  --server-pid "$server_pid" --timeout "$timeout" --json "$work/mosquitto-idle.json" \
  >"$work/mosquitto-idle.txt" || die "the mosquitto idle run failed"
sed 's/^/  /' "$work/mosquitto-idle.txt" >&2
stop_server mosquitto

# ---------------------------------------------------------------- 3. start-up
startup_total=$((startup_accounts * startup_per_account))
say "start-up: filling a data directory with $startup_total envelopes"
"$fill_store" --data-dir "$work/startup-data" --accounts "$startup_accounts" \
  --envelopes-per-account "$startup_per_account" --size "$size" \
  --accounts-out "$work/startup-accounts.txt" --json "$work/fill.json" 2>>"$work/havend.log" ||
  die "fill_store failed (see $work/havend.log)"
startup_du=$(du -sm "$work/startup-data" | awk '{ print $1 }')
# The write-ahead log a restart replays: what the store left unflushed.
read -r startup_wal_files startup_wal_mib <<<"$(find "$work/startup-data" -name '*.log' -printf '%s\n' |
  awk '{ n++; s += $1 } END { printf "%d %.0f", n, s / 1048576 }')"
say "start-up: $startup_du MiB, of which $startup_wal_mib MiB in $startup_wal_files WAL files"
"$startup_probe" --havend "$havend" --config "$work/havend.toml" --data-dir "$work/startup-data" \
  --accounts "$work/startup-accounts.txt" --runs 3 --log "$work/havend.log" \
  --json "$work/startup.json" >/dev/null || die "startup_probe failed (see $work/havend.log)"

# ---------------------------------------------------------------- results
get() {  # FILE KEY: a value from a flat JSON object, 'null' when absent
  local v
  v=$(sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1" 2>/dev/null)
  printf '%s' "${v:-null}"
}
fmt() {  # VALUE DECIMALS [1: whole number with thousands separators]
  local v=$1
  [[ $v == null || -z $v ]] && { printf -- '-'; return; }
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
per_delivery() {  # CPU_S DELIVERIES -> microseconds each
  [[ $1 == null || $2 == null || -z $1 || -z $2 ]] && { printf -- '-'; return; }
  LC_ALL=C awk -v c="$1" -v d="$2" 'BEGIN { if (d == 0) printf "-"; else printf "%.1f", c / d * 1e6 }'
}
fmt_kib() {  # BYTES -> "N.N KiB"
  [[ $1 == null || -z $1 ]] && { printf -- '-'; return; }
  LC_ALL=C awk -v v="$1" 'BEGIN { printf "%.1f KiB", v / 1024 }'
}
ratio() {  # A B -> A/B
  [[ $1 == null || $2 == null || -z $1 || -z $2 ]] && { printf -- '-'; return; }
  LC_ALL=C awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) printf "-"; else printf "%.2f", a / b }'
}
met() {  # VALUE OP LIMIT -> yes/no
  [[ $1 == null || -z $1 ]] && { printf 'no'; return; }
  LC_ALL=C awk -v v="$1" -v op="$2" -v l="$3" \
    'BEGIN { ok = (op == ">=") ? v >= l : v <= l; printf "%s", ok ? "**yes**" : "**no**" }'
}
# Of the runs NAME-1..N, the one whose KEY is the median becomes NAME, so
# that the tables and plots show a typical run, not the luckiest.
keep_median() {  # SERVER NAME KEY
  local i ext median
  median=$(for i in $(seq "$repeats"); do echo "$(get "$work/$1-$2-$i.json" "$3") $i"; done |
    sort -g | sed -n "$(((repeats + 1) / 2))p" | cut -d ' ' -f 2)
  for ext in json cdf; do cp "$work/$1-$2-$median.$ext" "$work/$1-$2.$ext"; done
}
all_runs() {  # SERVER NAME KEY DECIMALS [1: thousands] -> "a / b / c", in run order
  local i out=
  for i in $(seq "$repeats"); do
    out+="${out:+ / }$(fmt "$(get "$work/$1-$2-$i.json" "$3")" "$4" "${5:-0}")"
  done
  printf '%s' "$out"
}
for server in havend mosquitto; do
  keep_median "$server" rate2 p99_ms
  keep_median "$server" fanout deliveries_per_s
done
H() { get "$work/havend-$1.json" "$2"; }
M() { get "$work/mosquitto-$1.json" "$2"; }
S() { get "$work/startup.json" "$1"; }

commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$repo" status --porcelain -- server protocol crypto/verify bench \
  CMakeLists.txt 2>/dev/null) ]]; then
  commit="$commit-dirty"
fi
cpu_model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
fs=$(df -T "$build" 2>/dev/null | awk 'NR == 2 { print $2 " on " $1 }')
date=$(date -u '+%Y-%m-%d %H:%M UTC')
mosquitto_version=$( ("$mosquitto" -h 2>/dev/null || true) | sed -n 's/^mosquitto version //p' | head -n 1)
rel_build=$(realpath --relative-to="$repo" "$build" 2>/dev/null || echo "$build")

# Per-connection figures of the idle runs.
h_idle_anon=$(H idle anon_bytes_per_connection) m_idle_anon=$(M idle anon_bytes_per_connection)
h_idle_rss=$(H idle rss_bytes_per_connection) m_idle_rss=$(M idle rss_bytes_per_connection)
h_idle_slab=$(H idle kernel_slab_bytes_per_connection) m_idle_slab=$(M idle kernel_slab_bytes_per_connection)
h_idle_n=$(H idle connections) m_idle_n=$(M idle connections)
# One million connections, on paper, from the measured per-connection cost.
per_million() { LC_ALL=C awk -v b="$1" 'BEGIN { if (b == "null") printf "-"; else printf "%.1f GiB", b * 1e6 / 1073741824 }'; }

docs_bench=$repo/docs/bench
plots=$work/plots
mkdir -p "$plots"

# ---------------------------------------------------------------- plots
{
  echo "# window havend_sends_per_s mosquitto_publishes_per_s"
  for w in $sweep; do echo "$w $(H "sweep-$w" sends_per_s) $(M "sweep-$w" sends_per_s)"; done
} >"$work/sweep.dat"
gnuplot <<EOF || die "gnuplot failed"
set terminal pngcairo size 900,560 font ",11" noenhanced
set output "$plots/throughput_vs_window.png"
set title "Acknowledged 1 KiB sends/s against in-flight window ($connections connections, loopback, $(nproc) cores)"
set xlabel "in-flight window per connection (unacknowledged sends)"
set ylabel "messages/s"
set logscale x 2
set xrange [0.8:160]
set xtics ($(for w in $sweep; do printf '"%s" %s,' "$w" "$w"; done | sed 's/,$//'))
set yrange [0:*]
set offsets 0, 0, graph 0.25, 0
set grid
set key bottom right opaque box
plot "$work/sweep.dat" using 1:2 with linespoints lw 2 pt 7 lc rgb "#1f5fa8" title "havend: durable ack (synced RocksDB WAL)", \
     "" using 1:3 with linespoints lw 2 pt 5 lc rgb "#e07b00" title "Mosquitto $mosquitto_version: QoS 1 PUBACK (persistence on, not synced per message)"
EOF
gnuplot <<EOF || die "gnuplot failed"
set terminal pngcairo size 900,560 font ",11" noenhanced
set output "$plots/latency_cdf.png"
set title "Send-to-delivery latency, 1 KiB, $connections connections, paced"
set xlabel "latency (ms, log scale)"
set ylabel "fraction of messages at or below"
set logscale x 10
set ytics ("0" 0, "50%%" 0.30103, "90%%" 1, "99%%" 2, "99.9%%" 3, "99.99%%" 4)
set yrange [0:4.2]
set grid
set key bottom right
f(p) = (p >= 1) ? 4.2 : -log10(1 - p)
plot "$work/havend-rate.cdf" using 1:(f(\$2)) with lines lw 2 lc rgb "#1f5fa8" title "havend at $(thousands $rate) msg/s", \
     "$work/havend-rate2.cdf" using 1:(f(\$2)) with lines lw 2 dt 2 lc rgb "#1f5fa8" title "havend at $(thousands $rate2) msg/s", \
     "$work/mosquitto-rate.cdf" using 1:(f(\$2)) with lines lw 2 lc rgb "#e07b00" title "Mosquitto at $(thousands $rate) msg/s", \
     "$work/mosquitto-rate2.cdf" using 1:(f(\$2)) with lines lw 2 dt 2 lc rgb "#e07b00" title "Mosquitto at $(thousands $rate2) msg/s"
EOF

# ---------------------------------------------------------------- the section
row() {  # SYSTEM RUN-LABEL NAME
  local get_=H
  [[ $1 == Mosquitto ]] && get_=M
  local drain
  drain=$($get_ "$3" drain_per_s)
  echo "| $1 | $2 | $(fmt "$($get_ "$3" sends_per_s)" 0 1) | $(fmt "$($get_ "$3" p50_ms)" 3) | $(fmt "$($get_ "$3" p99_ms)" 3) | $(fmt "$($get_ "$3" p999_ms)" 3) | $(fmt "$drain" 0 1) | $(fmt "$($get_ "$3" server_cpu_us_per_msg)" 1) | $(fmt "$($get_ "$3" loadgen_cpu_s)" 2) |"
}

section=$work/relay.md
{
  echo "## Relay"
  echo
  echo "Written by \`make bench\` (\`bench/run.sh\`) in one run: havend and, on the same machine"
  echo "right after it, Mosquitto $mosquitto_version from Debian (persistence on), each driven over loopback by a"
  echo "load generator of the same shape (\`bench/loadgen\`, \`bench/mqtt\`: one client thread,"
  echo "$connections connections, $(fmt "$size" 0) B messages, the same in-flight window, counts and pacing),"
  echo "and RocksDB itself on the same disk."
  echo
  echo "- Commit: \`$commit\`, build type ${build_type:-default}; $date"
  echo "- Machine: $(nproc) cores ($cpu_model), $mem memory, Linux $(uname -r); data directories on ${fs:-?}."
  echo "  Servers and load generators share the cores. Other processes and kernel threads used"
  echo "  ${havend_other_cpu} CPU-s during havend's ${havend_wall} s of load runs and ${mosquitto_other_cpu} CPU-s during Mosquitto's ${mosquitto_wall} s."
  echo "- Open files: soft limit $nofile_soft0 raised to the hard limit $nofile_hard for the run."
  if [[ $priority != 0 ]]; then
    echo "- The machine is shared with other work (load average $load_before when the run began). The"
    echo "  run's scheduling group ran at nice $priority (\`BENCH_PRIORITY\`), havend and Mosquitto alike, so they"
    echo "  got the cores first; disk syncs still wait behind the others' I/O."
  fi
  echo
  echo "### Targets (issue 7)"
  echo
  echo "Ratios are havend ÷ Mosquitto: above 1 is better for havend in rates, below 1 in"
  echo "latencies and memory."
  echo
  echo "| target | goal | havend | Mosquitto | ratio | met? |"
  echo "|---|---|---:|---:|---:|---|"
  echo "| durable-ack sends/s, 1 KiB, online, window $window, flat out | ≥ 30,000 | $(thousands "$(H online sends_per_s)") | $(thousands "$(M online sends_per_s)") | $(ratio "$(H online sends_per_s)" "$(M online sends_per_s)") | $(met "$(H online sends_per_s)" ">=" 30000) |"
  echo "| server CPU per message, same run | reported | $(fmt "$(H online server_cpu_us_per_msg)" 1) µs | $(fmt "$(M online server_cpu_us_per_msg)" 1) µs | $(ratio "$(H online server_cpu_us_per_msg)" "$(M online server_cpu_us_per_msg)") | - |"
  echo "| offline queueing, durable, msg/s | ≥ 40,000 | $(thousands "$(H offline queue_per_s)") | $(thousands "$(M offline queue_per_s)") | $(ratio "$(H offline queue_per_s)" "$(M offline queue_per_s)") | $(met "$(H offline queue_per_s)" ">=" 40000) |"
  echo "| drain after reconnect, msg/s | ≥ 120,000 | $(thousands "$(H offline drain_per_s)") | $(thousands "$(M offline drain_per_s)") | $(ratio "$(H offline drain_per_s)" "$(M offline drain_per_s)") | $(met "$(H offline drain_per_s)" ">=" 120000) |"
  echo "| latency at $(thousands $rate) msg/s, p50 | ≤ 0.6 ms | $(fmt "$(H rate p50_ms)" 3) ms | $(fmt "$(M rate p50_ms)" 3) ms | $(ratio "$(H rate p50_ms)" "$(M rate p50_ms)") | $(met "$(H rate p50_ms)" "<=" 0.6) |"
  echo "| latency at $(thousands $rate) msg/s, p99 | ≤ 4 ms | $(fmt "$(H rate p99_ms)" 3) ms | $(fmt "$(M rate p99_ms)" 3) ms | $(ratio "$(H rate p99_ms)" "$(M rate p99_ms)") | $(met "$(H rate p99_ms)" "<=" 4) |"
  echo "| latency at $(thousands $rate2) msg/s, p99 | ≤ 5 ms | $(fmt "$(H rate2 p99_ms)" 3) ms | $(fmt "$(M rate2 p99_ms)" 3) ms | $(ratio "$(H rate2 p99_ms)" "$(M rate2 p99_ms)") | $(met "$(H rate2 p99_ms)" "<=" 5) |"
  echo "| idle authenticated connections in one process | the open-file limit ($(thousands "$nofile_soft")) | $(thousands "$h_idle_n") | $(thousands "$m_idle_n") | - | $( ((h_idle_n + 100 >= nofile_soft)) && echo '**yes**' || echo '**no**') |"
  echo "| user-space memory per idle connection (anonymous) | ≤ 4 KiB | $(fmt "$h_idle_anon" 0 1) B | $(fmt "$m_idle_anon" 0 1) B | $(ratio "$h_idle_anon" "$m_idle_anon") | $(met "$h_idle_anon" "<=" 4096) |"
  echo "| group fan-out to $(thousands "$fanout_members") members, body stored once, deliveries/s | ≥ 200,000 | $(thousands "$(H fanout deliveries_per_s)") | $(thousands "$(M fanout deliveries_per_s)") | $(ratio "$(H fanout deliveries_per_s)" "$(M fanout deliveries_per_s)") | $(met "$(H fanout deliveries_per_s)" ">=" 200000) |"
  echo "| server CPU per delivery, same run | reported | $(fmt "$(H fanout server_cpu_us_per_delivery)" 2) µs | $(fmt "$(M fanout server_cpu_us_per_delivery)" 2) µs | $(ratio "$(H fanout server_cpu_us_per_delivery)" "$(M fanout server_cpu_us_per_delivery)") | - |"
  echo "| server storage writes per group message, same run (one copy per member: $(thousands "$(((fanout_members - 1) * size / 1024))") KiB) | reported | $(fmt_kib "$(H fanout server_write_bytes_per_msg)") | $(fmt_kib "$(M fanout server_write_bytes_per_msg)") | - | - |"
  echo "| start-up with $(thousands "$startup_total") queued envelopes, exec to serving (/healthz) | < 1 s | $(fmt "$(S first_healthz_ms)" 0) ms | - | - | $(met "$(S first_healthz_ms)" "<=" 1000) |"
  echo "| the same after havend's own clean stop (median of 2 restarts) | < 1 s | $(fmt "$(S median_healthz_ms)" 0) ms | - | - | $(met "$(S median_healthz_ms)" "<=" 1000) |"
  echo
  echo "The paced $(thousands $rate2) msg/s run and the fan-out run were each made $repeats times, on both"
  echo "servers, because they swing most from minute to minute; every table and plot shows the run"
  echo "with the median p99 (paced) or deliveries/s (fan-out). All runs, in the order made:"
  echo
  echo "| runs | havend | Mosquitto |"
  echo "|---|---|---|"
  echo "| p99 at $(thousands $rate2) msg/s, ms | $(all_runs havend rate2 p99_ms 3) | $(all_runs mosquitto rate2 p99_ms 3) |"
  echo "| fan-out deliveries/s | $(all_runs havend fanout deliveries_per_s 0 1) | $(all_runs mosquitto fanout deliveries_per_s 0 1) |"
  echo
  echo "Reference figures quoted in the issue for this machine class: RocksDB synced put ~2,400/s,"
  echo "batches of 64/256 ~62,000/~95,000/s; Mosquitto QoS 1 with persistence ~22,500 msg/s, p99"
  echo "~8 ms at full load and ~16 ms at 10k msg/s, offline queue in/drain ~31,000/~113,000 msg/s;"
  echo "idle connection ~5.2 KB (stock Beast WebSocket), ~1.0 KB (Mosquitto)."
  echo
  echo "**What the two acks mean.** havend answers a send only once the envelope is in the synced"
  echo "RocksDB WAL (group-committed). Mosquitto answers PUBACK once the message is in memory: with"
  echo "\`persistence true\` it writes its whole in-memory database every \`autosave_interval\` seconds"
  echo "(1800 here, the default) and at exit, so a crash loses every message since the last save."
  echo "(This run's database, written at exit: $(fmt "$((mosquitto_db / 1024))" 0 1) KiB in ${mosquitto_save_ms} ms.) Saving after every"
  echo "message (\`autosave_on_changes true\`, \`autosave_interval 1\`) rewrites that whole file per"
  echo "message, which nobody runs. The rows compare a durable relay with an in-memory broker."
  echo
  echo "**How the receivers ack.** An MQTT 5 client must PUBACK every QoS 1 PUBLISH on its own. A"
  echo "Haven ack names up to 256 delivered envelopes and is answered once (docs/PROTOCOL.md, Ack):"
  echo "haven_loadgen acks what has arrived whenever nothing more waits on its socket, at most"
  echo "32 envelopes (\`--ack-batch\`), as a client draining its queue would."
  echo
  echo "### RocksDB ceiling (same disk, same run)"
  echo
  echo "\`db_bench\` (RocksDB $rocksdb_version from Debian), 1 KiB values, 16-byte keys, WAL synced on every write:"
  echo
  echo "| writes | puts/s | ratio to havend's online durable sends |"
  echo "|---|---:|---:|"
  echo "| one put per synced write | $(thousands "$rocks_1") | $(ratio "$(H online sends_per_s)" "$rocks_1") |"
  echo "| batches of 64 puts | $(thousands "$rocks_64") | $(ratio "$(H online sends_per_s)" "$rocks_64") |"
  echo "| batches of 256 puts | $(thousands "$rocks_256") | $(ratio "$(H online sends_per_s)" "$rocks_256") |"
  echo
  echo "\`db_bench --benchmarks=fillrandom --sync=1 --value_size=$size --key_size=16 --batch_size=B --num=N --threads=1 --compression_type=none\`"
  echo "(N = $(thousands "$rocksdb_sync_writes") for single puts, $(thousands "$rocksdb_batch_writes") for batches). A havend send is"
  echo "two puts (the envelope and its queue counter) in a group-committed batch, so the batched rows"
  echo "bound what a store like havend's can acknowledge on this disk."
  echo
  echo "### All runs"
  echo
  echo "| server | run | acked sends/s | p50 ms | p99 ms | p99.9 ms | drain/s | server CPU µs/msg | load generator CPU s |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  for sys in havend Mosquitto; do
    row "$sys" "online, $connections conns x $(thousands "$messages"), window $window, flat out" online
    for w in $sweep; do row "$sys" "online, $connections x $(thousands "$sweep_messages"), window $w" "sweep-$w"; done
    row "$sys" "paced at $(thousands $rate) msg/s, $connections x $(thousands "$rate_messages")" rate
    row "$sys" "paced at $(thousands $rate2) msg/s, $connections x $(thousands "$rate2_messages")" rate2
    row "$sys" "offline: $(thousands $((connections * offline_messages))) queued for $connections recipients, then drained" offline
  done
  echo
  echo "Every send was acknowledged and every message delivered exactly once (the load generators"
  echo "fail the run otherwise). Latency is from the sender building the frame to the receiver"
  echo "reading it, both in the load generator's process. Server CPU is the server process's utime +"
  echo "stime from /proc over the measured part of each run, per message (offline: queueing and"
  echo "draining together). Flat-out latency is mostly queueing: with $connections x $window sends in flight it is"
  echo "about $((connections * window)) / (sends/s). Mosquitto's \`max_inflight_messages\` (broker to subscriber) is"
  echo "$delivery_window, havend's delivery window; the publisher window is counted by the load generator for both."
  echo
  echo "![throughput against window](bench/throughput_vs_window.png)"
  echo
  echo "![latency distribution](bench/latency_cdf.png)"
  echo
  echo "### Group fan-out"
  echo
  echo "One group of $(thousands "$fanout_members") members, all connected: in havend, member 0 creates it and adds the"
  echo "others (256 a request, presenting each one's access key); in Mosquitto every client subscribes"
  echo "to one topic at QoS 1 (MQTT 5, with no-local, so that a publisher does not get its own"
  echo "messages back; Receive Maximum $delivery_window, as havend's delivery window). Then"
  echo "$(thousands "$fanout_senders") $( ((fanout_senders == 1)) && echo sender || echo senders) x $(thousands "$fanout_messages") messages of $(fmt "$size" 0) B, window $window; each message reaches"
  echo "every member but its sender ($(thousands "$(((fanout_members - 1) * fanout_senders * fanout_messages))") deliveries in all), and every member acknowledges"
  echo "each delivery (havend: in batched acks, as above). Deliveries/s count from the first send to the last delivery; server CPU is"
  echo "over the whole run (acks included), per delivery. Storage writes are the server's"
  echo "\`write_bytes\` (/proc/PID/io: pages dirtied, so a WAL page rewritten after every sync counts"
  echo "each time) per group message; one copy of the body per member would be $(thousands "$(((fanout_members - 1) * size / 1024))") KiB."
  echo
  echo "| server | sends/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | server CPU µs/delivery | storage writes per message | load generator CPU s |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for sys in havend Mosquitto; do
    get_=H
    [[ $sys == Mosquitto ]] && get_=M
    echo "| $sys | $(fmt "$($get_ fanout sends_per_s)" 0 1) | $(fmt "$($get_ fanout deliveries_per_s)" 0 1) | $(fmt "$($get_ fanout p50_ms)" 3) | $(fmt "$($get_ fanout p99_ms)" 3) | $(fmt "$($get_ fanout p999_ms)" 3) | $(fmt "$($get_ fanout server_cpu_us_per_delivery)" 2) | $(fmt_kib "$($get_ fanout server_write_bytes_per_msg)") | $(fmt "$($get_ fanout loadgen_cpu_s)" 2) |"
  done
  echo
  echo "The load generators spend $(per_delivery "$(H fanout loadgen_cpu_s)" "$(H fanout deliveries)") µs (haven_loadgen) and"
  echo "$(per_delivery "$(M fanout loadgen_cpu_s)" "$(M fanout deliveries)") µs (mqtt_loadgen) of CPU per delivery (read, check, ack) on the same $(nproc) cores."
  echo
  echo "### Idle connections"
  echo
  echo "One load-generator process opens as many connections as one process may (open-file limit,"
  echo "soft $(thousands "$nofile_soft") / hard $(thousands "$nofile_hard"), less 100 for the server's own files); each havend"
  echo "connection logs in (Ed25519 challenge) as an account made by \`fill_store\`, each Mosquitto"
  echo "client connects and subscribes to its own topic at QoS 1. The server's memory is read from"
  echo "/proc before the first connection and 2 s after the last:"
  echo
  echo "| | havend | Mosquitto |"
  echo "|---|---:|---:|"
  echo "| connections held | $(thousands "$h_idle_n") | $(thousands "$m_idle_n") |"
  echo "| anonymous memory (heap, stacks; smaps_rollup) per connection | $(fmt "$h_idle_anon" 0 1) B | $(fmt "$m_idle_anon" 0 1) B |"
  echo "| RSS per connection | $(fmt "$h_idle_rss" 0 1) B | $(fmt "$m_idle_rss" 0 1) B |"
  echo "| kernel slab per connection, both ends of the loopback pair | $(fmt "$h_idle_slab" 0 1) B | $(fmt "$m_idle_slab" 0 1) B |"
  echo "| server RSS before → after | $(thousands "$(H idle server_rss_before_kib)") → $(thousands "$(H idle server_rss_after_kib)") KiB | $(thousands "$(M idle server_rss_before_kib)") → $(thousands "$(M idle server_rss_after_kib)") KiB |"
  echo "| time to open and log in all | $(fmt "$(H idle register_seconds)" 1) s | $(fmt "$(M idle register_seconds)" 1) s |"
  echo
  echo "havend's figure includes RocksDB's block cache filling with the account records read at"
  echo "log-in (bounded by the cache, so it does not grow with connections beyond that). Kernel"
  echo "memory (socket structures, epoll items, file objects, TCP buffers) is not user space: the"
  echo "slab row is machine-wide and counts both the client and the server socket of each pair."
  echo
  echo "**One million connections, on paper**, from these measurements: user space"
  echo "$(per_million "$h_idle_anon") for havend ($(per_million "$m_idle_anon") for Mosquitto), plus about half the slab row in the"
  echo "kernel for the server's sockets ($(per_million "$(LC_ALL=C awk -v s="$h_idle_slab" 'BEGIN { if (s == "null") print "null"; else print s / 2 }')")) and socket buffers for whatever is"
  echo "in flight. The limits to raise: the process's open-file limit (\`LimitNOFILE=1100000\` in"
  echo "the unit; \`fs.nr_open\` is 1,048,576 by default, so raise it too), \`fs.file-max\`, and, for"
  echo "test clients on one machine, source addresses: one client address reaches one server"
  echo "port at most ~28,000 times (\`ip_local_port_range\` 32768-60999), so 1M test connections need"
  echo "~36 client addresses (127.0.0.2, ...) or server ports."
  echo
  echo "### Start-up with $(thousands "$startup_total") queued envelopes"
  echo
  echo "\`fill_store\` (bench/startup) filled a data directory through \`haven::store\`: $(thousands "$startup_accounts") accounts x"
  echo "$(thousands "$startup_per_account") envelopes of $(fmt "$size" 0) B ($(thousands "$startup_du") MiB on disk) in $(fmt "$(get "$work/fill.json" envelopes_seconds)" 1) s ($(thousands "$(get "$work/fill.json" envelopes_per_s)") envelopes/s,"
  echo "group-committed, synced, as havend writes them); the store then held $(thousands "$startup_wal_mib") MiB of write-ahead log in"
  echo "$startup_wal_files files. \`startup_probe\` started havend three times: first on the directory as"
  echo "the fill left it (as a running havend leaves it: a restart after a crash or a plain stop),"
  echo "then twice more after havend's own clean SIGTERM stop. Times from fork; havend prints its"
  echo "\"listening\" line right after opening the store and binding the port, so that row is"
  echo "essentially the store's open time:"
  echo
  echo "| | first start (WAL as left by the writes) | median of 3 |"
  echo "|---|---:|---:|"
  echo "| \"havend listening on\" printed (store open, port bound) | $(fmt "$(S first_listening_ms)" 0) ms | $(fmt "$(S median_listening_ms)" 0) ms |"
  echo "| /healthz answered 200 | $(fmt "$(S first_healthz_ms)" 0) ms | $(fmt "$(S median_healthz_ms)" 0) ms |"
  echo "| first log-in answered (Authenticated) | $(fmt "$(S first_login_ms)" 0) ms | $(fmt "$(S median_login_ms)" 0) ms |"
  echo "| first queued envelope pushed | $(fmt "$(S first_envelope_first_ms)" 0) ms | $(fmt "$(S median_first_envelope_ms)" 0) ms |"
  echo "| clean stop after SIGTERM | $(fmt "$(S first_stop_ms)" 0) ms | $(fmt "$(S median_stop_ms)" 0) ms |"
  echo
  echo "The data directory's files are in the page cache (they were just written); a cold start"
  echo "after a reboot also reads them from disk."
  echo
  echo "### Command"
  echo
  echo '```'
  echo "make bench   # = deploy/install-deps.sh bench; bench/run.sh $rel_build; bench/cli_latency.sh $rel_build"
  echo "# bench/run.sh runs, with PORT, PID and the files its own:"
  echo "db_bench --benchmarks=fillrandom --sync=1 --value_size=$size --key_size=16 --batch_size={1,64,256} --threads=1 --compression_type=none"
  echo "havend --config havend.toml --port 0 --data-dir DATA   # config: rate limits lifted, see bench/run.sh"
  echo "mosquitto -c mosquitto.conf                            # bench/mqtt/mosquitto.conf"
  echo "# rate2 and fanout: $repeats runs each"
  for kind in online rate rate2 offline fanout; do
    echo "haven_loadgen --port PORT --invites FILE $(run_args $kind) --server-pid PID"
    echo "mqtt_loadgen --port PORT $(run_args $kind) --receive-maximum $delivery_window --server-pid PID"
  done
  echo "haven_loadgen / mqtt_loadgen --port PORT ... $(run_args sweep W) --server-pid PID   # W in: $sweep"
  echo "fill_store --accounts $idle_connections --envelopes-per-account 0; haven_loadgen --accounts FILE --mode idle --connections $idle_connections --open-concurrency 256 --server-pid PID"
  echo "mqtt_loadgen --mode idle --connections $idle_connections --server-pid PID"
  echo "fill_store --accounts $startup_accounts --envelopes-per-account $startup_per_account; startup_probe --runs 3"
  echo '```'
  echo
} >"$section"

cat "$section"
if [[ ${BENCH_NO_WRITE:-0} == 1 ]]; then
  say "BENCH_NO_WRITE=1: docs/BENCHMARKS.md and docs/bench/ left as they were (plots in $plots)"
  BENCH_KEEP=1
  exit 0
fi
mkdir -p "$docs_bench"
cp "$plots"/*.png "$docs_bench/"
"$repo/bench/write_section.sh" Relay "$section"
