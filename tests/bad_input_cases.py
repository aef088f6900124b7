"""Bad inputs, configs and teachers a hostile but fair user tries, and what each must produce.

`tests/test_bad_input.py` runs every case through the real command-line entry points; this file is
also the source of the README's "Bad input" table: `python tests/bad_input_cases.py` prints it.
Each case names what the user does, the entry point, its arguments (built from the `Env` of test
assets), the exit code, a pattern the one-line `error:` must match (naming the key, file or row),
and, where a rerun belongs to the case, the corrected command that must then succeed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PIPELINE, TRAIN, EVALUATE = "augment_and_label.py", "train_student.py", "evaluate.py"


@dataclass
class Env:
    """Paths of the assets the cases use (built by the test's fixtures)."""

    tmp: Path
    data: Path  # 12 good sentences labelled 0/1
    teacher: Path  # 2-class tiny teacher
    teachers: dict[str, Path] = field(default_factory=dict)  # other teachers, by name
    files: dict[str, Path] = field(default_factory=dict)  # other inputs, by name
    cache: Path | None = None  # a finished cache of `data` by `teacher`

    @property
    def out(self) -> Path:
        """The pipeline's --output."""
        return self.tmp / "out"

    @property
    def run(self) -> Path:
        """The trainer's --out."""
        return self.tmp / "run"


def pipeline(env: Env, *extra: str, data: Path | None = None, teacher: Path | None = None) -> list[str]:
    return ["--input", str(data or env.data), "--output", str(env.out), "--text-a", "sentence",
            "--teacher", str(teacher or env.teacher), "--set", "augment.rules=[mask]", "--set", "augment.tang.n_iter=2",
            "--set", "augment.rows_per_shard=6", *extra]


def train(env: Env, *extra: str, dev: Path | None = None, cache: Path | None = None) -> list[str]:
    args = ["--recipe", "pipelines/configs/students/tang_bilstm.yaml", "--cache", str(cache or env.cache),
            "--out", str(env.run), "--set", "max_steps=2", "--set", "student.hidden_size=8", "--set", "student.mlp_size=8"]
    return args + (["--eval", str(dev), "--text-a", "sentence"] if dev else []) + list(extra)


@dataclass
class Case:
    id: str
    user: str  # what the user does (README)
    cli: str
    args: Callable[[Env], list[str]]
    exit: int
    message: str  # regex the stderr line must match
    now: str  # what happens now (README)
    rerun: Callable[[Env], list[str]] | None = None  # the corrected command (same entry point), which must succeed
    then: tuple[str, Callable[[Env], list[str]]] | None = None  # a next command (entry point, args) that must succeed
    output: str | None = None  # a pattern the output, report or log must hold
    interrupt: bool = False  # send SIGINT to the running command instead of letting it finish
    check: Callable[[Env], bool] | None = None  # a further check on what the command left
    prepare: Callable[[Env], None] | None = None  # what the user left behind before the command
    repair: Callable[[Env], None] | None = None  # what the user fixes before the rerun


def config(env: Env, name: str) -> list[str]:
    """The pipeline with `--config` (a YAML file from `env.files`) and no other settings."""
    return ["--config", str(env.files[name]), "--input", str(env.data), "--output", str(env.out),
            "--teacher", str(env.teacher)]


def evaluate(env: Env, model: Path) -> list[str]:
    return [str(model), "--data", str(env.data), "--text-a", "sentence"]


def finished_run(env: Env) -> None:
    """The finished pipeline output of `pipeline(env)` (a copy of the assets' one)."""
    shutil.copytree(env.cache, env.out)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def cache_manifest(root: Path) -> Path:
    return next(root.glob("teacher/*/_manifest.json"))


def held_lock(env: Env) -> None:
    """A trainer already writing to --out: this live process holds its lock."""
    env.run.mkdir(parents=True)
    (env.run / "_lock").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid()}))


def rejects(env: Env) -> str:
    """The augmented output's reject reasons, one a line (for `output` patterns)."""
    path = env.out / "augmented" / "_rejects.jsonl"
    return path.read_text(encoding="utf-8") if path.exists() else ""


CASES: list[Case] = [
    # -- configs: every value is checked before any work --------------------------------------
    Case("n-iter-abc", "`--set augment.tang.n_iter=abc`", PIPELINE,
         lambda e: pipeline(e, "--set", "augment.tang.n_iter=abc"), 2, r"^augment\.tang\.n_iter: 'abc' is not an integer",
         "one line naming key and value, before Ray starts"),
    Case("n-iter-fraction", "`--set augment.tang.n_iter=2.5`", PIPELINE,
         lambda e: pipeline(e, "--set", "augment.tang.n_iter=2.5"), 2, r"^augment\.tang\.n_iter: 2\.5 is not an integer",
         "one line (no silent rounding)"),
    Case("n-iter-negative", "`--set augment.tang.n_iter=-5`", PIPELINE,
         lambda e: pipeline(e, "--set", "augment.tang.n_iter=-5"), 2, r"^augment\.tang\.n_iter: -5 must be >= 1",
         "one line (was: exit 0 with no augmentations)"),
    Case("p-negative", "`--set augment.rules.mask.p=-1`", PIPELINE,
         lambda e: pipeline(e, "--set", "augment.rules.mask.p=-1"), 2, r"^augment\.rules\.mask\.p: -1 must be >= 0",
         "one line"),
    Case("p-above-one", "`--set augment.rules.mask.p=2`", PIPELINE,
         lambda e: pipeline(e, "--set", "augment.rules.mask.p=2"), 2, r"^augment\.rules\.mask\.p: 2 must be <= 1",
         "one line (was: every word masked, exit 0)"),
    Case("yaml-syntax", "YAML syntax error in `--config`", PIPELINE, lambda e: config(e, "bad-syntax.yaml"), 2,
         r"bad-syntax\.yaml, line \d+, column \d+: invalid YAML", "one line naming file and line"),
    Case("yaml-python-tag", "`!!python/object/apply` tag in `--config`", PIPELINE, lambda e: config(e, "python-tag.yaml"), 2,
         r"python-tag\.yaml, line 1, column \d+: invalid YAML", "refused safely, one line; nothing is executed"),
    Case("max-steps-abc", "trainer `--set max_steps=abc`", TRAIN, lambda e: train(e, "--set", "max_steps=abc"), 2,
         r"^max_steps: 'abc' is not an integer", "one line, before the cache is opened or --out written"),
    Case("epochs-abc", "trainer `--set epochs=abc`", TRAIN, lambda e: train(e, "--set", "epochs=abc"), 2,
         r"^epochs: 'abc' is not a number", "one line"),
    Case("batch-size-zero", "trainer `--set batch_size=0`", TRAIN, lambda e: train(e, "--set", "batch_size=0"), 2,
         r"^batch_size: 0 must be >= 1", "one line (was: ZeroDivisionError)"),
    Case("learning-rate-negative", "trainer `--set learning_rate=-1`", TRAIN,
         lambda e: train(e, "--set", "learning_rate=-1"), 2, r"^learning_rate: -1 must be > 0", "one line"),
    Case("recipe-python-tag", "`!!python/object` tag in a student recipe", TRAIN,
         lambda e: ["--recipe", str(e.files["student-tag.yaml"]), "--cache", str(e.cache), "--out", str(e.run)], 2,
         r"student-tag\.yaml, line 1, column \d+: invalid YAML", "refused safely, one line"),
    # -- input files ------------------------------------------------------------------------------
    Case("long-field", "CSV field over 128 KiB", PIPELINE, lambda e: pipeline(e, data=e.files["long-field"]), 0, "",
         "that row is a `max_chars` reject; every other row is augmented and labelled",
         output=r"rows in\s+12 read, 1 rejected", check=lambda e: "has 200000 characters (max_chars=10000)" in rejects(e)),
    Case("unterminated-quote", "unterminated quote in a CSV", PIPELINE,
         lambda e: pipeline(e, data=e.files["unterminated-quote"]), 0, "",
         "one reject naming the rows it swallowed; the rows after it are read on their own",
         output=r"rows in\s+12 read, 1 rejected",
         check=lambda e: "unterminated quote starting at row 3 swallowed rows 3-" in rejects(e)),
    Case("binary-file", "binary file renamed `.csv`", PIPELINE, lambda e: pipeline(e, data=e.files["binary"]), 2,
         r"binary\.csv: not a text file \(binary content at byte \d+\)", "one line without its bytes"),
    Case("embedded-newline", "embedded newline inside a quoted field", PIPELINE,
         lambda e: pipeline(e, data=e.files["newline"]), 0, "",
         "original rows keep it byte for byte, augmented rows keep the whitespace between words",
         check=lambda e: any("\n" in t for t in augmented_texts(e))),
    # -- teachers and labels ----------------------------------------------------------------------
    Case("no-weights", "teacher directory with config and tokenizer but no weights", PIPELINE,
         lambda e: pipeline(e, teacher=e.teachers["no-weights"]), 2, r"no-weights: no weights \(model.safetensors",
         "one line naming the directory, before augmentation"),
    Case("config-only", "teacher directory with only `config.json`", PIPELINE,
         lambda e: pipeline(e, teacher=e.teachers["config-only"]), 2, r"config-only: no weights",
         "one line: no weights (not a misleading vocabulary message)"),
    Case("no-tokenizer", "teacher directory with config and weights but no tokenizer", PIPELINE,
         lambda e: pipeline(e, teacher=e.teachers["no-tokenizer"]), 2, r"no-tokenizer: no tokenizer files",
         "one line naming the directory and --tokenizer"),
    Case("pickle-bin", "teacher weights as a pickle `.bin` that holds more than tensors", PIPELINE,
         lambda e: pipeline(e, teacher=e.teachers["pickle-bin"]), 2,
         r"pytorch_model.bin: cannot be read without unpickling arbitrary objects",
         "refused in one line by every stage (nothing is unpickled)"),
    Case("labels-outside", "2-class teacher on data labelled 0/1/2", PIPELINE,
         lambda e: pipeline(e, data=e.files["labels-012"]), 2,
         r"labels-012.csv: row 3: label 2 is outside the teacher's 2 classes",
         "one line naming file, row and label, before augmentation; the corrected rerun succeeds",
         rerun=lambda e: pipeline(e, data=e.files["labels-012"], teacher=e.teachers["three-class"])),
    Case("labels-unknown-names", "string labels the teacher's `label2id` lacks", PIPELINE,
         lambda e: pipeline(e, data=e.files["labels-posneg"]), 2,
         r"labels-posneg.csv: row 1: label 'neg' is not one of the teacher's labels",
         "one line naming file, row, label and the teacher's label names",
         rerun=lambda e: pipeline(e, data=e.files["labels-posneg"], teacher=e.teachers["named"])),
    Case("labels-subset", "3-class teacher on data labelled 0/1", PIPELINE,
         lambda e: pipeline(e, teacher=e.teachers["three-class"]), 0, "",
         "accepted with a one-line warning (uses 2 of the teacher's 3 classes)",
         output=r"uses 2 of the teacher's 3 classes"),
    Case("bin-teacher", "teacher saved as a `pytorch_model.bin` state dict", PIPELINE,
         lambda e: pipeline(e, teacher=e.teachers["bin"]), 0, "",
         "labelling and training (which reads its embeddings, weights_only) both accept it",
         then=(TRAIN, lambda e: train(e, "--set", "student.vocabulary=full", "--teacher", str(e.teachers["bin"]),
                                      cache=e.out))),
    Case("fp16-on-cpu", "`label.precision: float16` (or bfloat16 on a CPU without AVX512-BF16/AMX)", PIPELINE,
         lambda e: pipeline(e, "--set", "label.precision=float16"), 0, "",
         "a one-line warning naming the cost (emulated, ~10x slower); `auto` is the default everywhere",
         output=r"precision float16 on a CPU is emulated"),
    Case("ctrl-c", "Ctrl-C during a run", PIPELINE, lambda e: pipeline(e), 130, r"^interrupted; rerun the same command",
         "one line and exit 130; the rerun resumes", rerun=lambda e: pipeline(e), interrupt=True),
    Case("wrong-column", "a run that failed validation (wrong `--text-a`), then the corrected rerun", PIPELINE,
         lambda e: pipeline(e, "--text-a", "sentense"), 2, r"no column 'sentense' in header",
         "one line; nothing is written, so the corrected rerun succeeds"),
    Case("teacher-no-head", "fine-tuned teacher whose `classifier.*` weights were removed", PIPELINE,
         lambda e: pipeline(e, teacher=e.teachers["no-head"]), 2, r"no-head: the weights lack classifier\.bias, "
         r"classifier\.weight", "one line naming the missing tensors, before augmentation (was: exit 0 and a cache of "
         "random predictions)"),
    Case("evaluate-no-head", "`evaluate.py` on that teacher", EVALUATE, lambda e: evaluate(e, e.teachers["no-head"]), 2,
         r"no-head: the weights lack classifier\.bias", "one line (was: scored with a random head)",
         rerun=lambda e: evaluate(e, e.teacher)),
    Case("recompute-no-qk", "`label.attention: recompute` with a teacher lacking query/key weights", PIPELINE,
         lambda e: pipeline(e, "--features", "attention", "--set", "label.attention=recompute",
                            teacher=e.teachers["no-qk"]), 2, r"no-qk: the weights lack .*attention\.self\.key",
         "one line before any work (was: after every shard was labelled)"),
    Case("max-length-positions", "`label.max_length` above the teacher's position embeddings", PIPELINE,
         lambda e: pipeline(e, "--set", "label.max_length=4096"), 2,
         r"^label\.max_length: 4096 is more than the teacher's 256 position embeddings",
         "one line before any work (was: a Ray traceback mid-labelling)"),
    Case("dead-address", "`--address` where no Ray cluster runs", PIPELINE,
         lambda e: pipeline(e, "--address", "127.0.0.1:1"), 2, r"^address: no Ray cluster answers at 127\.0\.0\.1:1",
         "one line within 10 s (was: retries for minutes)"),
    Case("ray-client-address", "`--address ray://host:10001` (Ray Client)", PIPELINE,
         lambda e: pipeline(e, "--address", "ray://127.0.0.1:10001"), 2, r"Ray Client \(ray://\) needs ray\[client\]",
         "one line: use `auto` or HOST:PORT from a cluster node (was: a traceback)"),
    Case("augmented-manifest-truncated", "truncated `augmented/_manifest.json`", PIPELINE, lambda e: pipeline(e), 2,
         r"augmented: its manifest or progress file is damaged.*pass --overwrite",
         "one line naming it (was: a JSONDecodeError traceback on every rerun); `--overwrite` redoes the stage",
         prepare=lambda e: (finished_run(e), truncate(e.out / "augmented" / "_manifest.json")),
         rerun=lambda e: pipeline(e, "--overwrite")),
    Case("cache-manifest-truncated", "truncated teacher cache `_manifest.json`, then the pipeline again", PIPELINE,
         lambda e: pipeline(e), 0, "", "a one-line warning; the cache is redone from its committed shards",
         prepare=lambda e: (finished_run(e), truncate(cache_manifest(e.out))), output=r"_manifest\.json is damaged",
         then=(TRAIN, lambda e: train(e, cache=e.out))),
    Case("train-cache-truncated", "trainer on a cache whose `_manifest.json` is truncated", TRAIN,
         lambda e: train(e, cache=e.out), 2, r"_manifest\.json is damaged .*rerun the labelling command",
         "one line naming it and what to do", prepare=lambda e: (finished_run(e), truncate(cache_manifest(e.out))),
         rerun=lambda e: train(e)),
    Case("two-trainers", "a second `train_student.py` on the `--out` of a running one", TRAIN, lambda e: train(e), 2,
         r"run is locked by .*/\d+ \(another run is writing there", "one line naming the holder (was: both wrote)",
         prepare=held_lock, repair=lambda e: (e.run / "_lock").unlink(), rerun=lambda e: train(e)),
    Case("workers-beyond-cluster", "trainer `--workers 3` on a 2-CPU Ray", TRAIN, lambda e: train(e, "--workers", "3"),
         2, r"^workers: 3 workers need 3 CPU and 0 GPU; the Ray cluster has 2 CPU",
         "one line before anything is written (was: waited forever)", rerun=lambda e: train(e)),
    Case("out-is-file", "trainer `--out` that is an existing file", TRAIN, lambda e: train(e), 2,
         r"run is a file, not a directory", "one line; the file is untouched",
         prepare=lambda e: e.run.write_text("keep me"), check=lambda e: e.run.read_text() == "keep me",
         repair=lambda e: e.run.unlink(), rerun=lambda e: train(e)),
    Case("out-dangling-link", "pipeline `--output` that is a symbolic link to nothing", PIPELINE, lambda e: pipeline(e), 2,
         r"out is a symbolic link to .*which does not exist", "one line",
         prepare=lambda e: e.out.symlink_to(e.tmp / "missing")),
    # -- dev files ------------------------------------------------------------------------------
    Case("eval-labels-outside", "eval file with label 2 (2-class teacher)", TRAIN,
         lambda e: train(e, dev=e.files["eval-012"]), 2, r"eval-012.csv: row 2: label 2 is outside",
         "one line naming file, row and label; no run directory is claimed",
         rerun=lambda e: train(e, dev=e.data)),
    Case("eval-negative", "eval file with label -1", TRAIN,
         lambda e: train(e, dev=e.files["eval-minus1"]), 2, r"eval-minus1.csv: row 1: label -1 is outside",
         "one line naming file, row and label"),
    Case("eval-names", "eval labels \"pos\"/\"neg\" for a teacher with numeric labels", TRAIN,
         lambda e: train(e, dev=e.files["labels-posneg"]), 2, r"labels-posneg.csv: row 1: label 'neg' is not one of",
         "one line naming file, row and label"),
    Case("eval-blank-label", "blank eval label cell", TRAIN,
         lambda e: train(e, dev=e.files["eval-blank-label"]), 0, "",
         "the row is not scored; the report says how many rows it scored and rejected",
         output=r"Dev set: 11 rows scored from .*eval-blank-label.csv, 1 rejected \(1 no label\)"),
    Case("eval-blank-text", "blank eval text", TRAIN,
         lambda e: train(e, dev=e.files["eval-blank-text"]), 0, "",
         "rejected rows are counted and reported with the rows scored",
         output=r"Dev set: 10 rows scored from .*eval-blank-text.csv, 2 rejected \(2 empty sentence\)"),
]


def augmented_texts(env: Env) -> list[str]:
    """`text_a` of every augmented row (originals included)."""
    import pyarrow.dataset as ds

    return ds.dataset(str(env.out / "augmented"), format="parquet").to_table(columns=["text_a"]).column("text_a").to_pylist()


def readme_table() -> str:
    lines = ["| input | entry point | exit | what happens |", "|---|---|---:|---|"]
    for case in CASES:
        lines.append(f"| {case.user} | `{case.cli}` | {case.exit} | {case.now} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(readme_table())
