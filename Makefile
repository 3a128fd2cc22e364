# The two commands a user needs: `make demo` and `make test`. Each installs what is
# missing (scripts/setup), configures and builds with CMake, then runs.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= 2
CMAKE_ARGS ?=

.PHONY: all setup build demo test test-main test-slow test-sanitize bench clean

all: build

setup:
	@scripts/setup

build: setup
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_ARGS) >$(BUILD).configure.log 2>&1 || { cat $(BUILD).configure.log; exit 1; }
	@grep 'gvc: CUDA' $(BUILD).configure.log | sed 's/^-- //'
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@scripts/demo $(BUILD)

test: test-main test-sanitize

test-main: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900 -LE slow

# The long matrices (label slow), on demand: every ordered pair of ten checkpoint strategies.
test-slow: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 3600 -L slow

# The front end's unit and golden tests and a bounded libFuzzer run, under ASan/UBSan.
test-sanitize: setup
	@CC=clang cmake -S . -B $(ASAN_BUILD) -G Ninja -DGV_SANITIZE=ON -DGV_FUZZ=ON -DGV_ENABLE_CUDA=OFF \
	    -DGV_ENABLE_MPI=OFF >$(ASAN_BUILD).configure.log 2>&1 || { cat $(ASAN_BUILD).configure.log; exit 1; }
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS) -L asan --timeout 900

bench: build
	@scripts/bench $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(BUILD).configure.log $(ASAN_BUILD).configure.log
