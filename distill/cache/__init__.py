"""The teacher cache: the one owner of its format, writer blocks and reader; the trainer never
imports the labelling stage."""

from distill.cache.features import Column, FeatureSet, TeacherDims, column_name
from distill.cache.format import FORMAT_VERSION, CacheError, CacheFormatError
from distill.cache.reader import CacheCorruptError, TeacherCache, load, resolve_cache_dir

__all__ = ["FORMAT_VERSION", "CacheCorruptError", "CacheError", "CacheFormatError", "Column", "FeatureSet",
           "TeacherCache", "TeacherDims", "column_name", "load", "resolve_cache_dir"]
