"""Refuse a recipe whose losses need teacher features the cache lacks, before any training."""

from __future__ import annotations

from distill.cache.features import FeatureSet
from distill.common.config_io import ConfigError


def check_features(stages, features: FeatureSet, student_layers: int, teacher_layers: int, cache: str) -> None:
    """Name the first missing feature and layers, and the labelling flags that add them."""
    for stage in stages:
        for name, loss in stage.build_losses().items():
            for feature, layers in loss.needs(student_layers, teacher_layers).items():
                if feature == "logits":
                    continue
                wanted = set(layers) or {0}
                missing = sorted(wanted - features.available(feature))
                if missing:
                    layers_arg = ",".join(str(x) for x in sorted(wanted))  # no spaces: one shell word
                    layer_flag = f" --set label.{feature}_layers=[{layers_arg}]" if feature != "embedding" else ""
                    raise ConfigError(
                        f"stage {stage.name!r}, loss {name!r} needs teacher {feature} "
                        f"{'of layer(s) ' + str(missing) + ' ' if feature != 'embedding' else ''}"
                        f"which the cache {cache} lacks; relabel with --features {feature}{layer_flag}"
                    )
