# The suite's one entry point. `make demo` runs everything locally on an embedded AWS emulator;
# `make test` runs every test. Both install what they need (Python tools into .venv/, Rust targets).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
REQS_HASH := $(shell sha256sum requirements-tools.txt | cut -c1-16)
STAMP     := $(VENV)/.installed-$(REQS_HASH)
CONTRACT_VENV  := .venv-contract
CONTRACT_STAMP := $(CONTRACT_VENV)/.installed-$(shell sha256sum requirements-contract.txt | cut -c1-16)
BENCH_STAMP    := $(VENV)/.bench-$(shell sha256sum bench/requirements-bench.txt | cut -c1-16)
# sharp, a peer in the image benchmarks: the version pinned in bench/sharp/package-lock.json, installed
# into bench/sharp/node_modules (npm ships its libvips build as a platform package).
SHARP_STAMP    := bench/sharp/node_modules/.installed-$(shell sha256sum bench/sharp/package-lock.json | cut -c1-16)
# cargo-lambda finds zig (the arm64 linker) only through PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export AWS_DEFAULT_REGION ?= us-east-1

FUNCTIONS := image-compressor user-api order-processor order-settlement
FN        ?= user-api
EVENT     ?= events/$(FN)/get-user.json

.PHONY: help setup dashboard bench-tracing bench-corpus bench-photos bench-formats bench-cold build build-arm64 smoke-arm64 test unit-test integration-test lint template-lint ci-lint watch invoke \
        demo local-up local-down deploy-local bench bench-aws deploy fuzz chaos clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup: $(STAMP) $(CONTRACT_STAMP) ## Install the Python tools (.venv, .venv-contract) and the Rust toolchain/targets
	@rustup show active-toolchain >/dev/null
	@# libavif and libaom (the AVIF encoder) are built by cmake when image-compressor compiles, and
	@# libaom's x86 SIMD (like mozjpeg's) is assembled by nasm: its build stops without an assembler.
	@command -v cmake >/dev/null && command -v nasm >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends cmake nasm; } || \
	  { echo "setup: cmake and nasm are needed to build the AVIF encoder (libavif, libaom): install them, e.g. apt-get install cmake nasm"; exit 1; }

$(STAMP): requirements-tools.txt
	@echo "==> installing Python tools into $(VENV)/ (once; again only when requirements-tools.txt changes)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

# schemathesis lives in its own venv: it needs a newer `packaging` than checkov allows.
$(CONTRACT_STAMP): requirements-contract.txt
	@echo "==> installing schemathesis into $(CONTRACT_VENV)/ (once; again only when requirements-contract.txt changes)"
	@test -x $(CONTRACT_VENV)/bin/python || python3 -m venv $(CONTRACT_VENV)
	@$(CONTRACT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-contract.txt
	@rm -f $(CONTRACT_VENV)/.installed-*
	@touch $@

smoke-arm64: build-arm64 $(BENCH_STAMP) ## No instruction beyond Graviton2 in any bootstrap outside CPU-checked functions (ring, aws-lc, crc-fast, libunwind); each boots under qemu -cpu neoverse-n1; codecs on every format vs Pillow
	@command -v qemu-aarch64 >/dev/null && command -v aarch64-linux-gnu-objdump >/dev/null && test -d /usr/aarch64-linux-gnu || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user libc6-arm64-cross binutils-aarch64-linux-gnu; }
	$(PY) tools/arm64_smoke.py

build: ## Build every function for this machine (debug)
	cargo build --workspace

# Rust and the C codecs target Graviton2 (Neoverse N1), whatever the build machine: .cargo/config.toml.
# Linked with symbols so tools/arm64_baseline.py can tell ring's run-time dispatched functions from the
# rest (copies kept in target/lambda-symbols/), then stripped as the release profile strips.
build-arm64: setup ## Release arm64 bootstrap per function (cargo lambda + zig, for Neoverse N1); fails if one zips to 4 MB or more (image-compressor: its codecs)
	@rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
	@command -v aarch64-linux-gnu-strip >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils-aarch64-linux-gnu; }
	CARGO_PROFILE_RELEASE_STRIP=false cargo lambda build --release --arm64 $(addprefix -p ,$(FUNCTIONS))
	@mkdir -p target/lambda-symbols
	@for f in $(FUNCTIONS); do \
	  b=target/lambda/$$f/bootstrap; \
	  cp $$b target/lambda-symbols/$$f && aarch64-linux-gnu-strip $$b || exit 1; \
	  printf '%-18s %s\n' "$$f" "$$(file -b $$b | cut -d, -f1-2)"; \
	done
	$(PY) tools/package_size.py $(foreach f,$(FUNCTIONS),target/lambda/$(f)/bootstrap)

test: setup lint ## Every test: lint, unit, integration (moto), fuzz-input replay, chaos smoke, edge function (node), API contract, template checks, Python tools
	timeout 25m cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee target/test-output.txt
	node --test --test-reporter=spec functions/image-compressor/edge/
	timeout 10m $(PY) tools/api_contract.py
	timeout 5m $(PY) -m unittest discover -s tools/tests 2>&1 | tee target/python-test-output.txt
	@awk '/^test result:/ { for (i=1;i<=NF;i++) { if ($$(i)~/passed/) p+=$$(i-1); if ($$(i)~/failed/) f+=$$(i-1); if ($$(i)~/ignored/) s+=$$(i-1) } } \
	  /^Ran [0-9]+ tests? in / { p+=$$2 } \
	  END { printf "\ntests: %d passed, %d failed, %d skipped\n", p, f, s }' target/test-output.txt target/python-test-output.txt

lint: setup ## fmt check, clippy -D warnings, template lint, CI workflows and their deploy role
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	@$(MAKE) --no-print-directory template-lint
	@$(MAKE) --no-print-directory ci-lint

dashboard: ## Regenerate the operations dashboard in template.yaml from the metric catalogue (tests/src/dashboard.rs)
	UPDATE_DASHBOARD=1 cargo test --quiet -p integration-tests --test template the_dashboard_is_generated_from_the_metric_catalogue

template-lint: setup ## cfn-lint (with serverless rules) and checkov on template.yaml
	cfn-lint template.yaml
	checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download
	SAM_CLI_TELEMETRY=0 sam validate --lint --template template.yaml

ci-lint: setup ## actionlint on .github/workflows; cfn-lint and checkov on deploy/github-oidc.yaml
	actionlint -no-color
	cfn-lint deploy/github-oidc.yaml
	checkov -f deploy/github-oidc.yaml --framework cloudformation --compact --quiet --skip-download

watch: setup ## cargo lambda watch with the local stack's settings (.local/env)
	@test -f .local/env || { echo "no .local/env: run 'make local-up' first"; exit 1; }
	cargo lambda watch --env-file .local/env

invoke: setup ## Invoke a watched function: make invoke FN=user-api EVENT=events/user-api/get-user.json
	cargo lambda invoke $(FN) --data-file $(EVENT)

LOCAL_PORT ?= 4566
export LOCAL_PORT

local-up: setup ## Start moto on LOCAL_PORT (4566) and sam-deploy template.yaml into it (stand-in function code)
	$(PY) tools/local_stack.py up --port $(LOCAL_PORT) $(foreach p,$(PARAMS),--set $(p))

deploy-local: setup ## The user's `sam build` + `sam deploy` against the local emulator; PARAMS="JpegQuality=80" sets parameters
	@rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
	$(PY) tools/local_stack.py up --port $(LOCAL_PORT) --build $(foreach p,$(PARAMS),--set $(p))

local-down: ## Stop what local-up and the demo started
	@test -x $(PY) && $(PY) tools/local_stack.py down || true

demo: setup ## The whole suite end to end on the local emulator
	$(PY) tools/demo.py

$(BENCH_STAMP): bench/requirements-bench.txt $(SHARP_STAMP) | $(STAMP)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r bench/requirements-bench.txt
	@rm -f $(VENV)/.bench-*
	@touch $@

$(SHARP_STAMP): bench/sharp/package-lock.json
	@echo "==> installing sharp into bench/sharp/node_modules (once; again only when its lockfile changes)"
	@npm ci --prefix bench/sharp --no-audit --no-fund --loglevel=error
	@touch $@

# mozjpeg's x86 SIMD is assembled by nasm when mozjpeg-sys is built: without it the release build is
# correct but slower, and a release build made before nasm was installed is redone.
NASM = command -v nasm >/dev/null || \
  { { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nasm; } && cargo clean --release -q -p mozjpeg-sys; } || \
  echo "bench: nasm could not be installed: the JPEG codec is built without its x86 SIMD"

bench: setup $(BENCH_STAMP) ## Benchmarks side by side with their baselines; rewrites BENCHMARKS.md (BENCH_ARGS=--quick)
	@$(NASM)
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/corpus.py --baseline $(CORPUS_BASELINE) $(BENCH_ARGS)
	$(PY) bench/corpus.py --photos --baseline $(PHOTOS_BASELINE)
	$(PY) bench/tracing_overhead.py $(BENCH_ARGS)
	$(PY) bench/formats.py $(BENCH_ARGS)
	$(PY) bench/cold_start.py $(BENCH_ARGS)

bench-cold: setup $(BENCH_STAMP) ## Cold start of each function vs a hello-world lambda_runtime function, same profile, one run; a BENCHMARKS.md section
	$(PY) bench/cold_start.py $(BENCH_ARGS)

bench-aws: setup ## Cold and warm starts of the deployed stack from Lambda's REPORT lines (AWS credentials; ENV=prod, BENCH_AWS_ARGS="--cold 20 --warm 100")
	$(PY) bench/aws_bench.py --config-env $${ENV:-default} $(BENCH_AWS_ARGS)

bench-corpus: setup $(BENCH_STAMP) ## The image pipeline per class of upload (bench/corpus), each engine and CORPUS_BASELINE (a git rev) in one run
	@$(NASM)
	$(PY) bench/corpus.py --baseline $(CORPUS_BASELINE) $(BENCH_ARGS)

# The pipeline before trellis was chosen per variant.
CORPUS_BASELINE ?= ca04ae3

bench-photos: setup $(BENCH_STAMP) ## Quick: the corpus's JPEG photos (1.8-8.7 MP), one 800-px variant, per file vs Pillow and PHOTOS_BASELINE
	@$(NASM)
	$(PY) bench/corpus.py --photos --baseline $(PHOTOS_BASELINE)

# The encoder settings before trellis was weighed against the decoding work.
PHOTOS_BASELINE ?= ee02877

bench-formats: setup $(BENCH_STAMP) ## AVIF and WebP (FORMATS) vs Pillow's JPEG and sharp's three formats, and the cost per million uploads with and without them
	@$(NASM)
	$(PY) bench/formats.py $(BENCH_ARGS)

bench-tracing: setup $(BENCH_STAMP) ## What span export costs: cold start, latency, RSS vs TRACING_BASELINE (a git rev); a BENCHMARKS.md section
	$(PY) bench/tracing_overhead.py --baseline $(TRACING_BASELINE) $(BENCH_ARGS)

TRACING_BASELINE ?= 728f525

FUZZ_SECS    ?= 60
FUZZ_TARGETS ?= s3_event image_pipeline api_request order_message
CARGO_FUZZ   := .tools/bin/cargo-fuzz
# Each target runs under the deployed memory of the function whose input it takes (its MemorySize
# in template.yaml, MB): libFuzzer reports an input that takes the process's RSS, or one allocation,
# past it. ASan's quarantine of freed memory is kept small so it does not count as the code's.
FUZZ_FUNCTION_s3_event       := ImageCompressorFunction
FUZZ_FUNCTION_image_pipeline := ImageCompressorFunction
FUZZ_FUNCTION_api_request    := UserApiFunction
FUZZ_FUNCTION_order_message  := OrderProcessorFunction
rparen := )
memory_size_of = $(shell awk '/^  $(1):/ { f = 1; next } f && /^  [A-Za-z]/ { exit } f && $$1 == "MemorySize:" { print $$2; exit }' template.yaml)

$(CARGO_FUZZ):
	cargo install cargo-fuzz --version 0.13.2 --locked --root .tools

fuzz: $(CARGO_FUZZ) ## libFuzzer on each target for FUZZ_SECS s (nightly + cargo-fuzz installed on first use)
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@mkdir -p $(addprefix fuzz/corpus/,$(FUZZ_TARGETS) image_pipeline s3_event)
	@find functions/image-compressor/testdata -type f -size -64k ! -name '*.md' ! -name '*.py' -exec cp {} fuzz/corpus/image_pipeline/ \;
	@cp events/image-compressor/*.json fuzz/corpus/s3_event/
	@$(foreach g,$(FUZZ_TARGETS),test -n "$(call memory_size_of,$(FUZZ_FUNCTION_$(g)))" || { echo "fuzz: no MemorySize for $(g) in template.yaml"; exit 1; };)
	@for t in $(FUZZ_TARGETS); do \
	  case $$t in $(foreach g,$(FUZZ_TARGETS),$(g)$(rparen) mb=$(call memory_size_of,$(FUZZ_FUNCTION_$(g)));;) esac; \
	  echo "==> fuzzing $$t for $(FUZZ_SECS) s under $$mb MB"; \
	  AWS_LAMBDA_FUNCTION_MEMORY_SIZE=$$mb ASAN_OPTIONS=quarantine_size_mb=16 \
	  PATH="$(CURDIR)/.tools/bin:$$PATH" cargo +nightly fuzz run -O $$t fuzz/corpus/$$t fuzz/regressions/$$t -- \
	    -max_total_time=$(FUZZ_SECS) -rss_limit_mb=$$mb -malloc_limit_mb=$$mb -timeout=20 -print_final_stats=1 2>&1 \
	    | grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|.*panicked|Done )' || true; \
	  test -z "$$(ls fuzz/artifacts/$$t 2>/dev/null | grep -v '^slow-unit-')" || { echo "fuzz: $$t found a crash: fuzz/artifacts/$$t/"; exit 1; }; \
	  ls fuzz/artifacts/$$t 2>/dev/null | grep '^slow-unit-' | sed "s|^|fuzz: $$t: an input over 10 s (libFuzzer's slow unit, not a failure): fuzz/artifacts/$$t/|" || true; \
	done
	@echo "fuzz: $(words $(FUZZ_TARGETS)) targets, $(FUZZ_SECS) s each, no crash"

CHAOS_ORDERS  ?= 2000
CHAOS_WORKERS ?= 4
CHAOS_KILL_RATE ?= 0.01

chaos: setup ## Flash sale: order workers killed and restarted, then every order settled (CHAOS_ORDERS=2000 CHAOS_WORKERS=4)
	cargo run --quiet -p integration-tests --bin chaos -- \
	  --orders $(CHAOS_ORDERS) --workers $(CHAOS_WORKERS) --kill-rate $(CHAOS_KILL_RATE)

# The environment's parameter_overrides from samconfig.toml (a command-line override replaces them all).
SAM_OVERRIDES = $(PY) -c 'import sys, tomllib; print(tomllib.load(open("samconfig.toml", "rb"))[sys.argv[1]]["deploy"]["parameters"]["parameter_overrides"])'

deploy: setup ## sam build && sam deploy (needs AWS credentials); ENV=prod ALARM_EMAIL=ops@example.com for production
	@if [ "$${ENV:-default}" = prod ] && [ -z "$${ALARM_EMAIL:-}" ]; then \
	  echo "deploy: ENV=prod needs ALARM_EMAIL=<address> so that alarms reach someone (the template's ProdAlarmsReachSomeone rule refuses the stack without it)"; exit 2; fi
	@rustup target add aarch64-unknown-linux-gnu >/dev/null 2>&1 || true
	sam build
	sam deploy --config-env $${ENV:-default} \
	  $${ALARM_EMAIL:+--parameter-overrides "$$($(SAM_OVERRIDES) $${ENV:-default}) AlarmEmail=$$ALARM_EMAIL"}

clean: ## Remove build output and local state (keeps .venv)
	cargo clean
	rm -rf .local .aws-sam fuzz/target
