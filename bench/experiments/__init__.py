"""Experiments: the whole pipeline on real data, every step cached so a rerun resumes; results tables."""
