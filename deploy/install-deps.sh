#!/usr/bin/env bash
# Installs the Debian 12 packages Haven needs to build, test and run, and
# only those that are missing. Safe to run again; used by `make`.
set -euo pipefail

packages=(
  g++ cmake ninja-build ccache pkg-config make
  libsodium-dev libboost-dev librocksdb-dev libprotobuf-dev protobuf-compiler
  catch2 libbenchmark-dev libcli11-dev libtomlplusplus-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libssl-dev openssl
)
# Extra groups: `web` adds what the browser client needs, `fuzz` the clang
# with libFuzzer (Debian 12's clang 19: clang 14 cannot compile std::expected),
# `bench` the broker and tools that `make bench` compares havend with.
for group in "$@"; do
  case "$group" in
    web) packages+=(nodejs npm chromium) ;;
    fuzz) packages+=(clang-19 libclang-rt-19-dev) ;;
    bench) packages+=(mosquitto mosquitto-clients libmosquitto-dev gnuplot-nox rocksdb-tools linux-perf) ;;
    *) echo "install-deps.sh: unknown group '$group'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    # A command already on PATH (node, npm from another source) is good enough.
    case "$p" in nodejs) command -v node >/dev/null && continue ;; npm) command -v npm >/dev/null && continue ;; esac
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
