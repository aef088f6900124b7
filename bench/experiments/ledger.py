"""An experiment's finished steps as small JSON files in the repository (`docs/results/<experiment>/`), committed
with the table they back. A long experiment outlives the machine that started it: its `out/` (teacher, caches,
checkpoints) is rebuilt by a rerun on the next machine, but its finished runs are not retrained, because the ledger
holds them, and `--report` regenerates the table from the ledger alone."""

from __future__ import annotations

import datetime
import json
import logging
import subprocess
from pathlib import Path
from typing import Any, Callable

REPOSITORY = Path(__file__).resolve().parents[2]
LEDGERS = REPOSITORY / "docs" / "results"
log = logging.getLogger("bench")


class ModelMismatch(RuntimeError):
    """The ledger's runs came from another teacher (or init): adding to them would mix two models in one table."""


def commit() -> str | None:
    """The checked-out commit (provenance of a record), or None outside a git checkout."""
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPOSITORY, capture_output=True, text=True)
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def stamp() -> dict[str, Any]:
    """When (UTC) and at which commit a record was written."""
    return {"recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "commit": commit()}


def versions(held: dict[str, Any], key: str, *later: str) -> set[Any]:
    """`held`'s `key` (a hash, a fingerprint) and those of the accepted rebuilds listed under each of `later`."""
    return {held.get(key), *(entry[key] for name in later for entry in held.get(name, []))}


def figure(record: dict[str, Any], key: str) -> Any:
    """`record`'s value at a dotted `key` (`facts.steps`), None where a part is missing."""
    for part in key.split("."):
        record = record.get(part) if isinstance(record, dict) else None
    return record


class Ledger:
    """`get` / `put` of JSON records by name (`teacher`, `caches/aug`, `runs/bilstm-ce/seed0`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __str__(self) -> str:
        root = self.root.resolve()
        return str(root.relative_to(REPOSITORY) if root.is_relative_to(REPOSITORY) else root)

    def path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def get(self, name: str) -> dict[str, Any] | None:
        path = self.path(name)
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def put(self, name: str, record: dict[str, Any]) -> dict[str, Any]:
        """`record` with when and at which commit it was recorded, unless it already says (a copied record)."""
        record = {**stamp(), **record}
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        return record

    def bind_model(self, name: str, model_files: str, describe: Callable[[], dict[str, Any]],
                   same_figures: tuple[str, ...] = (), redraw: bool = False) -> dict[str, Any]:
        """The record of model `name` (the teacher, an init the runs share): `describe()`'s on first use. A model
        rebuilt on another machine must hash the same (`model_files`), or the ledger's runs came from another one;
        or, where `same_figures` names its record's behaviour (validation after each epoch, test scores), reproduce
        every one of those figures: the same code and seed give other bytes on another CPU's kernels (AMX against
        AVX512 accumulation order), so bytes alone would refuse the same model. Its hash joins `equivalent`.
        With `redraw`, `same_figures` name a recipe instead (an init with no behaviour figures: corpus, steps): a
        rebuild of that recipe is another draw of the init, not the same model, and joins `redrawn` (the runs
        that used it say so)."""
        held = self.get(name)
        if held is None:
            return self.put(name, {"model_files": model_files, **describe()})
        if held.get("model_files") is None:  # transcribed from before the ledger: the rebuilt model's figures beside
            log.warning("%s: no hash recorded; adopting this %s's, its figures under 'rebuilt'", self.path(name), name)
            return self.put(name, {**held, "model_files": model_files, "rebuilt": describe()})
        if model_files in versions(held, "model_files", "equivalent", "redrawn"):
            return held
        figures = describe() if same_figures else {}
        differ = [key for key in same_figures if figure(figures, key) != figure(held, key)]
        if not same_figures or differ:
            raise ModelMismatch(
                f"{self.path(name)}: the ledger's runs used a {name} whose files hash to {held['model_files'][:16]}, "
                f"this one's to {model_files[:16]}{f' and its {differ} differ' if differ else ''}; "
                "pass another --ledger for a new table")
        joins = "redrawn" if redraw else "equivalent"
        log.warning("%s: this %s hashes to %s, not %s, and has its %s: %s", self.path(name), name, model_files[:16],
                    held["model_files"][:16], ", ".join(same_figures),
                    "another draw of its recipe" if redraw else "the same model")
        return self.put(name, {**held, joins: [*held.get(joins, []), {"model_files": model_files, **stamp(),
                                                                      **figures}]})

    def knows_build(self, name: str, fingerprint: str) -> bool:
        """Whether the record `name` holds the build `fingerprint`, first or later."""
        return fingerprint in versions(self.get(name) or {}, "fingerprint", "rebuilds")

    def record_build(self, name: str, record: dict[str, Any], same: tuple[str, ...] = ("rows", "bytes_per_example")
                     ) -> dict[str, Any]:
        """A built artefact's record (a cache: its `fingerprint`, sizes, build seconds). The first build's figures
        stand: a rebuild on another machine with the `same` contents under another fingerprint (its teacher's
        bytes differ, see `bind_model`) joins `rebuilds`; one of other contents replaces the record."""
        held = self.get(name)
        if held is None or any(held.get(key) != record.get(key) for key in same):
            return self.put(name, record)
        return self.put(name, {**held, "rebuilds": [*held.get("rebuilds", []), {**stamp(), **record}]})

    def run(self, row: str, seed: int, protocol: str) -> dict[str, Any] | None:
        """The finished run of (`row`, `seed`) under `protocol`; a record of another protocol is stale."""
        record = self.get(f"runs/{row}/seed{seed}")
        return record if record is not None and record.get("protocol") == protocol else None

    def runs(self, protocol: str) -> list[dict[str, Any]]:
        """Every finished run under `protocol`, of any row."""
        records = (json.loads(p.read_text(encoding="utf-8")) for p in sorted(self.root.glob("runs/*/seed*.json")))
        return [r for r in records if r.get("protocol") == protocol]

    def put_run(self, row: str, seed: int, record: dict[str, Any]) -> dict[str, Any]:
        return self.put(f"runs/{row}/seed{seed}", {"row": row, "seed": seed, **record})
