"""The checks that turn hostile-but-fair inputs into one-line refusals before any work: incomplete
teachers, output paths that cannot be directories, damaged manifests, dead Ray addresses and worker
counts no cluster holds. End-to-end cases through the entry points: tests/bad_input_cases.py."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from distill.common.config_io import ConfigError
from distill.common.models import ModelFilesError, load_complete
from distill.common.ray_runtime import ADDRESS_TIMEOUT_SECONDS, check_address, check_fits
from distill.storage.lock import OutputLock, OutputLockedError, OutputPathError
from distill.storage.stage_dir import MANIFEST_NAME, DamagedFileError, StageDir, StageMismatchError, read_record
from tests.conftest import teacher_without


def _headless(teacher: Path, target: Path) -> Path:
    return teacher_without(teacher, target, lambda name: name.startswith("classifier."))


def test_a_teacher_missing_its_head_is_refused_naming_the_tensors(tiny_teacher_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    assert load_complete(AutoModelForSequenceClassification, tiny_teacher_dir).config.num_labels == 2
    headless = _headless(tiny_teacher_dir, tmp_path / "headless")
    with pytest.raises(ModelFilesError, match=r"headless: the weights lack classifier\.bias, classifier\.weight, "
                                              r"which BertForSequenceClassification would fill with random values"):
        load_complete(AutoModelForSequenceClassification, headless)


def test_the_label_stage_refuses_an_incomplete_teacher_before_any_work(tiny_teacher_dir, tmp_path):
    from distill.label import LabelConfig, prepare_teacher

    assert prepare_teacher(LabelConfig(teacher=str(tiny_teacher_dir))).positions == 256
    with pytest.raises(ModelFilesError, match="the weights lack classifier"):
        prepare_teacher(LabelConfig(teacher=str(_headless(tiny_teacher_dir, tmp_path / "headless"))))
    with pytest.raises(ConfigError, match=r"^label\.max_length: 300 is more than the teacher's 256 position"):
        prepare_teacher(LabelConfig(teacher=str(tiny_teacher_dir), max_length=300))


def test_output_paths_that_cannot_be_directories_are_refused(tmp_path):
    (tmp_path / "file").write_text("keep")
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    for path, message in ((tmp_path / "file", "is a file, not a directory"),
                          (tmp_path / "file" / "below", "file is a file, not a directory"),
                          (tmp_path / "link", "is a symbolic link to .*nowhere, which does not exist"),
                          (tmp_path / "link" / "below", "link is a symbolic link")):
        with pytest.raises(OutputPathError, match=message), OutputLock(path):
            pass
    assert (tmp_path / "file").read_text() == "keep" and not (tmp_path / "nowhere").exists()


def test_a_lock_held_by_a_live_process_refuses_a_second_writer_and_a_refused_run_leaves_no_directory(tmp_path):
    run = tmp_path / "run"
    with OutputLock(run):
        holder = json.loads((run / "_lock").read_text())
        assert holder == {"host": socket.gethostname(), "pid": os.getpid()}
        with pytest.raises(OutputLockedError, match=rf"run is locked by .*/{os.getpid()} \(another run is writing"):
            OutputLock(run).acquire()
    assert not run.exists()  # created by the lock, left empty: removed with it
    run.mkdir()
    (run / "kept.txt").write_text("x")
    with OutputLock(run):
        pass
    assert sorted(p.name for p in run.iterdir()) == ["kept.txt"]


def test_damaged_json_is_named_and_a_cache_is_redone_while_other_outputs_ask_for_overwrite(tmp_path):
    path = tmp_path / MANIFEST_NAME
    path.write_text('{"stage": "augment", "fingerp')
    with pytest.raises(DamagedFileError, match=rf"{MANIFEST_NAME} is damaged \(Unterminated string"):
        read_record(path)
    assert read_record(tmp_path / "absent.json") is None
    stage = StageDir(tmp_path, "augment", "f" * 64)
    assert stage.manifest() is None and stage.damaged
    with pytest.raises(DamagedFileError, match="damaged, so its shards cannot be told to be this run's; pass --overwrite"):
        stage.begin()
    assert path.exists()  # nothing removed by a refusal
    StageDir(tmp_path, "label", "f" * 64, named_by_fingerprint=True).begin()  # a cache: its name is its fingerprint
    assert not path.exists() and read_record(tmp_path / "_progress.json")["fingerprint"] == "f" * 64
    other = StageDir(tmp_path, "augment", "e" * 64)
    with pytest.raises(StageMismatchError):
        other.begin()
    other.begin(overwrite=True)
    assert read_record(tmp_path / "_progress.json")["fingerprint"] == "e" * 64


def test_dead_and_unsupported_ray_addresses_fail_in_one_line_quickly():
    import time

    with socket.socket() as server:  # a port nothing listens on: bound, then closed
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=rf"^address: no Ray cluster answers at 127\.0\.0\.1:{port} "):
        check_address(f"127.0.0.1:{port}")
    assert time.perf_counter() - started < ADDRESS_TIMEOUT_SECONDS
    with pytest.raises(ConfigError, match=r"Ray Client \(ray://\) needs ray\[client\]"):
        check_address("ray://127.0.0.1:10001")
    with pytest.raises(ConfigError, match="is not auto or HOST:PORT"):
        check_address("somewhere")
    check_address("auto")  # found (or not) by ray.init itself


def test_workers_the_cluster_cannot_hold_are_refused(ray_local):
    check_fits(2, 1.0, 0.0)
    with pytest.raises(ConfigError, match=r"^workers: 3 workers need 3 CPU and 0 GPU; the Ray cluster has 2 CPU and 0 GPU"):
        check_fits(3, 1.0, 0.0)
    with pytest.raises(ConfigError, match="1 workers need 1 CPU and 1 GPU"):
        check_fits(1, 1.0, 1.0)


def test_ctrl_c_while_ray_starts_is_held_until_it_has_started():
    """Ray forks while it starts; a KeyboardInterrupt raised in Python's after-fork hooks is swallowed with
    the logging lock held, and the run hangs at its next log line (seen in CI). The interrupt must come after."""
    import signal

    from distill.common.ray_runtime import _ctrl_c_deferred

    reached = []
    earlier = signal.signal(signal.SIGINT, signal.default_int_handler)  # a terminal's (Ray Train installs its own)
    try:
        with pytest.raises(KeyboardInterrupt):
            with _ctrl_c_deferred():
                signal.raise_signal(signal.SIGINT)
                reached.append("after the signal")
        assert reached == ["after the signal"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, earlier)
