"""Data and model makers: inputs the benchmarks and experiments (and the bundled samples) are built from."""
