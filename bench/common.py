"""Inputs shared by the benchmarks."""

from __future__ import annotations

import hashlib
import os
import random
import string
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SST2_TRAIN = REPO.parent / "shared" / "data" / "sst2" / "train.tsv"  # GLUE SST-2: header "sentence<TAB>label"


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
    from distill.common.text_inputs import Columns, read_text_table

    return read_text_table(path, Columns(text_a="sentence")).table.column("text_a").to_pylist()


def alphabetic_words(texts: list[str], spacy_model: str) -> list[str]:
    """Distinct lower-cased alphabetic tokens, split as the stage splits them (spaCy tokenizer)."""
    from augment.words import load_spacy, split_texts

    words = split_texts(load_spacy(spacy_model, with_tags=False), texts, None, 256)
    return sorted({tok.lower() for w in words for tok in w.tokens if tok.isalpha()})


def _filler_words(count: int, taken: set[str], rng: random.Random) -> list[str]:
    letters = string.ascii_lowercase
    out: set[str] = set()
    while len(out) < count:
        word = "".join(rng.choices(letters, k=rng.randint(4, 10)))
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
    digest = hashlib.sha1("\n".join(words).encode("utf-8")).hexdigest()[:10]
    path = Path(directory) / f"glove-{size}x{dim}-seed{seed}-{digest}.txt"
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


def machine_line() -> str:
    """The CPU, its threads and the flags that decide bf16 speed, for a results table's footer."""
    import platform

    import torch

    cpuinfo = Path("/proc/cpuinfo")
    flags = sorted({f for f in ("avx512_bf16", "amx_bf16", "avx512f", "avx2")
                    if f in cpuinfo.read_text()}) if cpuinfo.exists() else []
    return (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
            f"CPU flags {' '.join(flags) or 'none of avx2/avx512'}, torch {torch.__version__}")


def directory_bytes(path: Path) -> int:
    """Bytes of every file under `path` (a cache's size on disk)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
