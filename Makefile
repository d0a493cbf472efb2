# dlbench: `make help` lists the targets. The first target you run creates .venv and
# installs dlbench into it, so a fresh clone needs nothing but python3 (>= 3.10) and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help install system-deps test test-slow test-slurm test-gpu lint bench-optimizers bench-optimizers-digits bench-mnist1d bench-pooling bench-double-descent bench-initializers bench-normalization bench-normalization-mnist1d bench-activations bench-activations-mnist1d bench-losses bench-augmentation bench-batch-lr bench-regularization bench-grid bench-optimizer-benchmark bench-my-optimizer bench-ssl bench-claims bench-all bench-overhead bench-stacking bench-workers bench-memory bench-startup bench-gpu bench-perf report ui dashboard clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-28s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP) ## create .venv and install dlbench with its dev tools (once)

system-deps: ## the Debian packages the tests need (PostgreSQL, Chromium), installed if missing
	@scripts/system-deps

test: $(STAMP) system-deps ## run the default test suite (installs what it needs; no slow or gpu tests)
	$(BIN)/pytest -m "not slow and not gpu" -q

test-slow: $(STAMP) system-deps ## run the slow tests too (every study's smoke tier, the Slurm cluster, end to end)
	@scripts/system-deps slurm
	$(BIN)/pytest -m "not gpu" -q

test-slurm: $(STAMP) system-deps ## dlbench submit on a real one-node Slurm cluster on 127.0.0.1: a cancelled and a preempted job (installs Slurm and munge; ~5 min)
	@scripts/system-deps slurm
	$(BIN)/pytest tests/harness/test_submit.py -q

test-gpu: $(STAMP) ## the GPU tests (GPU-tier study smoke runs; they download the datasets)
	$(BIN)/pytest -m gpu -q

lint: $(STAMP) ## ruff over src, tests and benchmarks
	$(BIN)/ruff check src tests benchmarks

bench-optimizers: $(STAMP) ## the optimizer study on MNIST-1D (generated, no download), 7 optimizers x 10 seeds, and its report
	$(BIN)/dlbench run optimizers && $(BIN)/dlbench report optimizers

bench-optimizers-digits: $(STAMP) ## the optimizer study on the embedded 8x8 digits (every optimizer reaches 96-97%)
	$(BIN)/dlbench run optimizers_digits && $(BIN)/dlbench report optimizers_digits

bench-mnist1d: $(STAMP) ## MNIST-1D's table reproduced: 4 models x shuffled or not, 5 seeds, references shown (~11 min)
	$(BIN)/dlbench run mnist1d_baselines --workers 2 && $(BIN)/dlbench report mnist1d_baselines

bench-pooling: $(STAMP) ## MNIST-1D's pooling benchmark reproduced: no pool, stride, max, avg x 1k/2k/5k signals, 3 seeds (~6 min)
	$(BIN)/dlbench run mnist1d_pooling --workers 2 && $(BIN)/dlbench report mnist1d_pooling

bench-double-descent: $(STAMP) ## MNIST-1D's deep double descent reproduced: MLP width 2-300, 13.5% wrong labels, 500 epochs, 3 seeds (~8 min)
	$(BIN)/dlbench run mnist1d_double_descent --workers 2 && $(BIN)/dlbench report mnist1d_double_descent

bench-initializers: $(STAMP) ## initializer x activation (ReLU, tanh) on a deep digits MLP
	$(BIN)/dlbench run initializers && $(BIN)/dlbench report initializers

bench-normalization: $(STAMP) ## normalization layer x batch size (8, 64) on a deep digits MLP
	$(BIN)/dlbench run normalization && $(BIN)/dlbench report normalization

bench-activations: $(STAMP) ## activation functions (identity, step, sigmoid, ..., swiglu) on a deep MLP
	$(BIN)/dlbench run activations && $(BIN)/dlbench report activations

bench-normalization-mnist1d: $(STAMP) ## the normalization study on MNIST-1D, where its arms separate (2 tie with the best, not 7)
	$(BIN)/dlbench run normalization_mnist1d && $(BIN)/dlbench report normalization_mnist1d

bench-activations-mnist1d: $(STAMP) ## the activations study on MNIST-1D, where its arms separate (3 tie with the best, not 8)
	$(BIN)/dlbench run activations_mnist1d && $(BIN)/dlbench report activations_mnist1d

bench-losses: $(STAMP) ## the losses that apply to ten-class labels (cross_entropy, nll, kl_div)
	$(BIN)/dlbench run losses && $(BIN)/dlbench report losses

bench-augmentation: $(STAMP) ## data augmentations on the digits CNN
	$(BIN)/dlbench run augmentation && $(BIN)/dlbench report augmentation

bench-batch-lr: $(STAMP) ## run the batch size x LR scaling study (none, linear, linear+warmup)
	$(BIN)/dlbench run batch_lr_scaling && $(BIN)/dlbench report batch_lr_scaling

bench-regularization: $(STAMP) ## regularizers on a wide MLP trained on 200 digits (it overfits)
	$(BIN)/dlbench run regularization && $(BIN)/dlbench report regularization

bench-optimizer-benchmark: $(STAMP) ## 7 optimizers tuned per problem (8 lr trials) on 4 embedded problems, 3 seeds: profiles, time to target, sensitivity
	$(BIN)/dlbench run optimizer_benchmark --workers 2 && $(BIN)/dlbench report optimizer_benchmark

bench-my-optimizer: $(STAMP) ## the optimizer benchmark with yours added: PLUGIN=my_optim.py (its optimizers join the seven)
	@test -n "$(PLUGIN)" || { echo "make bench-my-optimizer: give PLUGIN=path/to/my_optim.py (README: Benchmark your own optimizer)" >&2; exit 2; }
	@names="$$($(BIN)/python -m dlbench.plugins optimizer '$(abspath $(PLUGIN))')" || exit 2; \
	test -n "$$names" || { echo "make bench-my-optimizer: $(PLUGIN) registers no optimizer" >&2; exit 2; }; \
	sets=""; for name in $$names; do sets="$$sets --set grid.optimizer+=$$name"; done; \
	echo "dlbench run optimizer_benchmark $(ARGS) with $$names"; \
	$(BIN)/dlbench run optimizer_benchmark --workers 2 $(ARGS) --set 'plugins+=[$(abspath $(PLUGIN))]' $$sets && \
	$(BIN)/dlbench report optimizer_benchmark$(if $(findstring --smoke,$(ARGS)),_smoke)

bench-grid: $(STAMP) ## the headline grid: optimizer x init x norm x batch/LR scaling (~1 min)
	$(BIN)/dlbench run grid && $(BIN)/dlbench report grid

bench-ssl: $(STAMP) ## pre-train encoders (digits: context prediction, SimCLR; MNIST-1D: SimCLR), then probe / fine-tune them on few to all labels
	$(BIN)/dlbench run ssl_pretext && $(BIN)/dlbench run ssl && $(BIN)/dlbench report ssl_pretext ssl
	$(BIN)/dlbench run ssl_pretext_mnist1d --workers 2 && $(BIN)/dlbench run ssl_mnist1d --workers 2
	$(BIN)/dlbench report ssl_pretext_mnist1d ssl_mnist1d

bench-claims: $(STAMP) ## every claim study (studies/claims/) and the verdicts page reports/claims/ (~18 min)
	$(BIN)/dlbench run ssl_pretext_mnist1d --workers 2  # the encoders claim 15 transfers
	for study in studies/claims/*.yaml; do $(BIN)/dlbench run $$study --workers 2 || exit 1; done
	$(BIN)/dlbench report --claims

bench-all: bench-optimizers bench-optimizers-digits bench-mnist1d bench-pooling bench-double-descent bench-initializers bench-normalization bench-normalization-mnist1d bench-activations bench-activations-mnist1d bench-losses bench-augmentation bench-batch-lr bench-regularization bench-grid bench-optimizer-benchmark bench-ssl bench-claims ## every study and claim on embedded or generated data (~80 min on 2 cores)

bench-overhead: $(STAMP) ## time one harness cell against a plain PyTorch loop: MNIST-1D MLP, digits MLP and CNN (RESULTS.md)
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/overhead.py --study optimizers_digits
	$(BIN)/python benchmarks/overhead.py --study augmentation --arm none

bench-stacking: $(STAMP) ## cells/min: plain loop vs dlbench one at a time vs stacked, MNIST-1D MLP and CNN
	$(BIN)/python benchmarks/stacking.py
	$(BIN)/python benchmarks/stacking.py --problem cnn --seeds 3 --repeats 1

bench-workers: $(STAMP) ## cells/min of the optimizer smoke study with 1 and 2 CPU workers (RESULTS.md)
	$(BIN)/python benchmarks/workers.py

bench-memory: $(STAMP) ## one worker's RSS after 5 cells against after 100 (no growth beyond 10%)
	$(BIN)/python benchmarks/memory.py

bench-startup: $(STAMP) ## seconds for `dlbench --help` (< 1 s), `validate` of one study (< 2 s), of every study (< 3 s), of a typo (< 2 s)
	$(BIN)/python benchmarks/startup.py

bench-gpu: $(STAMP) ## the GPU check: cells/min by model, K, bf16, --compile, --per-device, utilisation (benchmarks/gpu_check.sh; --dry-run on a CPU)
	benchmarks/gpu_check.sh $(if $(shell command -v nvidia-smi),,--dry-run)

bench-perf: bench-startup bench-overhead bench-stacking bench-memory bench-workers ## every performance benchmark, one after another (~15 min)

report: $(STAMP) ## render the report of every study that has runs (reports/<study>/)
	$(BIN)/dlbench report --all

ui: $(STAMP) ## the MLflow UI on 127.0.0.1:5000 for this folder's runs (STUDY=name: its comparison)
	$(BIN)/dlbench ui $(STUDY)

# Absolute: a journal lock links to this path, and only an absolute link is freed by Optuna.
STORAGE ?= $(abspath runs/$(STUDY)/optuna.journal)
dashboard: $(STAMP) ## optuna-dashboard on 127.0.0.1:8080 over a study's Optuna storage (STUDY=name, or STORAGE=url)
	@[ -n "$(STUDY)" ] || [ "$(origin STORAGE)" != file ] || { echo "make dashboard: name the study: make dashboard STUDY=optimizers" >&2; exit 2; }
	$(BIN)/optuna-dashboard --host 127.0.0.1 --port 8080 $(STORAGE)

clean: ## remove the virtual environment and caches (keeps runs, mlflow.db and reports)
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
