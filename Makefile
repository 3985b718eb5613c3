# Haven: the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
BUILD   ?= build
ASAN    ?= build-asan
DATA    ?= .haven-data
PORT    ?= 8080
JOBS    ?= $(shell nproc)
CMAKE_FLAGS := -G Ninja -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
HAVEND  := $(BUILD)/server/havend

.PHONY: all deps web build build-asan run test test-release test-asan bench clean

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
	cmake -S . -B $(ASAN) $(CMAKE_FLAGS) -DCMAKE_BUILD_TYPE=Debug -DHAVEN_SANITIZE=ON

build-asan: deps $(ASAN)/build.ninja
	cmake --build $(ASAN) -j $(JOBS)

# Starts havend on 127.0.0.1:$(PORT) with its RocksDB directory $(DATA).
# On the first run it creates an organisation and prints invites to try.
run: build
	@if [ ! -d "$(DATA)" ]; then \
	  $(HAVEND) --data-dir "$(DATA)" admin create-org "Demo Service" && \
	  echo "Caseworker invite:" && $(HAVEND) --data-dir "$(DATA)" admin invite "Demo Service" --role caseworker && \
	  echo "Survivor invite:" && $(HAVEND) --data-dir "$(DATA)" admin invite "Demo Service" --role survivor; \
	fi
	exec $(HAVEND) --data-dir "$(DATA)" --port $(PORT) $(if $(wildcard clients/web/dist),--web-root clients/web/dist)

# Every test, in a release build and again under ASan+UBSan.
test: test-release test-asan

test-release: build
	ctest --test-dir $(BUILD) --output-on-failure -j 2

test-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN) --output-on-failure -j 2

# Relay load (bench/run.sh) and CLI latency (bench/cli_latency.sh); both
# rewrite their section of docs/BENCHMARKS.md.
bench: deps
	bench/run.sh build-bench
	bench/cli_latency.sh build-bench

clean:
	rm -rf $(BUILD) $(ASAN) build-bench
