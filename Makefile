# Two entry points (see README): `make demo` runs the main job on the bundled sample,
# `make test` runs the test suite. Both create .venv and install the project if needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch 2.13.0 is a local CPU wheel on the project's machines; anything else pulls CUDA builds.
TORCH ?= torch==2.13.0
DEMO_OUT ?= out/demo

.PHONY: demo test bench install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m augment pipelines/samples/sentiment.csv $(DEMO_OUT)/sentiment --recipe pipelines/recipes/tang.yaml --text-a sentence
	$(PY) -m augment pipelines/samples/paraphrase.jsonl $(DEMO_OUT)/paraphrase --recipe pipelines/recipes/tang.yaml \
		--text-a sentence1 --text-b sentence2
	$(PY) -m augment.show $(DEMO_OUT)/sentiment $(DEMO_OUT)/paraphrase

test: $(VENV)/.installed
	$(PY) -m pytest -q --durations=10

bench: $(VENV)/.installed
	$(PY) bench/augment.py

clean:
	rm -rf $(VENV) out .pytest_cache
