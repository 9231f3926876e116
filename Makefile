# corio -- the README's commands. Each one installs what is missing first
# (scripts/setup: what building needs; `test` and `bench` add their own).
#   make run      set up, build, run the tour of examples
#   make test     set up with the test tools, build, run the whole suite
#                 (plain, install, ASan+UBSan, valgrind, TSan, the ucontext
#                 fallback, aarch64 under qemu)
#   make bench    set up the peers, build, run the benchmarks
#   make install  install the libraries, headers, corio.pc and the CMake
#                 package (PREFIX=/usr/local)
MAKEFLAGS += --no-print-directory
BUILD  ?= build
PREFIX ?= /usr/local
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo

.PHONY: all setup build run test bench install clean
all: build

setup:
	@scripts/setup

build: setup
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j2

# The tour starts a redis-server of its own (d2_redis_workers).
run:
	@scripts/setup run
	@$(MAKE) build
	@scripts/tour $(BUILD)

# The test tools are installed before the build (one apt-get at a time).
test:
	@scripts/setup test
	@$(MAKE) build
	@scripts/test $(BUILD)

bench:
	@scripts/setup bench
	@$(MAKE) build
	@scripts/bench $(BUILD)
	@scripts/bench-loop $(BUILD)
	@scripts/bench-net $(BUILD)
	@scripts/bench-thread $(BUILD)
	@scripts/bench-http $(BUILD)
	@scripts/bench-http-client $(BUILD)
	@scripts/bench-dist $(BUILD)
	@scripts/bench-dist-redis $(BUILD)
	@scripts/bench-ipc $(BUILD)
	@scripts/bench-proc $(BUILD)

install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf build build-*
