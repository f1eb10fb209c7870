# neocloud front door. `make run` and `make test` install what is missing, build, and go.
.PHONY: all release debug asan test test-asan run deps fetch clean fuzz

JOBS ?= $(shell nproc)
CMAKE_GEN := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

all: release

deps:
	@bash tools/install-deps.sh

# Test data (real tokenizers) comes from llama.cpp's source in the node-llama-cpp npm package.
fetch:
	@bash tools/llama-cpp.sh --fetch >/dev/null
	@bash tools/sdk.sh >/dev/null

release:
	@cmake -S . -B build/release $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build/release -j $(JOBS)

debug:
	@cmake -S . -B build/debug $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build build/debug -j $(JOBS)

# Sanitizer builds use -O1 with line tables only (-g1): enough for ASan's reports, and they compile in
# less than half the time of -O2 -g.
SAN_FLAGS := -O1 -g1 -DNDEBUG
asan:
	@cmake -S . -B build/asan $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNC_SANITIZE=ON \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$(SAN_FLAGS)" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$(SAN_FLAGS)" >/dev/null
	@cmake --build build/asan -j $(JOBS)

test: deps fetch release
	@cd build/release && ctest --output-on-failure -j $(JOBS)

# The sanitizer run: unit tests, the hostile-input test and the fuzz seeds' regressions, not the slow
# end-to-end suites (labels e2e, levels and slow; `make test` runs those).
test-asan: deps fetch asan
	@cd build/asan && ctest --output-on-failure -j $(JOBS) -LE "slow|e2e|levels"

# Builds the libFuzzer targets (clang, ASan+UBSan), replays every seed, then fuzzes each target for
# FUZZ_SECONDS, FUZZ_JOBS targets at a time (tools/fuzz.sh).
FUZZ_SECONDS ?= 60
fuzz: deps fetch
	@FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(JOBS) bash tools/fuzz.sh

# Serves a small random-weight demo model with the OpenAI-compatible API (tools/demo.sh).
run: deps release
	@bash tools/demo.sh

clean:
	rm -rf build
