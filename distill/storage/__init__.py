"""Storage layer shared by all stages: atomic shard writes, manifests, fingerprints, locks."""

from distill.storage.fingerprint import fingerprint_json, hash_file, hash_path, model_fingerprint
from distill.storage.lock import OutputLock, OutputLockedError
from distill.storage.shards import ShardRecord, read_shards, write_shard
from distill.storage.stage_dir import StageDir, StageMismatchError

__all__ = [
    "OutputLock",
    "OutputLockedError",
    "ShardRecord",
    "StageDir",
    "StageMismatchError",
    "fingerprint_json",
    "hash_file",
    "hash_path",
    "model_fingerprint",
    "read_shards",
    "write_shard",
]
