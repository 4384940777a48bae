"""Benchmarks: speed (`keras_mlcl.bench.speed`) and quality (`keras_mlcl.bench.quality`)."""

from keras_mlcl.bench.quality import DEFAULT_GRID
from keras_mlcl.bench.quality import parse_grid
from keras_mlcl.bench.quality import run_quality_bench
from keras_mlcl.bench.quality import select_hyperparameters
from keras_mlcl.bench.speed import run_speed_bench

__all__ = [
    "DEFAULT_GRID",
    "parse_grid",
    "run_quality_bench",
    "run_speed_bench",
    "select_hyperparameters",
]
