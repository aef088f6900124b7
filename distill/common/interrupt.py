"""What a stopped run says: every stage commits atomically, so Ctrl-C loses at most the shards in
flight, and the same command resumes (the entry points print this and exit 130, as shells expect)."""

INTERRUPTED = "interrupted; rerun the same command to resume (finished shards and checkpoints are kept)"
