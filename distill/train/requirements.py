"""Refuse a recipe whose losses need teacher features the cache lacks, before any training."""

from __future__ import annotations

from typing import Any

from distill.storage.config_io import ConfigError

FLAG = {"cls": "cls", "hidden": "hidden", "attention": "attention", "embedding": "embedding"}


def check_features(stages, features: dict[str, Any], student_layers: int, teacher_layers: int, cache: str) -> None:
    """`features`: the cache manifest's `features` block."""
    available = {
        "cls": set(features.get("cls_layers") or []),
        "hidden": set(features.get("hidden_layers") or []) | ({0} if features.get("embedding") else set()),
        "attention": set(features.get("attention_layers") or []),
        "embedding": {0} if features.get("embedding") else set(),
    }
    for stage in stages:
        for name, loss in stage.build_losses().items():
            for feature, layers in loss.needs(student_layers, teacher_layers).items():
                if feature == "logits":
                    continue
                wanted = set(layers) or {0}
                missing = sorted(wanted - available[feature])
                if missing:
                    layers_arg = ",".join(str(x) for x in sorted(wanted))  # no spaces: one shell word
                    layer_flag = f" --set label.{feature}_layers=[{layers_arg}]" if feature != "embedding" else ""
                    raise ConfigError(
                        f"stage {stage.name!r}, loss {name!r} needs teacher {feature} "
                        f"{'of layer(s) ' + str(missing) + ' ' if feature != 'embedding' else ''}"
                        f"which the cache {cache} lacks; relabel with --features {FLAG[feature]}{layer_flag}"
                    )
