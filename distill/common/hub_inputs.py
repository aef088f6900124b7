"""Hugging Face datasets as inputs: hub names, local dataset folders and `save_to_disk` directories.

Wherever the pipeline takes a file it also takes a dataset, read with `datasets` and handed to the
same row validation as a file:
- `glue/sst2`, `hf://nyu-mll/glue:sst2`, `imdb`, `owner/name:config`: `datasets.load_dataset(name,
  config, split=split)`. `glue/...` and `super_glue/...` name the dataset and its configuration
  (the GLUE convention); any other `a/b` is the hub repository `a/b`. `:config` picks a configuration.
- a `save_to_disk` folder: `datasets.load_from_disk` (a DatasetDict takes `split`);
- any other local folder of data files (a hub dataset cloned to disk): `datasets.load_dataset(folder, split)`.
Offline, a hub name fails in one line saying it needs the network or a local copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from distill.storage.fingerprint import fingerprint_json

HUB_PREFIX = "hf://"
MULTI_CONFIG_DATASETS = ("glue", "super_glue")  # `glue/sst2` = dataset glue, configuration sst2
OFFLINE_HINT = "needs the network or a local copy (a save_to_disk folder or a data file)"
SAVED_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")  # what save_to_disk writes
# suffixes of the files the readers take (text, labelled, token and corpus inputs): such a name is a path
FILE_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".parquet", ".txt", ".text", ".conll", ".conll03",
                 ".iob", ".bio", ".arrow")


class HubInputError(ValueError):
    """A dataset input that cannot be read (one line: the name, why, what to do)."""


@dataclass(frozen=True)
class HubName:
    name: str
    config: str | None = None

    def __str__(self) -> str:
        return self.name + (f":{self.config}" if self.config else "")


def hub_name(source: str | os.PathLike) -> HubName | None:
    """The hub dataset `source` names, or None for a local path (existing, or path-like: absolute,
    relative with ./ or ../, more than one slash, or a file suffix)."""
    text = str(source)
    explicit = text.startswith(HUB_PREFIX)
    if explicit:
        text = text[len(HUB_PREFIX):]
    elif (Path(text).exists() or Path(text).is_absolute() or text.startswith((".", "~")) or text.count("/") > 1
          or Path(text).suffix.lower() in FILE_SUFFIXES or not text):
        return None
    name, _, config = text.partition(":")
    first, _, rest = name.partition("/")
    if not config and first in MULTI_CONFIG_DATASETS and rest:
        name, config = first, rest
    return HubName(name, config or None)


def is_saved_dataset(path: Path) -> bool:
    """A `save_to_disk` folder (a Dataset or a DatasetDict)."""
    return path.is_dir() and any((path / marker).exists() for marker in SAVED_MARKERS)


def _one_split(loaded, where: str, split: str | None):
    import datasets

    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise HubInputError(f"{where}: no split {split!r} (splits: {', '.join(loaded)}); pass --split")
        loaded = loaded[split]
    return loaded


def load_dataset_input(source: str | os.PathLike, split: str | None = "train"):
    """The `datasets.Dataset` behind a hub name or a local dataset folder (one split of it)."""
    import datasets

    name = hub_name(source)
    path = Path(source)
    if name is None and is_saved_dataset(path):
        return _one_split(datasets.load_from_disk(str(path)), str(path), split)
    target, config, where = (name.name, name.config, str(name)) if name else (str(path), None, str(path))
    try:
        loaded = datasets.load_dataset(target, config, split=split)
    except Exception as err:  # noqa: BLE001 - offline, missing, gated and malformed datasets differ in type
        reason = " ".join(str(err).split())[:200]
        if name is None:
            raise HubInputError(f"{where}: not a dataset folder datasets can read ({reason})") from None
        raise HubInputError(f"{where}: not a local file or folder, and the hub dataset could not be loaded "
                            f"({reason}); it {OFFLINE_HINT}") from None
    return _one_split(loaded, where, split)


def arrow_table(dataset):
    """A `datasets.Dataset`'s rows as an Arrow table, in the dataset's order."""
    if getattr(dataset, "_indices", None) is not None:  # a select/shuffle view: materialise its order
        dataset = dataset.flatten_indices()
    return dataset.data.table


def hub_fingerprint(name: HubName, split: str | None) -> str:
    """A hub dataset's identity: its name, configuration, split and `datasets` fingerprint (which
    changes when the dataset's files do)."""
    dataset = load_dataset_input(f"{HUB_PREFIX}{name}", split)
    return fingerprint_json({"name": name.name, "config": name.config, "split": split,
                             "dataset_fingerprint": getattr(dataset, "_fingerprint", None)})
