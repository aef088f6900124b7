"""Host-side checks of `docker/test.sh`'s batch job: what the containers wrote opens with plain pyarrow,
the reports exist, and every file belongs to the user who ran the job."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds


def main(work: Path) -> None:
    augmented = ds.dataset(work / "out" / "augmented", format="parquet").to_table()
    cache_dir = next((work / "out" / "teacher").glob("*/_manifest.json")).parent
    manifest = json.loads((cache_dir / "_manifest.json").read_text())
    rows = sum(pa.ipc.open_stream(cache_dir / s["file"]).read_all().num_rows for s in manifest["shards"])
    assert rows == manifest["totals"]["rows"] == augmented.num_rows, (rows, augmented.num_rows)
    report = json.loads((work / "student" / "report.json").read_text())
    scores = json.loads((work / "scores.json").read_text())["models"]
    foreign = [str(p) for p in work.rglob("*") if p.lstat().st_uid != os.getuid()]
    assert not foreign, f"files not owned by uid {os.getuid()}: {foreign[:5]}"
    print(f"docker-test: outputs read on the host: {augmented.num_rows} augmented rows, cache of {rows} rows, "
          f"student dev accuracy {report['student']['accuracy']:.3f}, {len(scores)} models scored, all files "
          f"owned by uid {os.getuid()}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
