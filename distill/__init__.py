"""Distillation side of the pipeline: teacher labelling, cached targets, student training.

`distill.storage` is the storage layer shared by every stage (shard I/O, manifests,
fingerprints, locks); it is deliberately free of model code so that `augment/` can
import it without knowing anything about teachers or students.
"""
