"""Refuse a recipe whose losses need teacher features the cache lacks, before any training."""

from __future__ import annotations

from distill.cache.features import FeatureSet
from distill.common.config_io import ConfigError

# Needs that are not a labelling feature with layers: what the cache must be, said in words.
_WHOLE = {
    "logits": "full teacher logits, which this cache does not store (a top-k or encoder-only cache); use topk_kd, "
              "or relabel a classifier teacher without --features topk",
    "classes": "a classifier teacher over two or more classes; this cache holds a regression teacher's score "
               "(num_labels = 1): use logit_mse (to the teacher's score) and gold_mse (to the gold score)",
    "score": "a regression teacher's score (num_labels = 1); this cache holds a classifier: use ce, kd or logit_mse",
    "predictions": "the teacher's predicted class (full logits or a classifier's top-k)",
    "class_topk": "a classifier teacher's top-k logits; relabel with --features topk",
    "mlm_topk": "a masked-LM teacher's top-k vocabulary logits at masked positions; label a masked corpus "
                "(pipelines/general_distill_data.py) with a masked-LM teacher",
    "mlm": "masked positions and their true tokens; label a masked corpus (pipelines/general_distill_data.py)",
}


def check_features(stages, features: FeatureSet, student_layers: int, teacher_layers: int, cache: str) -> None:
    """Name the first missing feature and layers, and the labelling flags that add them."""
    for stage in stages:
        for name, loss in stage.build_losses().items():
            for feature, layers in loss.needs(student_layers, teacher_layers).items():
                wanted = set(layers) or {0}
                missing = sorted(wanted - features.available(feature))
                if not missing:
                    continue
                where = f"stage {stage.name!r}, loss {name!r} needs"
                if feature in _WHOLE:
                    raise ConfigError(f"{where} {_WHOLE[feature]} (cache {cache})")
                layers_arg = ",".join(str(x) for x in sorted(wanted))  # no spaces: one shell word
                layer_flag = f" --set label.{feature}_layers=[{layers_arg}]" if feature != "embedding" else ""
                raise ConfigError(
                    f"{where} teacher {feature} "
                    f"{'of layer(s) ' + str(missing) + ' ' if feature != 'embedding' else ''}"
                    f"which the cache {cache} lacks; relabel with --features {feature}{layer_flag}"
                )
