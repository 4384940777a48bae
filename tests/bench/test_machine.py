"""The machine description shared by the quality and speed benches."""

import os
import sys

import keras
import pytest

from keras_mlcl.bench.machine import command_line
from keras_mlcl.bench.machine import machine_description


def test_machine_description_names_the_machine_and_the_backend():
    info = machine_description()
    backend = keras.backend.backend()
    assert info["cpu_count"] == os.cpu_count()
    assert info["backend"] == backend
    assert info["keras"] == keras.__version__
    assert info[backend] == __import__(backend).__version__
    assert info["python"] == ".".join(str(part) for part in sys.version_info[:3])
    assert isinstance(info["processor"], str) and info["processor"]
    assert ("torch_threads" in info) == (backend == "torch")


@pytest.mark.backend_independent
def test_machine_description_records_thread_settings(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert machine_description()["thread_settings"]["OMP_NUM_THREADS"] == "3"


@pytest.mark.backend_independent
def test_command_line_quotes_arguments_and_names_the_cli(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/venv/bin/keras-mlcl", "bench", "quality", "a b"])
    assert command_line() == "keras-mlcl bench quality 'a b'"
    monkeypatch.setattr(sys, "argv", ["run.py", "--x", "1"])
    assert command_line() == "run.py --x 1"
