# Haven: the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
BUILD   ?= build
ASAN    ?= build-asan
TSAN    ?= build-tsan
FUZZ    ?= build-fuzz
FUZZ_SECONDS ?= 60
DATA    ?= .haven-data
PORT    ?= 8080
JOBS    ?= $(shell nproc)
CMAKE_FLAGS := -G Ninja -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
HAVEND  := $(BUILD)/server/havend

.PHONY: all deps web build build-asan build-tsan run test test-release test-asan test-tsan test-fuzz fuzz bench clean

all: build

deps:
	@deploy/install-deps.sh web

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) -DCMAKE_BUILD_TYPE=RelWithDebInfo

# The browser client (clients/web/dist, served by `make run`).
web: deps
	cd clients/web && { { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ]; } || npm ci --no-audit --no-fund; } && npm run build

build: deps web $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN)/build.ninja: | deps
	cmake -S . -B $(ASAN) $(CMAKE_FLAGS) -DCMAKE_BUILD_TYPE=Debug -DHAVEN_SANITIZE=address

build-asan: deps $(ASAN)/build.ninja
	cmake --build $(ASAN) -j $(JOBS)

# ThreadSanitizer: only what the concurrency tests need (store, relay, havend).
# Warnings are errors in the other builds; GCC 12 gives false
# -Wstringop-overflow warnings under -fsanitize=thread.
$(TSAN)/build.ninja: | deps
	cmake -S . -B $(TSAN) $(CMAKE_FLAGS) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHAVEN_SANITIZE=thread \
	  -DHAVEN_WERROR=OFF

build-tsan: deps $(TSAN)/build.ninja
	cmake --build $(TSAN) -j $(JOBS) --target store_tests relay_tests reliability_tests havend

# Starts havend on 127.0.0.1:$(PORT) with its RocksDB directory $(DATA).
# On the first run it creates an organisation and prints invites to try.
run: build
	@if [ ! -d "$(DATA)" ]; then \
	  $(HAVEND) --data-dir "$(DATA)" admin create-org "Demo Service" && \
	  echo "Caseworker invite:" && $(HAVEND) --data-dir "$(DATA)" admin invite "Demo Service" --role caseworker && \
	  echo "Survivor invite:" && $(HAVEND) --data-dir "$(DATA)" admin invite "Demo Service" --role survivor; \
	fi
	exec $(HAVEND) --data-dir "$(DATA)" --port $(PORT) $(if $(wildcard clients/web/dist),--web-root clients/web/dist)

# Every test in a release build, again under ASan+UBSan, the concurrency
# tests under TSan, and a short run of every fuzz target.
test: test-release test-asan test-tsan test-fuzz

test-release: build
	ctest --test-dir $(BUILD) --output-on-failure -j 2

test-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN) --output-on-failure -j 2

test-tsan: build-tsan
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	  ctest --test-dir $(TSAN) --output-on-failure -j 2 -L concurrency

# libFuzzer targets (tests/fuzz), built with clang; `make fuzz` runs each for
# FUZZ_SECONDS, `make test` for 10 seconds each.
fuzz:
	@deploy/install-deps.sh fuzz
	tests/fuzz/run.sh $(FUZZ) $(FUZZ_SECONDS)

test-fuzz:
	@deploy/install-deps.sh fuzz
	tests/fuzz/run.sh $(FUZZ) 10

# Relay load (bench/run.sh) and CLI latency (bench/cli_latency.sh); both
# rewrite their section of docs/BENCHMARKS.md.
bench: deps
	@deploy/install-deps.sh bench
	bench/run.sh build-bench
	bench/cli_latency.sh build-bench

clean:
	rm -rf $(BUILD) $(ASAN) $(TSAN) $(FUZZ) build-bench
