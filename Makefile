# fitscope — `make help` lists the targets. Everything runs from .venv/, created on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# EXTRAS=jax and/or torch add the other Keras backends (KERAS_BACKEND=jax|torch; TensorFlow stays)
EXTRAS ?=
comma := ,
DEPS_HASH := $(shell cat pyproject.toml constraints.txt 2>/dev/null | cksum | cut -d' ' -f1)
# without EXTRAS an install with extras counts too (later targets must not reinstall without them)
STAMP := $(or $(if $(EXTRAS),,$(firstword $(wildcard $(VENV)/.installed-$(DEPS_HASH)*))),$(VENV)/.installed-$(DEPS_HASH)$(if $(EXTRAS),-$(subst $(comma),-,$(EXTRAS))))

EXP ?= fashion
PORT ?= 5000
DASH_PORT ?= 8080
SERVE_PORT ?= 5001
# Optional knobs passed through to fitscope when set
ARGS = $(if $(TRIALS),--trials $(TRIALS)) $(if $(TIMEOUT),--timeout $(TIMEOUT)) \
       $(if $(SEED),--seed $(SEED)) $(if $(STUDY),--study $(STUDY)) \
       $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(if $(VERBOSE),--verbose) \
       $(if $(filter 0 false no,$(DETERMINISTIC)),--nondeterministic) \
       $(if $(or $(ENGINE),$(TUNER)),--engine $(or $(ENGINE),kerastuner)) $(if $(TUNER),--tuner $(TUNER)) \
       $(if $(WORKERS),--workers $(WORKERS)) $(if $(GPUS),--gpus $(GPUS)) \
       $(if $(WORKERS_PER_GPU),--workers-per-gpu $(WORKERS_PER_GPU))

.DEFAULT_GOAL := help
.PHONY: help install search compare rerun confirm predict serve list show ui report dashboard test test-fast lint data fashion-data bench bench-quick bench-scale soak

help: ## show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

install: $(STAMP) ## set up .venv with fitscope and its pinned dependencies (search and test do it on first use) [EXTRAS=jax,torch]

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,tuner,postgres,dashboard$(if $(EXTRAS),$(comma)$(EXTRAS))]"
	rm -f $(VENV)/.installed-* && touch $@

search: install data ## run or resume a study: make search EXP=iris [TRIALS=40 SEED=7 TIMEOUT=600 STUDY=name DETERMINISTIC=0 ENGINE=kerastuner TUNER=hyperband WORKERS=4 GPUS=0,1 WORKERS_PER_GPU=1]
	$(BIN)/fitscope search $(EXP) $(ARGS)

compare: install data ## Optuna vs KerasTuner on one spec and budget: make compare EXP=fashion BUDGET=600 [SEED=7 TUNER=random]
	$(BIN)/fitscope compare $(EXP) $(if $(BUDGET),--budget $(BUDGET)) $(if $(SEED),--seed $(SEED)) \
	  $(if $(TUNER),--tuner $(TUNER)) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(if $(VERBOSE),--verbose)

rerun: install ## make rerun RUN=<id>: retrain one trial from its MLflow run and compare the curves
	@test -n "$(RUN)" || { echo "usage: make rerun RUN=<mlflow run id of a trial>"; exit 2; }
	$(BIN)/fitscope rerun $(RUN) $(if $(DATA_DIR),--data-dir $(DATA_DIR))

confirm: install data ## retrain a study's top configurations with new seeds: make confirm EXP=iris [STUDY=name TOP=3 SEEDS=3 WORKERS=2]
	$(BIN)/fitscope confirm $(EXP) $(if $(STUDY),--study $(STUDY)) $(if $(TOP),--top $(TOP)) \
	  $(if $(SEEDS),--seeds $(SEEDS)) $(if $(WORKERS),--workers $(WORKERS)) \
	  $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(if $(VERBOSE),--verbose)

predict: install ## predict new raw data with the best model: make predict EXP=titanic INPUT=new.csv [OUTPUT=out.csv MODEL=models:/titanic/3]
	@test -n "$(INPUT)" || { echo "usage: make predict EXP=<experiment> INPUT=<csv, or .npy/IDX images> [OUTPUT=file]"; exit 2; }
	$(BIN)/fitscope predict $(EXP) --input $(INPUT) $(if $(OUTPUT),--output $(OUTPUT)) $(if $(MODEL),--model $(MODEL))

# MLflow starts uvicorn from PATH: the venv's bin goes first. The store is search's default
# unless MLFLOW_TRACKING_URI is set; the registry alias `best` follows every study's best trial.
serve: install ## serve the best model over HTTP on 127.0.0.1:$(SERVE_PORT): make serve EXP=titanic (POST /invocations)
	PATH="$(CURDIR)/$(BIN):$$PATH" MLFLOW_TRACKING_URI="$${MLFLOW_TRACKING_URI:-sqlite:///mlflow.db}" \
	  $(BIN)/mlflow models serve -m "models:/$(EXP)@best" --env-manager local --host 127.0.0.1 --port $(SERVE_PORT)

data: ## make Fashion-MNIST available when EXP=fashion (the tabular files ship in the package)
	@if [ "$(EXP)" = fashion ]; then $(MAKE) --no-print-directory fashion-data; fi

# Debian's dataset-fashion-mnist when root on Debian, else fitscope downloads the official files
# (checksummed) into the user cache on first use. `make test` needs it for the slow tests.
fashion-data:
	@if [ -z "$$FITSCOPE_DATA_DIR" ] && [ -z "$(DATA_DIR)" ] \
	   && [ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] \
	   && [ ! -e "$${FITSCOPE_CACHE_DIR:-$${XDG_CACHE_HOME:-$$HOME/.cache}/fitscope}/fashion-mnist/train-images-idx3-ubyte.gz" ] \
	   && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian's dataset-fashion-mnist (else fitscope downloads the files)"; \
	  (apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1)) \
	   || echo "apt-get could not install it; fitscope will download the official files"; \
	fi

list: install ## the experiments that ship
	@$(BIN)/fitscope list

show: install ## print an experiment's resolved spec: make show EXP=iris
	@$(BIN)/fitscope show $(EXP)

# only a HOST given on the make command line counts: some shells export HOST=<hostname>, and that
# must not silently open the UI (no authentication) to the network
UI_HOST = $(if $(filter command line,$(origin HOST)),$(HOST),127.0.0.1)

ui: install ## MLflow UI on http://127.0.0.1:$(PORT) over the store search writes; HOST=0.0.0.0 opens it to the network (warns: no auth)
	$(BIN)/fitscope ui --host $(UI_HOST) --port $(PORT)

report: install ## build reports/<exp>/<study>/report.html (also mid-study): make report EXP=fashion [STUDY=name]
	$(BIN)/fitscope report $(EXP) $(if $(STUDY),--study $(STUDY))

dashboard: install ## optuna-dashboard on http://127.0.0.1:$(DASH_PORT) over the Optuna storage search writes (every study)
	$(BIN)/fitscope dashboard --port $(DASH_PORT)

# Many tests wait on subprocesses, servers and PostgreSQL rather than compute: two test processes
# (files kept together, so module fixtures run once) keep both cores busy; three were slower
# (19m08s against 17m54s for 428 tests). TEST_JOBS=0 runs serially. The slowest tests are listed
# at the end of every run.
TEST_JOBS ?= 2
test: install fashion-data ## the whole test suite (data: the package's own files, Debian's Fashion-MNIST or its download)
	$(BIN)/python -m pytest -q --durations=15 $(if $(filter-out 0,$(TEST_JOBS)),-n $(TEST_JOBS) --dist loadfile)

test-fast: install fashion-data ## tests not marked slow
	$(BIN)/python -m pytest -q -m "not slow"

lint: install ## ruff, mypy and import-linter (the layers of docs/architecture.md)
	$(BIN)/ruff check fitscope experiments search tracking analysis reporting common tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Benchmarks read ../shared/data where the project's own machines keep a copy, else the same lookup
# as `make search` (FITSCOPE_DATA_DIR, the package's files, Debian's package, the cache).
BENCH_DATA = $(or $(FITSCOPE_DATA_DIR),$(wildcard $(abspath ../shared/data)))
BENCH_ENV = $(if $(BENCH_DATA),FITSCOPE_DATA_DIR=$(BENCH_DATA))

bench: install fashion-data ## benchmarks against the peers (item 1: 3 searchers x SEEDS=3 seeds x 350 s, about an hour; items 4-5 600 s a search; BUDGET= sets both) -> bench/results/, docs/benchmarks.md
	$(BENCH_ENV) $(BIN)/python -m bench.run $(if $(BUDGET),--budget $(BUDGET)) $(if $(SEEDS),--seeds $(SEEDS))

bench-quick: install fashion-data ## trial overhead, fraction of peak, start-up and memory (under 3 minutes)
	$(BENCH_ENV) $(BIN)/python -m bench.run --quick

bench-scale: install ## per-trial cost at study sizes 0/50/250/1000/4000, then 50 and 1000 side by side ROUNDS= times (SIZES=, TRIALS=, ROUNDS=, POSTGRES=1) -> bench/results/
	$(BIN)/python -m bench.scale $(if $(SIZES),--sizes $(SIZES)) $(if $(TRIALS),--trials $(TRIALS)) $(if $(ROUNDS),--rounds $(ROUNDS)) $(if $(POSTGRES),--postgres)

soak: install fashion-data ## load test: 4 workers x 25 short trials on PostgreSQL + an MLflow server; counts lost/duplicated/RUNNING (several minutes)
	$(BENCH_ENV) $(BIN)/python -m bench.soak $(if $(WORKERS),--workers $(WORKERS)) $(if $(TRIALS),--trials $(TRIALS))
