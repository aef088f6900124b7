"""Where an input comes from (one suffix table, hub names, `save_to_disk` folders, parquet) and its identity
for a manifest. `ClassLabel` ids become their names here: later stages match labels by name, never position."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from distill.common.columns import Columns
from distill.errors import InputError
from distill.hashing import fingerprint_json, hash_path

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
           ".parquet": "parquet", ".txt": "txt", ".text": "txt", ".conll": "conll", ".conll03": "conll",
           ".iob": "conll", ".bio": "conll"}
PATH_SUFFIXES = (*FORMATS, ".arrow")  # a name ending so is a path, never a hub dataset
HUB_PREFIX = "hf://"
OFFLINE_HINT = "needs the network or a local copy (a save_to_disk folder or a data file)"
SAVED_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")  # what save_to_disk writes
SURROGATE = re.compile("[\udc80-\udcff]")  # an undecodable byte, read with errors="surrogateescape"
_TEXT_CONTROLS = frozenset("\t\n\r\f\v")  # the only C0 control characters text files hold


@dataclass(frozen=True)
class HubName:
    name: str
    config: str | None = None

    def __str__(self) -> str:
        return self.name + (f":{self.config}" if self.config else "")


def hub_name(source: str | os.PathLike) -> HubName | None:
    """The hub dataset `source` names (`glue/sst2`: dataset and configuration, `hf://name:config`), or None
    for a local path: existing, absolute, ./ or ../, more than one slash, or a file suffix."""
    text = str(source)
    if text.startswith(HUB_PREFIX):
        text = text[len(HUB_PREFIX):]
    elif (Path(text).exists() or Path(text).is_absolute() or text.startswith((".", "~")) or text.count("/") > 1
          or Path(text).suffix.lower() in PATH_SUFFIXES or not text):
        return None
    name, _, config = text.partition(":")
    first, _, rest = name.partition("/")
    if not config and first in ("glue", "super_glue") and rest:
        name, config = first, rest
    return HubName(name, config or None)


def source_format(source: str | os.PathLike) -> str:
    """hub, datasets (a local folder), or the format the suffix names ("" for an unknown one)."""
    if hub_name(source) is not None:
        return "hub"
    return "datasets" if Path(source).is_dir() else FORMATS.get(Path(source).suffix.lower(), "")


def input_format(path: str | os.PathLike, cols: Columns | None = None) -> str:
    """The format of a labelled input: csv, tsv, jsonl, parquet, conll, datasets or hub."""
    fmt = source_format(path)
    if fmt != "hub" and cols is not None and cols.format == "conll":
        return "conll"
    if fmt in ("", "txt"):
        raise InputError(f"{path}: unsupported input format {Path(path).suffix.lower()!r} (use csv, tsv, jsonl, "
                         "parquet, CoNLL text, a datasets directory or a hub dataset name)")
    return fmt


def local_or_hub(source: str | os.PathLike, cols: Columns) -> str | Path:
    """A hub name as text, else the local path, which must exist."""
    if input_format(source, cols) == "hub":
        return str(source)
    if not Path(source).exists():
        raise InputError(f"{source}: input file not found")
    return Path(source)


def input_identity(source: str | os.PathLike, split: str = "train", cols: Columns | None = None) -> dict[str, str]:
    """{path, format, fingerprint} of an input for a manifest: a local file's or folder's hash, or the hub's."""
    fmt, name = input_format(source, cols), hub_name(source)
    if name is None:
        return {"path": str(source), "format": fmt, "fingerprint": hash_path(source)}
    fingerprint = dataset_fingerprint(load_dataset(f"{HUB_PREFIX}{name}", split), name.name, name.config, split)
    return {"path": str(name), "format": fmt, "fingerprint": fingerprint}


def dataset_fingerprint(dataset, name: str, config: str | None, split: str | None) -> str:
    """A hub dataset's identity: its `datasets` fingerprint changes when the dataset's files do."""
    return fingerprint_json({"name": name, "config": config, "split": split,
                             "dataset_fingerprint": getattr(dataset, "_fingerprint", None)})


def check_text_file(path: Path) -> None:
    """Refuse a file whose first 8 KiB hold a NUL or are a quarter invalid UTF-8 or controls, in one line that
    does not echo its bytes (a few bad bytes, a latin-1 "café", are rejects of their rows)."""
    with open(path, "rb") as handle:
        sample = handle.read(8192)
    offset = sample.find(b"\0")
    if offset < 0:
        text = sample.decode("utf-8", errors="surrogateescape")
        bad = [i for i, ch in enumerate(text) if SURROGATE.match(ch) or (ch < " " and ch not in _TEXT_CONTROLS)]
        if sample and len(bad) * 4 >= len(sample):
            offset = len(text[: bad[0]].encode("utf-8", errors="surrogateescape"))
    if offset >= 0:
        raise InputError(f"{path}: not a text file (binary content at byte {offset}); csv, tsv and jsonl inputs "
                         "must be UTF-8 text (not compressed, not UTF-16)")


def require_columns(have: list[str], wanted: list[str], where: str | os.PathLike, hint: str = "") -> None:
    """One `InputError` for the first `wanted` column the input lacks, naming the ones it has."""
    for name in wanted:
        if name not in have:
            raise InputError(f"{where}: no column {name!r} (columns: {', '.join(have)}){hint}")


def parquet_table(path: Path, where: str | os.PathLike, columns: list[str], hint: str = "") -> pa.Table:
    """The `columns` of a parquet file, refused in one line if it is not parquet or lacks one."""
    try:
        schema = pq.read_schema(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several types for a broken file
        raise InputError(f"{where}: not a readable parquet file ({' '.join(str(err).split())})") from None
    require_columns(schema.names, columns, where, hint)
    return with_label_names(pq.read_table(path, columns=columns))


def load_dataset(source: str | os.PathLike, split: str | None = "train"):
    """The `datasets.Dataset` behind a hub name, a `save_to_disk` folder or a folder of data files."""
    import datasets

    name, path = hub_name(source), Path(source)
    if name is None and path.is_dir() and any((path / marker).exists() for marker in SAVED_MARKERS):
        loaded, where = datasets.load_from_disk(str(path)), str(path)
    else:
        target, config, where = (name.name, name.config, str(name)) if name else (str(path), None, str(path))
        try:
            loaded = datasets.load_dataset(target, config, split=split)
        except Exception as err:  # noqa: BLE001 - offline, missing, gated and malformed datasets differ in type
            reason = " ".join(str(err).split())[:200]
            if name is None:
                raise InputError(f"{where}: not a dataset folder datasets can read ({reason})") from None
            raise InputError(f"{where}: not a local file or folder, and the hub dataset could not be loaded "
                             f"({reason}); it {OFFLINE_HINT}") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise InputError(f"{where}: no split {split!r} (splits: {', '.join(loaded)}); pass --split")
        loaded = loaded[split]
    return loaded


def dataset_table(dataset) -> pa.Table:
    """A `datasets.Dataset`'s rows as an Arrow table, in the dataset's order, labels by name."""
    if getattr(dataset, "_indices", None) is not None:  # a select/shuffle view: materialise its order
        dataset = dataset.flatten_indices()
    return with_label_names(dataset.data.table, dataset.features)


def with_label_names(table: pa.Table, features=None) -> pa.Table:
    """`ClassLabel` columns (and lists of them) with each id replaced by its name (-1, "no label": null);
    `features` default to those the schema metadata records (parquet from `datasets`)."""
    if features is None and b"huggingface" not in (table.schema.metadata or {}):
        return table
    import datasets

    features = datasets.Features.from_arrow_schema(table.schema) if features is None else features
    for column, feature in features.items():
        inner = getattr(feature, "feature", None)  # a list of labels: one per word
        label = feature if inner is None else inner
        if column in table.column_names and isinstance(label, datasets.ClassLabel):
            name, values = dict(enumerate(label.names)).get, table.column(column).to_pylist()  # -1, None: null
            if inner is None:
                values, kind = [name(v) for v in values], pa.string()
            else:
                values, kind = [None if v is None else [name(i) for i in v] for v in values], pa.list_(pa.string())
            table = table.set_column(table.column_names.index(column), column, pa.array(values, kind))
    return table
