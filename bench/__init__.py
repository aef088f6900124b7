"""Benchmarks, experiments and data/model makers; not part of the installed package.

Run from the repository root as modules, e.g. `python -m bench.label --quick`:

    bench/             benchmarks: each prints a table against a named baseline measured in the same run
                       (augment, label, train, general); reference_tinybert is augment's baseline
    bench/experiments/ the pipeline on real data, cached and resumable: quality, sst2_scale, task_shapes, mlm_modes
    bench/makers/      inputs: sst2_split, ner_sample, silver_ner (and bench/proxy_mlm.py, a proxy masked LM)
    bench/common.py    what they share; recipes come from pipelines/configs/ with overrides
"""
