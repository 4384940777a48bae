"""Benchmarks: speed (`keras_mlcl.bench.speed`) and quality (`keras_mlcl.bench.quality`).

The quality bench's grid and run settings are in `grid`, its hyper-parameter selection in
`selection` and its text features in `text_features`; the speed bench's cases are in
`speed_cases`, their timing in `timing` and its backend-specific part in `bench.backend`.
`report` writes the Markdown and the plots of both, and `machine` describes the machine both
ran on.
"""

from keras_mlcl.bench.grid import DEFAULT_GRID
from keras_mlcl.bench.grid import parse_grid
from keras_mlcl.bench.quality import run_quality_bench
from keras_mlcl.bench.selection import select_hyperparameters
from keras_mlcl.bench.speed import run_speed_bench

__all__ = [
    "DEFAULT_GRID",
    "parse_grid",
    "run_quality_bench",
    "run_speed_bench",
    "select_hyperparameters",
]
