"""Storage layer shared by all stages: atomic shard writes, manifests, fingerprints, locks, the stage runner."""

from distill.storage.lock import OutputLock, OutputLockedError
from distill.storage.runner import StageResult, StageRun, run_sharded_stage
from distill.storage.stage_dir import StageDir, StageMismatchError

__all__ = ["OutputLock", "OutputLockedError", "StageDir", "StageMismatchError", "StageResult", "StageRun",
           "run_sharded_stage"]
