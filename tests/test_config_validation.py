"""Every config value is type- and range-checked when the config is built, before any work:
one-line `ConfigError` naming the key path and the value, and exit code 2 from the CLIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from augment.config import AugmentConfig
from distill.common.config_io import ConfigError, validate_fields
from distill.finetune import FinetuneConfig
from distill.label.config import LabelConfig
from distill.train.config import TrainConfig
from tests.conftest import REPO, SAMPLES

RECIPES = REPO / "pipelines" / "configs" / "augment"
STUDENTS = REPO / "pipelines" / "configs" / "students"
BILSTM = STUDENTS / "tang_bilstm.yaml"


def _refused(load, key: str, value: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load()
    message = str(caught.value)
    assert "\n" not in message, message
    assert message.startswith(key), message
    assert value in message, message
    return message


@pytest.mark.parametrize(
    "override, key, value",
    [
        ("tang.n_iter=abc", "tang.n_iter", "'abc' is not an integer"),
        ("tang.n_iter=2.5", "tang.n_iter", "2.5 is not an integer"),
        ("tang.n_iter=-5", "tang.n_iter", "-5 must be >= 1"),
        ("tang.n_iter=0", "tang.n_iter", "0 must be >= 1"),
        ("tang.p_one_side=1.5", "tang.p_one_side", "1.5 must be <= 1"),
        ("tinybert.n_aug=0", "tinybert.n_aug", "0 must be >= 1"),
        ("tinybert.p=-0.1", "tinybert.p", "-0.1 must be >= 0"),
        ("rules.mask.p=-1", "rules.mask.p", "-1 must be >= 0"),
        ("rules.mask.p=2", "rules.mask.p", "2 must be <= 1"),
        ("rules.mask.p=abc", "rules.mask.p", "'abc' is not a number"),
        ("rules.mask.p=.nan", "rules.mask.p", "nan"),
        ("rules.mask.token=[MASK]", "rules.mask.token", "['MASK'] is not a string"),
        ("rules.pos.p=1.01", "rules.pos.p", "1.01 must be <= 1"),
        ("rules.pos.tag_attr=lemma_", "rules.pos.tag_attr", "'lemma_'"),
        ("rules.ngram.p=-0.5", "rules.ngram.p", "-0.5 must be >= 0"),
        ("rules.ngram.min_n=0", "rules.ngram.min_n", "0 must be >= 1"),
        ("rules.ngram.min_n=6", "rules.ngram.min_n", "6 is not in 1..max_n (5)"),
        ("rules.mlm.top_k=0", "rules.mlm.top_k", "0 must be >= 1"),
        ("rules.mlm.batch_size=abc", "rules.mlm.batch_size", "'abc' is not an integer"),
        ("rules.mlm.dtype=int4", "rules.mlm.dtype", "'int4' is not allowed"),
        ("rules.mlm.device=gpu", "rules.mlm.device", "'gpu' is not auto, cpu, cuda"),
        ("rules.glove.top_k=-3", "rules.glove.top_k", "-3 must be >= 1"),
        ("rules.glove.max_words=2.5", "rules.glove.max_words", "2.5 is not an integer"),
        ("rules.mask.colour=red", "rules.mask", "no option(s) colour"),
        ("rules=[1, 2]", "rules", "[1, 2] is not a list of rule names"),
        ("rules=mask", "rules", "'mask' is not a mapping"),
        ("rules={}", "rules", "no augmentation rules configured"),
        ("columns.text_a=1", "columns.text_a", "1 is not a string"),
        ("columns.text_a=''", "columns.text_a", "'' must not be empty"),
        ("columns.label_type=bool", "columns.label_type", "'bool' is not allowed"),
        ("columns.max_chars=0", "columns.max_chars", "0 must be >= 1"),
        ("shard_format=csv", "shard_format", "'csv' is not allowed (choose 'parquet' or 'arrow')"),
        ("rows_per_shard=0", "rows_per_shard", "0 must be >= 1"),
        ("rows_per_shard='100'", "rows_per_shard", "'100' is not an integer"),
        ("spacy_batch_size=-1", "spacy_batch_size", "-1 must be >= 1"),
        ("seed=-1", "seed", "-1 must be >= 0"),
        ("workers=0", "workers", "0 must be >= 1"),
        ("tang=3", "tang", "3 is not a mapping"),
    ],
)
def test_augment_config_refuses(override, key, value):
    _refused(lambda: AugmentConfig.load(None, [override]), key, value)


@pytest.mark.parametrize(
    "override, key, value",
    [
        ("dtype=int4", "dtype", "'int4' is not allowed (choose 'float16', 'bfloat16' or 'float32')"),
        ("precision=fp8", "precision", "'fp8' is not allowed"),
        ("shard_format=csv", "shard_format", "'csv' is not allowed"),
        ("quantize_hidden=maybe", "quantize_hidden", "'maybe' is not a boolean"),
        ("quantize_hidden='true'", "quantize_hidden", "'true' is not a boolean"),
        ("check_vocab=1", "check_vocab", "1 is not a boolean"),
        ("hidden_layers=[1, a]", "hidden_layers[1]", "'a' is not an integer"),
        ("cls_layers=[1.5]", "cls_layers[0]", "1.5 is not an integer"),
        ("hidden_layers=[-1]", "hidden_layers[0]", "-1 must be >= 0"),
        ("attention_layers=[0]", "attention_layers[0]", "0 must be >= 1"),
        ("hidden_layers=6", "hidden_layers", "6 is not a list"),
        ("features=cls", "features", "'cls' is not a list"),
        ("features=[cls, logitz]", "features", "unknown feature(s) logitz"),
        ("max_length=0", "max_length", "0 must be >= 1"),
        ("topk=-2", "topk", "-2 must be >= 1"),
        ("batch_size=abc", "batch_size", "'abc' is not an integer"),
        ("max_batch_tokens=64", "max_batch_tokens", "64 must be >= max_length (128)"),
        ("workers=0", "workers", "0 must be >= 1"),
        ("cpus_per_actor=0", "cpus_per_actor", "0 must be > 0"),
        ("gpus_per_actor=-1", "gpus_per_actor", "-1 must be >= 0"),
        ("teacher=3", "teacher", "3 is not a string"),
    ],
)
def test_label_config_refuses(override, key, value):
    _refused(lambda: LabelConfig.load(None, [override]), key, value)


@pytest.mark.parametrize(
    "recipe, override, key, value",
    [
        (BILSTM, "max_steps=abc", "max_steps", "'abc' is not an integer"),
        (BILSTM, "max_steps=0", "max_steps", "0 must be >= 1"),
        (BILSTM, "epochs=abc", "epochs", "'abc' is not a number"),
        (BILSTM, "epochs=0", "epochs", "0 must be > 0"),
        (BILSTM, "batch_size=0", "batch_size", "0 must be >= 1"),
        (BILSTM, "batch_size=2.5", "batch_size", "2.5 is not an integer"),
        (BILSTM, "learning_rate=-1", "learning_rate", "-1 must be > 0"),
        (BILSTM, "learning_rate=.inf", "learning_rate", "inf is not a finite number"),
        (BILSTM, "warmup_ratio=1.5", "warmup_ratio", "1.5 must be <= 1"),
        (BILSTM, "weight_decay=-0.1", "weight_decay", "-0.1 must be >= 0"),
        (BILSTM, "max_grad_norm=0", "max_grad_norm", "0 must be > 0"),
        (BILSTM, "group_by_length=yes please", "group_by_length", "'yes please' is not a boolean"),
        (BILSTM, "seed=-1", "seed", "-1 must be >= 0"),
        (BILSTM, "eval_every=-1", "eval_every", "-1 must be >= 0"),
        (BILSTM, "log_every=0", "log_every", "0 must be >= 1"),
        (BILSTM, "checkpoint_every=0", "checkpoint_every", "0 must be >= 1"),
        (BILSTM, "num_workers=-1", "num_workers", "-1 must be >= 0"),
        (BILSTM, "amp=fp16", "amp", "'fp16' is not allowed (choose 'auto' or 'off')"),
        (BILSTM, "device=gpu", "device", "'gpu' is not auto, cpu, cuda"),
        # loss options, through each loss's dataclass
        (BILSTM, "losses.ce.weight=-1", "losses.ce.weight", "-1 must be >= 0"),
        (BILSTM, "losses.ce.weight=abc", "losses.ce.weight", "'abc' is not a number"),
        (BILSTM, "losses.ce.augmented=all", "losses.ce.augmented", "'all' is not allowed"),
        (BILSTM, "losses.ce=3", "losses.ce", "3 is not a mapping"),
        (BILSTM, "losses.nope.weight=1", "losses.nope", "unknown loss 'nope'"),
        (STUDENTS / "distilbert6.yaml", "losses.kd.temperature=0", "losses.kd.temperature", "0 must be > 0"),
        (STUDENTS / "distilbert6.yaml", "losses.kd.temprature=2", "losses.kd", "no option(s) temprature"),
        (STUDENTS / "distilbert6.yaml", "losses.cosine.teacher_layer=-1", "losses.cosine.teacher_layer",
         "-1 must be >= 0"),
        (STUDENTS / "pkd_last.yaml", "losses.pkd.teacher_layers=[7, a]", "losses.pkd.teacher_layers[1]",
         "'a' is not an integer"),
        (STUDENTS / "pkd_last.yaml", "losses.pkd.teacher_layers=7", "losses.pkd.teacher_layers", "7 is not a list"),
        (STUDENTS / "tinybert4.yaml", "stages=[{losses: {soft_ce: {temperature: -1}}}]",
         "stages[0].losses.soft_ce.temperature", "-1 must be > 0"),
        (STUDENTS / "tinybert4.yaml", "stages=[{epochs: abc}]", "stages[0].epochs", "'abc' is not a number"),
        (STUDENTS / "tinybert4.yaml", "stages=[{losses: {tinybert_attention: {teacher_layers: [0]}}}]",
         "stages[0].losses.tinybert_attention.teacher_layers[0]", "0 must be >= 1"),
        (STUDENTS / "tinybert4.yaml", "stages=[3]", "stages[0]", "3 is not a mapping"),
        # student options, through BiLSTMConfig
        (BILSTM, "student.hidden_size=abc", "student.hidden_size", "'abc' is not an integer"),
        (BILSTM, "student.mlp_size=0", "student.mlp_size", "0 must be >= 1"),
        (BILSTM, "student.dropout=1.5", "student.dropout", "1.5 must be <= 1"),
        (BILSTM, "student.init_embeddings=glove", "student.init_embeddings", "'glove' is not allowed"),
        (BILSTM, "student.vocabulary=half", "student.vocabulary", "'half' is not allowed"),
        (BILSTM, "student.freeze_embeddings=no way", "student.freeze_embeddings", "'no way' is not a boolean"),
        (BILSTM, "student.colour=red", "student", "bilstm has no option(s) colour"),
        (BILSTM, "student.name=lstm", "student.name", "unknown student 'lstm'"),
        # student options of the BERT students, through their option dataclasses
        (STUDENTS / "distilbert6.yaml", "student.num_layers=0", "student.num_layers", "0 must be >= 1"),
        (STUDENTS / "distilbert6.yaml", "student.layers=middle", "student.layers", "'middle' is not allowed"),
        (STUDENTS / "distilbert6.yaml", "student.layers=[1, a]", "student.layers[1]", "'a' is not an integer"),
        (STUDENTS / "tinybert4.yaml", "student.hidden_size=abc", "student.hidden_size", "'abc' is not an integer"),
        (STUDENTS / "tinybert4.yaml", "student.heads=4", "student", "narrow_bert has no option(s) heads"),
    ],
)
def test_train_config_refuses(recipe, override, key, value):
    _refused(lambda: TrainConfig.load(recipe, [override]), key, value)


@pytest.mark.parametrize(
    "data, key, value",
    [
        ({"epochs": "abc"}, "epochs", "'abc' is not a number"),
        ({"epochs": 0}, "epochs", "0 must be > 0"),
        ({"batch_size": 0}, "batch_size", "0 must be >= 1"),
        ({"learning_rate": -1}, "learning_rate", "-1 must be > 0"),
        ({"max_length": 2.5}, "max_length", "2.5 is not an integer"),
        ({"warmup_ratio": 2}, "warmup_ratio", "2 must be <= 1"),
        ({"dev_rows": -1}, "dev_rows", "-1 must be >= 0"),
        ({"group_by_length": "false"}, "group_by_length", "'false' is not a boolean"),
        ({"columns": {"max_chars": -1}}, "columns.max_chars", "-1 must be >= 1"),
    ],
)
def test_finetune_config_refuses(data, key, value):
    _refused(lambda: FinetuneConfig.from_dict(data), key, value)


def test_int_for_float_is_accepted_and_kept():
    config = TrainConfig.load(STUDENTS / "distilbert6.yaml", ["epochs=2", "learning_rate=1e-4"])
    assert config.epochs == 2 and type(config.epochs) is int  # the resolved config (and its fingerprint) is unchanged
    assert config.learning_rate == 1e-4
    assert validate_fields(LabelConfig, {"cpus_per_actor": 2}) == {"cpus_per_actor": 2}
    assert AugmentConfig.load(None, ["rules.mask.p=1", "rules.mask.p=0"]).rules["mask"] == {"p": 0}


def test_exponent_floats_in_yaml_files_are_floats(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("student: {name: bilstm}\nlearning_rate: 1e-4\nweight_decay: 5E-3\n")
    config = TrainConfig.load(recipe)
    assert config.learning_rate == 1e-4 and config.weight_decay == 5e-3


def test_python_api_and_empty_sections_still_work():
    assert list(AugmentConfig(rules=["mask", "pos"]).rules) == ["mask", "pos"]
    assert AugmentConfig.load(None, ["tang.n_iter=3", "rules=[mask]"]).tang.n_iter == 3
    assert AugmentConfig.from_dict({"tang": None}).tang.n_iter is None  # `tang:` with nothing under it


def test_every_shipped_recipe_and_config_loads():
    from pipelines.augment_and_label import build_parser, load_config

    recipes, students, configs = (sorted(RECIPES.glob("*.yaml")), sorted(STUDENTS.glob("*.yaml")),
                                  sorted((REPO / "pipelines" / "configs" / "pipeline").glob("*.yaml")))
    assert recipes and students and configs
    for path in recipes:
        assert AugmentConfig.load(path).rules
        load_config(build_parser().parse_args(["--config", str(configs[0]), "--recipe", str(path)]))
    for path in students:
        assert TrainConfig.load(path).stage_configs()
    for path in configs:
        config = load_config(build_parser().parse_args(["--config", str(path)]))
        assert config.input and config.output and config.augment.rules
    from pipelines.general_distill_data import load_config as load_general

    general = sorted((REPO / "pipelines" / "configs" / "pipeline" / "general").glob("*.yaml"))
    assert len(general) == 2
    for path in general:
        config, _ = load_general(["--config", str(path), "--input", "x.txt", "--output", "out", "--teacher", "t"])
        assert config.corpus.max_length == 128 and config.corpus.tokenizer == "t" and config.label.features


# --- YAML files --------------------------------------------------------------------------------
def _bad_yaml(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    marker = tmp_path / "executed"
    files = {
        "syntax": ("epochs: 3\nlosses: {ce: {weight: 1}\nbatch_size: 2\n", "line 3"),
        "tag": (f'student: !!python/object/apply:os.system ["touch {marker}"]\n', "line 1"),
        "object": ("student: !!python/object:argparse.Namespace {name: bilstm}\n", "line 1"),
        "tab": ("epochs: 3\n\tbatch_size: 2\n", "line 2"),
    }
    out = {}
    for name, (text, line) in files.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        out[name] = (path, line)
    return out


@pytest.mark.parametrize("kind", ["syntax", "tag", "object", "tab"])
def test_bad_yaml_is_one_line_with_file_and_line(tmp_path, kind):
    path, line = _bad_yaml(tmp_path)[kind]
    for load in (lambda: TrainConfig.load(path), lambda: AugmentConfig.load(path), lambda: LabelConfig.load(path)):
        message = _refused(load, str(path), line)
        assert "invalid YAML" in message
        if kind in ("tag", "object"):
            assert "python/object" in message and "refused" in message
    assert not (tmp_path / "executed").exists()


def test_bad_yaml_in_an_override_is_one_line():
    _refused(lambda: AugmentConfig.load(None, ["tang.n_iter=[1,"]), "override 'tang.n_iter=[1,'", "invalid YAML")
    _refused(lambda: AugmentConfig.load(None, ["tang.n_iter=!!python/object/apply:os.system [true]"]),
             "override", "python/object")


# --- CLIs: exit 2, one line, nothing written ---------------------------------------------------------
def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize(
    "override, expected",
    [
        ("max_steps=abc", "max_steps: 'abc' is not an integer"),
        ("epochs=abc", "epochs: 'abc' is not a number"),
        ("batch_size=0", "batch_size: 0 must be >= 1"),
        ("learning_rate=-1", "learning_rate: -1 must be > 0"),
        ("losses.ce.weight=-1", "losses.ce.weight: -1 must be >= 0"),
        ("student.hidden_size=0", "student.hidden_size: 0 must be >= 1"),
    ],
)
def test_train_student_cli_refuses_before_touching_the_cache(tmp_path, capsys, override, expected):
    from pipelines.train_student import main

    out = tmp_path / "run"
    code = main(["--recipe", str(BILSTM), "--cache", str(tmp_path / "no-cache"), "--out", str(out), "--set", override])
    assert code == 2
    assert expected in _one_error_line(capsys)
    assert not out.exists()


def test_train_student_cli_refuses_bad_yaml(tmp_path, capsys):
    from pipelines.train_student import main

    for path, line in _bad_yaml(tmp_path).values():
        out = tmp_path / "run"
        assert main(["--recipe", str(path), "--cache", str(tmp_path / "no-cache"), "--out", str(out)]) == 2
        assert f"{path}, {line}" in _one_error_line(capsys)
        assert not out.exists()
    assert not (tmp_path / "executed").exists()


def _pipeline_args(out: Path, tmp_path: Path, *extra: str) -> list[str]:
    # The teacher does not exist: the config must be refused before the teacher is even looked at.
    return ["--input", str(SAMPLES / "sentiment.csv"), "--output", str(out), "--text-a", "sentence",
            "--teacher", str(tmp_path / "no-such-teacher"), *extra]


@pytest.mark.parametrize(
    "extra, expected",
    [
        (["--set", "augment.tang.n_iter=abc"], "augment.tang.n_iter: 'abc' is not an integer"),
        (["--set", "augment.tang.n_iter=2.5"], "augment.tang.n_iter: 2.5 is not an integer"),
        (["--set", "augment.tang.n_iter=-5"], "augment.tang.n_iter: -5 must be >= 1"),
        (["--set", "augment.rules.mask.p=-1"], "augment.rules.mask.p: -1 must be >= 0"),
        (["--set", "augment.rules.mask.p=2"], "augment.rules.mask.p: 2 must be <= 1"),
        (["--set", "augment.rules=[mask]", "--set", "augment.rules.mask.p=2"], "augment.rules.mask.p: 2 must be <= 1"),
        (["--set", "label.dtype=int4"], "label.dtype: 'int4' is not allowed"),
        (["--set", "label.precision=fp8"], "label.precision: 'fp8' is not allowed"),
        (["--set", "label.hidden_layers=[a]"], "label.hidden_layers[0]: 'a' is not an integer"),
        (["--workers", "0"], "augment.workers: 0 must be >= 1"),
        (["--cpus-per-actor", "0"], "label.cpus_per_actor: 0.0 must be > 0"),
        (["--sync-seconds", "-1"], "sync_seconds: -1.0 must be > 0"),
        (["--set", "augment=3"], "augment: 3 is not a mapping"),
    ],
)
def test_augment_and_label_cli_refuses_before_any_work(tmp_path, capsys, extra, expected):
    from pipelines.augment_and_label import main

    out = tmp_path / "out"
    assert main(_pipeline_args(out, tmp_path, *extra)) == 2
    assert expected in _one_error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--config", "--recipe"])
def test_augment_and_label_cli_refuses_bad_yaml(tmp_path, capsys, flag):
    from pipelines.augment_and_label import main

    out = tmp_path / "out"
    for path, line in _bad_yaml(tmp_path).values():
        assert main(_pipeline_args(out, tmp_path, flag, str(path))) == 2
        assert f"{path}, {line}" in _one_error_line(capsys)
    assert not out.exists() and not (tmp_path / "executed").exists()


def test_augment_cli_refuses_bad_values(tmp_path, capsys):
    from augment.cli import main

    out = tmp_path / "out"
    assert main([str(SAMPLES / "sentiment.csv"), str(out), "--text-a", "sentence", "--set", "rules.ngram.p=abc"]) == 2
    assert "rules.ngram.p: 'abc' is not a number" in _one_error_line(capsys)
    path, line = _bad_yaml(tmp_path)["tag"]
    assert main([str(SAMPLES / "sentiment.csv"), str(out), "--recipe", str(path)]) == 2
    assert f"{path}, {line}" in _one_error_line(capsys)
    assert not out.exists() and not (tmp_path / "executed").exists()


def test_finetune_cli_refuses_bad_values(tmp_path, capsys):
    from pipelines.finetune_teacher import main

    out = tmp_path / "teacher"
    args = [str(SAMPLES / "sentiment.csv"), str(out), "--base-model", str(tmp_path / "no-model"),
            "--text-a", "sentence"]
    assert main([*args, "--set", "epochs=abc"]) == 2
    assert "epochs: 'abc' is not a number" in _one_error_line(capsys)
    assert main([*args, "--set", "columns.label_type=bool"]) == 2
    assert "columns.label_type: 'bool' is not allowed" in _one_error_line(capsys)
    assert not out.exists()
