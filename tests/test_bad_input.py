"""Every case of `tests/bad_input_cases.py` through the real entry points: the exit code, one
`error:` line naming the key, file or row, nothing written by a refused command (so the corrected
rerun is a clean run, as the fixture's), and, where the case names one, the corrected rerun
succeeding. The README's "Bad input" table is generated from the same cases."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from distill.common.hardware import cpu_precision_warning
from pipelines.augment_and_label import main as pipeline_main
from pipelines.evaluate import main as evaluate_main
from pipelines.train_student import main as train_main
from tests.bad_input_cases import CASES, EVALUATE, PIPELINE, TRAIN, Env, readme_table
from tests.conftest import REPO, SAMPLES, build_tiny_teacher, pipeline_env, teacher_without

pytestmark = pytest.mark.slow
ENTRY_POINTS = {PIPELINE: pipeline_main, TRAIN: train_main, EVALUATE: evaluate_main}


def _csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "label"])
        writer.writerows(rows)
    return path


def _teachers(base: Path, tiny: Path, minilm: Path) -> dict[str, Path]:
    import json

    import torch

    out = {"three-class": build_tiny_teacher(base / "three-class", minilm, num_labels=3)}
    out["no-weights"] = shutil.copytree(tiny, base / "no-weights", ignore=shutil.ignore_patterns("*.safetensors"))
    (base / "config-only").mkdir()
    shutil.copy(tiny / "config.json", base / "config-only" / "config.json")
    out["config-only"] = base / "config-only"
    out["no-tokenizer"] = shutil.copytree(tiny, base / "no-tokenizer", ignore=shutil.ignore_patterns("tokenizer*", "vocab*",
                                                                                                      "special_tokens*"))
    named = shutil.copytree(tiny, base / "named")
    config = json.loads((named / "config.json").read_text())
    config.update(id2label={"0": "neg", "1": "pos"}, label2id={"neg": 0, "pos": 1})
    (named / "config.json").write_text(json.dumps(config))
    out["named"] = named
    from safetensors.torch import load_file

    state = load_file(str(tiny / "model.safetensors"))
    out["bin"] = shutil.copytree(tiny, base / "bin", ignore=shutil.ignore_patterns("*.safetensors"))
    torch.save(state, out["bin"] / "pytorch_model.bin")
    out["pickle-bin"] = shutil.copytree(tiny, base / "pickle-bin", ignore=shutil.ignore_patterns("*.safetensors"))
    torch.save({**state, "extra": Path("not a tensor")}, out["pickle-bin"] / "pytorch_model.bin")
    out["no-head"] = teacher_without(tiny, base / "no-head", lambda name: name.startswith("classifier."))
    out["no-qk"] = teacher_without(tiny, base / "no-qk", lambda name: ".attention.self.query." in name or ".key." in name)
    return out


@pytest.fixture(scope="module")
def assets(ray_local, tiny_teacher_dir, minilm_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("bad-input")
    lines = (SAMPLES / "sentiment.csv").read_text(encoding="utf-8").splitlines()[1:13]
    import csv

    good = [(row[0], row[1]) for row in csv.reader(lines)]
    files = {
        "labels-012": _csv(base / "labels-012.csv", [(t, "2" if i == 2 else y) for i, (t, y) in enumerate(good)]),
        "labels-posneg": _csv(base / "labels-posneg.csv", [(t, "pos" if y == "1" else "neg") for t, y in good]),
        "eval-012": _csv(base / "eval-012.csv", [(t, "2" if i == 1 else y) for i, (t, y) in enumerate(good)]),
        "eval-minus1": _csv(base / "eval-minus1.csv", [(t, "-1" if i == 0 else y) for i, (t, y) in enumerate(good)]),
        "eval-blank-label": _csv(base / "eval-blank-label.csv", [(t, "" if i == 4 else y) for i, (t, y) in enumerate(good)]),
        "eval-blank-text": _csv(base / "eval-blank-text.csv", [("" if i in (1, 6) else t, y) for i, (t, y) in enumerate(good)]),
        "long-field": _csv(base / "long-field.csv", [("x" * 200_000 if i == 3 else t, y) for i, (t, y) in enumerate(good)]),
        "newline": _csv(base / "newline.csv", [(t.replace(", ", ",\n", 1), y) for t, y in good]),
    }
    quote = _csv(base / "unterminated-quote.csv", good).read_text(encoding="utf-8").splitlines()
    quote[3] = '"' + quote[3].lstrip('"')  # row 3 opens a quote it never closes
    files["unterminated-quote"] = base / "unterminated-quote.csv"
    files["unterminated-quote"].write_text("\n".join(quote) + "\n", encoding="utf-8")
    files["binary"] = base / "binary.csv"
    files["binary"].write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    for name, text in {"bad-syntax.yaml": "input: [unclosed\nlabel: {features: [cls]\n",
                       "python-tag.yaml": 'augment: !!python/object/apply:os.system ["echo hacked"]\n',
                       "student-tag.yaml": "student: !!python/object:argparse.Namespace {name: bilstm}\n"}.items():
        files[name] = base / name
        files[name].write_text(text, encoding="utf-8")
    env = Env(tmp=base / "base", data=_csv(base / "data.csv", good), teacher=tiny_teacher_dir,
              teachers=_teachers(base, tiny_teacher_dir, minilm_dir), files=files)
    from tests.bad_input_cases import pipeline

    assert pipeline_main(pipeline(env)) == 0
    env.cache = env.out
    return env


def _run(cli: str, args: list[str], capsys, caplog) -> tuple[int, str, str]:
    caplog.clear()
    code = ENTRY_POINTS[cli](args)
    captured = capsys.readouterr()
    return code, captured.err, captured.out + captured.err + caplog.text


def _written(env: Env) -> set[tuple]:
    """What lies under the run's output paths: each path, with size and mtime for files."""
    paths = [p for root in (env.out, env.run) if root.exists() or root.is_symlink()
             for p in (root, *(root.rglob("*") if root.is_dir() else ()))]
    return {(str(p), p.lstat().st_size, p.lstat().st_mtime_ns) if p.is_file() else (str(p),) for p in paths}


def _interrupt(args: list[str]) -> tuple[int, str]:
    """Start the pipeline in its own process group, Ctrl-C it (SIGINT to the group, as a terminal
    does) once augmentation has started, and return its exit code and stderr."""
    # A shell's background jobs (`cmd &`, as CI may run us) inherit SIGINT ignored, and Python then
    # installs no KeyboardInterrupt handler; a terminal's foreground job has the default disposition.
    proc = subprocess.Popen([sys.executable, "pipelines/augment_and_label.py", *args], cwd=REPO, env=pipeline_env(),
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    out = Path(args[args.index("--output") + 1])
    import time

    deadline = time.time() + 120
    while time.time() < deadline and not (out / "augmented" / "_progress.json").exists() and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, assets, tmp_path, capsys, caplog):
    env = Env(tmp=tmp_path, data=assets.data, teacher=assets.teacher, teachers=assets.teachers, files=assets.files,
              cache=assets.cache)
    if case.prepare:
        case.prepare(env)
    written = _written(env)
    args = case.args(env)
    if case.interrupt:
        code, err = _interrupt(args)
        text = err
    else:
        code, err, text = _run(case.cli, args, capsys, caplog)
    assert code == case.exit, text[-3000:]
    if case.exit:
        last = err.strip().splitlines()[-1]
        line = last.removeprefix("error: ")
        assert re.search(case.message, line), last
        if not case.interrupt:
            assert err.strip() == last and last.startswith("error: "), err  # one line, nothing else
            # nothing written or changed: the corrected rerun is the fixture's clean run (where no `rerun` says)
            assert _written(env) == written, sorted(_written(env) ^ written)
    if case.output:
        assert re.search(case.output, text), text[-3000:]
    if case.check:
        assert case.check(env), case.id
    if case.repair:
        case.repair(env)
    if case.rerun:
        code, _, text = _run(case.cli, case.rerun(env), capsys, caplog)
        assert code == 0, text[-3000:]
    if case.then:
        cli, then_args = case.then
        code, _, text = _run(cli, then_args(env), capsys, caplog)
        assert code == 0, text[-3000:]


def test_the_readme_table_is_generated_from_these_cases():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme_table() in readme, "rerun `python tests/bad_input_cases.py` and paste its table into the README"


def test_precision_warnings_name_the_cost():
    assert "emulated" in cpu_precision_warning("float16")
    assert cpu_precision_warning("float32") is None and cpu_precision_warning("auto") is None
