"""Ray-parallel text augmentation for knowledge distillation (Tang et al. 2019, TinyBERT).

    from augment import AugmentConfig, run
    run("train.csv", "out/augmented", AugmentConfig(rules=["mask", "pos", "ngram"]))
"""

from augment.config import AugmentConfig, ConfigError
from augment.stage import AugmentResult, run

__all__ = ["AugmentConfig", "AugmentResult", "ConfigError", "run"]
