"""Benchmarks: speed (`keras_mlcl.bench.speed`) and quality (`keras_mlcl.bench.quality`)."""

from keras_mlcl.bench.speed import run_speed_bench

__all__ = ["run_speed_bench"]
