"""`attention: recompute` (and MiniLM's `relation`) rebuilds a layer's scores from its input h_{l-1} and W_q, W_k
(and W_v): right for the post-LayerNorm BERT encoders the tests compare against captured scores, silently wrong
for encoders that share BERT's weight names but not its attention (pre-LayerNorm, custom position biases)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.common.config_io import ConfigError
from distill.label import LabelConfig, prepare_teacher, run
from tests.fixtures.make_cache_fixture import WORDS, _augmented

SIZES = dict(hidden_size=8, num_hidden_layers=2, num_attention_heads=2, intermediate_size=16, num_labels=3)


def _teacher(directory: Path, kind: str) -> Path:
    """A tiny random classifier of `kind` over the fixtures' 25-word WordPiece vocabulary."""
    import torch
    import transformers
    from transformers import BertTokenizerFast

    directory.mkdir(parents=True)
    (directory / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizerFast(str(directory / "vocab.txt")).save_pretrained(directory)
    torch.manual_seed(0)
    prefix = {"bert-custom-code": "Bert", "bert": "Bert", "roberta-prelayernorm": "RobertaPreLayerNorm",
              "megatron-bert": "MegatronBert"}[kind]
    config = getattr(transformers, f"{prefix}Config")(vocab_size=len(WORDS) + 5, max_position_embeddings=40,
                                                      pad_token_id=0, **SIZES)
    getattr(transformers, f"{prefix}ForSequenceClassification")(config).save_pretrained(directory)
    if kind == "bert-custom-code":  # e.g. an ALiBi BERT: BERT's names and model_type, its own attention code
        config = json.loads((directory / "config.json").read_text())
        config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_alibi.AlibiBertForSequenceClassification"}
        (directory / "config.json").write_text(json.dumps(config))
    return directory


@pytest.mark.parametrize("asked", [{"features": ["attention"], "attention": "recompute"}, {"features": ["relation"]}],
                         ids=["attention-recompute", "minilm-relation"])
@pytest.mark.parametrize("kind", ["roberta-prelayernorm", "megatron-bert", "bert-custom-code"])
def test_attention_recompute_refuses_unverified_architectures(kind, asked, tmp_path):
    teacher = _teacher(tmp_path / "teacher", kind)
    config = LabelConfig(teacher=str(teacher), dtype="float32", max_length=32, **asked)  # within the 40 positions
    with pytest.raises(ConfigError, match=r"recomputed attention .* is verified only for bert teachers.*"
                                          r"attention: stored, without relation") as error:
        run(_augmented(tmp_path / "augmented"), tmp_path / "out", config)
    assert "\n" not in str(error.value) and kind.split("-custom")[0] in str(error.value)
    assert not list((tmp_path / "out").rglob("part-*"))  # refused before any shard was labelled
    # the same teacher with stored scores (captured while it runs) is fine, as is a BERT teacher with recompute
    prepare_teacher(LabelConfig(teacher=str(teacher), features=["attention"], dtype="float32", max_length=32))
    bert = _teacher(tmp_path / "bert", "bert")
    assert prepare_teacher(LabelConfig(teacher=str(bert), features=["attention"], attention="recompute", max_length=32)
                           ).features.attention_mode == "recompute"
