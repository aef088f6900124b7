"""The experiments' ledger: finished runs survive the machine (a rerun trains only what it lacks), the table is
regenerated from it alone, and runs of another teacher or protocol never mix into it."""

from __future__ import annotations

import pytest

from bench.experiments import sst2_scale
from bench.experiments.ledger import Ledger, ModelMismatch
from bench.experiments.sst2_scale import Experiment, Row, Sizes, summarise, todo
from tests.test_sst2_split import TEXTS

ROWS = [Row("bilstm-ce", "BiLSTM", "random", "train", "CE only", "tang_bilstm", uses_teacher=False),
        Row("bilstm-kd-aug", "BiLSTM", "random", "aug", "logit MSE + CE", "tang_bilstm")]


@pytest.fixture
def experiment(tmp_path):
    source = tmp_path / "train.tsv"
    source.write_text("sentence\tlabel\n" + "".join(f"{t}\t{i % 2}\n" for i, t in enumerate(TEXTS)))
    return Experiment(tmp_path / "out", Sizes(test=1, validation=1, phrases=10, seeds=2), source,
                      Ledger(tmp_path / "ledger"))


def finished_run(experiment, row: str, seed: int, sentences: float, **extra) -> dict:
    return experiment.ledger.put_run(row, seed, {"protocol": experiment.protocol, "seconds": 600.0, "epochs_run": 4.0,
                                                 "best_epoch": 2.0, "validation": 0.8,
                                                 "scores": {"sentences": sentences, "phrases": 0.9}, **extra})


def test_a_rerun_trains_only_the_runs_the_ledger_lacks_seed_zero_of_every_row_first(experiment):
    assert [(r.name, s) for r, s in todo(experiment, ROWS)] == [
        ("bilstm-ce", 0), ("bilstm-kd-aug", 0), ("bilstm-ce", 1), ("bilstm-kd-aug", 1)]
    held = finished_run(experiment, "bilstm-kd-aug", 0, 0.86)
    assert [(r.name, s) for r, s in todo(experiment, ROWS)] == [("bilstm-ce", 0), ("bilstm-ce", 1),
                                                                 ("bilstm-kd-aug", 1)]
    # no teacher, cache or run folder exists here: the held run is answered from the ledger, not trained
    assert experiment.run_student(ROWS[1], 0) == held
    assert held["commit"] and held["recorded"] and held["row"] == "bilstm-kd-aug"


def test_runs_of_another_protocol_are_stale(experiment, monkeypatch):
    finished_run(experiment, "bilstm-ce", 0, 0.82)
    assert experiment.ledger.run("bilstm-ce", 0, experiment.protocol) is not None
    assert experiment.ledger.run("bilstm-ce", 0, sst2_scale.protocol(Sizes(lstm_patience=5))) is None
    monkeypatch.setattr(sst2_scale, "ROWS_VERSION", sst2_scale.ROWS_VERSION + 1)  # a row's recipe changed
    assert sst2_scale.protocol(experiment.sizes) != experiment.protocol
    assert sst2_scale.protocol(Sizes(seeds=5)) == sst2_scale.protocol(Sizes(seeds=3))  # more seeds: same runs


def test_the_table_comes_from_the_ledger_alone(experiment):
    note = "Paused for 20 min while the test suite ran."
    finished_run(experiment, "bilstm-ce", 0, 0.80)
    finished_run(experiment, "bilstm-ce", 1, 0.82, seconds=1800.0, time_note=note)
    finished_run(experiment, "bilstm-kd-aug", 0, 0.86, seconds=1500.0, time_note=note)
    experiment.ledger.put("teacher", {"model_files": "f" * 64, "epochs": [{"epoch": 1, "validation": 0.88}],
                                      "best_epoch": 1, "seconds": 60.0, "validation": 0.88,
                                      "scores": {"sentences": 0.90, "phrases": 0.91}})
    experiment.ledger.put("caches/aug", {"fingerprint": "ab12", "rows": 1000, "bytes_per_example": 117})
    text = summarise(experiment, ROWS)
    # 2 of 2 seeds; the time is the clean seed's, the paused one named as left out
    assert "| 81.00 ± 1.41 | 90.00 ± 0.00 | 2.0 / 4.0 | 10.0 min (without [1]) | – |" in text
    assert "| 25.0 min [1] | 117 B × 1,000 |" in text  # no clean run: the noted time, marked
    assert f"[1] {note}" in text
    assert "| 86.00 (1 of 2 seeds) | 90.00 (1 of 2 seeds) |" in text and "| 117 B × 1,000 |" in text
    assert "closes ≥ 45 % of the CE → teacher gap: 56 % (met)" in text  # (86 - 81) / (90 - 81)


def test_an_empty_ledger_reports_nothing_measured(experiment):
    text = summarise(experiment, ROWS)
    assert "not trained yet" in text and text.count("not run yet") == 6 and "not measured yet" in text


def test_a_model_rebuilt_elsewhere_must_hash_the_same(tmp_path):
    ledger = Ledger(tmp_path)
    described = []

    def describe() -> dict:
        described.append(1)
        return {"scores": {"sentences": 0.9}}

    first = ledger.bind_model("teacher", "a" * 64, describe)
    assert first["model_files"] == "a" * 64 and first["scores"] == {"sentences": 0.9}
    assert ledger.bind_model("teacher", "a" * 64, describe) == first and len(described) == 1
    with pytest.raises(ModelMismatch, match=r"teacher\.json.*aaaaaaaaaaaaaaaa.*bbbbbbbbbbbbbbbb"):
        ledger.bind_model("teacher", "b" * 64, describe)
    assert ledger.get("teacher") == first  # the refused teacher changed nothing


def test_a_transcribed_record_adopts_the_rebuilt_models_hash_and_keeps_both_figures(tmp_path):
    ledger = Ledger(tmp_path)
    ledger.put("teacher", {"model_files": None, "scores": {"sentences": 0.899}})
    adopted = ledger.bind_model("teacher", "c" * 64, lambda: {"scores": {"sentences": 0.899}})
    assert adopted["model_files"] == "c" * 64 and adopted["rebuilt"] == {"scores": {"sentences": 0.899}}
    with pytest.raises(ModelMismatch):
        ledger.bind_model("teacher", "d" * 64, lambda: {})


def test_a_runs_estimate_is_its_clean_ledger_time_plus_the_builds_it_still_needs(experiment):
    assert experiment.estimate(ROWS[1]) is None  # nothing timed: a budgeted rerun starts nothing
    finished_run(experiment, "bilstm-kd-aug", 1, 0.86, seconds=3000.0, time_note="paused for an hour")
    finished_run(experiment, "bilstm-ce", 0, 0.80, seconds=2000.0)
    assert experiment.estimate(ROWS[1]) == 2000.0  # no clean time of its own: the longest clean run's
    peer = Row("bilstm-ce-aug", "BiLSTM", "random", "aug", "CE only", "tang_bilstm", uses_teacher=False)
    finished_run(experiment, peer.name, 0, 0.82, seconds=1500.0)
    assert experiment.estimate(ROWS[1], [ROWS[0], ROWS[1], peer]) == 1500.0  # same model over the same cache
    assert experiment.estimate(ROWS[1], ROWS) == 2000.0  # bilstm-ce trains on another cache: not a peer
    finished_run(experiment, "bilstm-kd-aug", 0, 0.86, seconds=1000.0)
    assert experiment.estimate(ROWS[1]) == 1000.0  # the paused run's time says nothing about the next
    experiment.ledger.put("caches/aug", {"rows": 10, "bytes_per_example": 117, "augment_seconds": 30.0,
                                         "label_seconds": 400.0})
    assert experiment.estimate(ROWS[1]) == 1430.0  # its cache is not built on this machine yet
    experiment.cache_dirs["aug"] = experiment.out / "cache-aug"
    assert experiment.estimate(ROWS[1]) == 1000.0


def test_the_bert3_goal_takes_the_init_that_validation_prefers_not_the_better_test_score():
    def run(validation: float, sentences: float) -> dict:
        return {"validation": validation, "scores": {"sentences": sentences, "phrases": 0.9}}

    runs = {"bert3-pretrained-kd": [run(0.86, 0.88)], "bert3-teacher-kd": [run(0.87, 0.85)],
            "bilstm-kd-aug": [run(0.85, 0.86)]}
    lines = sst2_scale.goals(runs, 0.9)
    assert "- BERT-3 with KD ≥ BiLSTM KD + aug: init chosen on validation 85.00 vs 86.00 (**missed**)" in lines


def test_a_rebuilt_model_with_other_bytes_counts_only_when_it_reproduces_every_recorded_figure(tmp_path):
    ledger = Ledger(tmp_path)
    figures = {"epochs": [{"epoch": 1, "validation": 0.864}], "best_epoch": 1, "validation": 0.864,
               "scores": {"sentences": 0.899, "phrases": 0.9075}}
    behaviour = sst2_scale.TEACHER_BEHAVIOUR
    ledger.bind_model("teacher", "a" * 64, lambda: {**figures, "seconds": 10.0}, behaviour)
    other_cpu = ledger.bind_model("teacher", "b" * 64, lambda: {**figures, "seconds": 20.0}, behaviour)
    assert [e["model_files"] for e in other_cpu["equivalent"]] == ["b" * 64]
    assert other_cpu["model_files"] == "a" * 64 and other_cpu["seconds"] == 10.0  # the first record stands
    assert ledger.bind_model("teacher", "b" * 64, lambda: pytest.fail("known hash: not described again"),
                             behaviour) == other_cpu
    drifted = {**figures, "scores": {"sentences": 0.898, "phrases": 0.9075}}
    with pytest.raises(ModelMismatch, match=r"cccccccccccccccc and its \['scores'\] differ"):
        ledger.bind_model("teacher", "c" * 64, lambda: drifted, behaviour)
    with pytest.raises(ModelMismatch):  # without named figures only the bytes count (the general student's facts)
        ledger.bind_model("teacher", "d" * 64, lambda: figures)
    assert ledger.get("teacher") == other_cpu


def test_a_rebuilt_init_of_the_same_recipe_is_recorded_as_another_draw_not_as_the_same_model(tmp_path):
    ledger = Ledger(tmp_path)
    facts = {"documents": 4024, "sequences": 6662, "wordpieces": 565463, "steps": 627, "train_seconds": 1050.0,
             "bytes_per_example": 326000.0, "cache_bytes": 2.2e9, "label_seconds": 138.0}
    recipe = sst2_scale.GENERAL_RECIPE
    ledger.bind_model("general", "a" * 64, lambda: {"facts": facts}, recipe, redraw=True)
    drawn = ledger.bind_model("general", "b" * 64, lambda: {"facts": {**facts, "train_seconds": 1125.0}}, recipe,
                              redraw=True)
    assert [e["model_files"] for e in drawn["redrawn"]] == ["b" * 64] and "equivalent" not in drawn
    assert drawn["model_files"] == "a" * 64 and drawn["facts"]["train_seconds"] == 1050.0
    assert "627 steps in 17.5 min; rebuilt on other CPUs as 1 other draw(s) of that recipe (bbbbbbbb;" in \
        sst2_scale.general_line(drawn)
    assert ledger.bind_model("general", "b" * 64, lambda: pytest.fail("known draw: not described again"), recipe,
                             redraw=True) == drawn
    with pytest.raises(ModelMismatch, match=r"\['facts.steps'\] differ"):  # a longer general stage: another recipe
        ledger.bind_model("general", "c" * 64, lambda: {"facts": {**facts, "steps": 1254}}, recipe, redraw=True)
    assert ledger.get("general") == drawn


def test_a_cache_rebuilt_elsewhere_keeps_the_first_builds_figures_unless_its_contents_differ(tmp_path):
    ledger = Ledger(tmp_path)
    first = {"fingerprint": "f1", "rows": 10, "bytes_per_example": 117.0, "label_seconds": 80.0}
    ledger.record_build("caches/train", first)
    assert ledger.knows_build("caches/train", "f1") and not ledger.knows_build("caches/train", "f2")
    ledger.record_build("caches/train", {**first, "fingerprint": "f2", "label_seconds": 140.0})
    held = ledger.get("caches/train")
    assert held["fingerprint"] == "f1" and held["label_seconds"] == 80.0  # the first build's figures stand
    assert [b["fingerprint"] for b in held["rebuilds"]] == ["f2"] and ledger.knows_build("caches/train", "f2")
    ledger.record_build("caches/train", {**first, "fingerprint": "f3", "bytes_per_example": 4708.0})
    assert ledger.get("caches/train")["fingerprint"] == "f3"  # other contents: another cache, a new record
    assert not ledger.knows_build("caches/train", "f2")
