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

asan:
	@cmake -S . -B build/asan $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNC_SANITIZE=ON >/dev/null
	@cmake --build build/asan -j $(JOBS)

test: deps fetch release
	@cd build/release && ctest --output-on-failure -j $(JOBS)

test-asan: deps fetch asan
	@cd build/asan && ctest --output-on-failure -j $(JOBS) -LE slow

# Builds the libFuzzer targets (clang, ASan+UBSan) and runs each for FUZZ_SECONDS from a seed corpus.
FUZZ_SECONDS ?= 60
fuzz: deps
	@cmake -S . -B build/fuzz $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DNC_FUZZ=ON -DNC_TESTS=OFF -DNC_SANITIZE=ON >/dev/null
	@cmake --build build/fuzz -j $(JOBS) --target fuzz_gguf fuzz_tokenizer fuzz_chat_template fuzz_request fuzz_gateway fuzz_jobs
	@bash tools/fuzz-corpus.sh build/fuzz/corpus/gguf build/fuzz/corpus/tokenizer build/fuzz/corpus/chat
	@cd build/fuzz && bin/fuzz_gguf -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=4096 -print_final_stats=1 corpus/gguf >gguf.log 2>&1; rc=$$?; tail -40 gguf.log; exit $$rc
	@cd build/fuzz && bin/fuzz_tokenizer -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -rss_limit_mb=4096 -print_final_stats=1 corpus/tokenizer >tokenizer.log 2>&1; rc=$$?; tail -40 tokenizer.log; exit $$rc
	@cd build/fuzz && bin/fuzz_chat_template -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 -rss_limit_mb=4096 -dict=../../tests/fuzz/chat_template.dict -print_final_stats=1 corpus/chat >chat.log 2>&1; rc=$$?; tail -40 chat.log; exit $$rc
	@mkdir -p build/fuzz/corpus/request && cp -n tests/fuzz/seeds/request/*.json build/fuzz/corpus/request/
	@cd build/fuzz && bin/fuzz_request -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 corpus/request >request.log 2>&1; rc=$$?; tail -40 request.log; exit $$rc
	@mkdir -p build/fuzz/corpus/gateway && cp -n tests/fuzz/seeds/gateway/* build/fuzz/corpus/gateway/
	@cd build/fuzz && bin/fuzz_gateway -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 corpus/gateway >gateway.log 2>&1; rc=$$?; tail -40 gateway.log; exit $$rc
	@mkdir -p build/fuzz/corpus/jobs && cp -n tests/fuzz/seeds/jobs/* build/fuzz/corpus/jobs/
	@cd build/fuzz && bin/fuzz_jobs -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 corpus/jobs >jobs.log 2>&1; rc=$$?; tail -40 jobs.log; exit $$rc

# Serves a small random-weight demo model with the OpenAI-compatible API (tools/demo.sh).
run: deps release
	@bash tools/demo.sh

clean:
	rm -rf build
