"""`train`'s help and refusals follow the method options' table; every case comes from it."""

import inspect
import re

import numpy as np
import pytest

from keras_mlcl.cli.main import model_options
from keras_mlcl.cli.parser import parse_arguments
from keras_mlcl.experiments import build_model
from keras_mlcl.experiments import train_and_evaluate
from keras_mlcl.experiments.methods import head_weights
from keras_mlcl.experiments.options import METHOD_OPTIONS
from keras_mlcl.experiments.options import OPTIONS
from keras_mlcl.experiments.options import method_names
from keras_mlcl.losses.temperature import MIN_TEMPERATURE
from tests.cli.commands import command
from tests.cli.commands import one_error_line

pytestmark = pytest.mark.backend_independent


def help_entries(text):
    """`{first word: the entry in one line}` of each option of a `--help` text."""
    chunks = re.split(r"\n(?=  -)", text)
    return {chunk.split()[0]: " ".join(chunk.split()) for chunk in chunks}


@pytest.mark.parametrize("option", METHOD_OPTIONS, ids=lambda option: option.name)
def test_method_option_help_and_refusals_follow_the_table(tmp_path, capfd, monkeypatch, option):
    """The option's help names its methods and default; each method the table leaves out
    refuses it (its default is harmless), each other method takes it."""
    monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps no help line
    monkeypatch.chdir(tmp_path)  # were a refusal missed, the run would fail on `--data` here
    code, out, _ = command(capfd, "train", "--help")
    assert code == 0
    shown = f"{option.scope}: {option.help} (default: {option.default})"
    assert shown in help_entries(out)[option.flag]

    value = str(option.default + 0.5)  # valid for every option, and not its default
    assert any(option.applies_to(method) for method in method_names())
    for method in method_names():
        given = ["train", "--data", "absent.npz", "--method", method, option.flag]
        if option.applies_to(method):
            args = parse_arguments([*given, value])
            assert getattr(args, option.name) == float(value)
            if option.name != "temperature":  # `train_and_evaluate`'s own argument
                assert model_options(args)[option.name] == float(value)
        else:
            code, out, err = command(capfd, *given, value)
            assert code == 2 and out == ""
            refusal = f"`{option.flag}` does not apply to method {method!r} "
            assert refusal + f"(it applies to {option.scope})" in one_error_line(err)
            assert option.name not in model_options(parse_arguments([*given, str(option.default)]))


def test_the_library_defaults_are_the_tables():
    build_model_defaults = inspect.signature(build_model).parameters
    for option in METHOD_OPTIONS:
        assert build_model_defaults[option.name].default == option.default
    temperature = inspect.signature(train_and_evaluate).parameters["temperature"].default
    assert temperature == next(o.default for o in METHOD_OPTIONS if o.name == "temperature")


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--temperature", "1e-40", "a positive number >= 0.0001"),
        ("--temperature", "5e-05", "a positive number >= 0.0001"),
        ("--coarse-temperature", "1e-05", "a positive number >= 0.0001"),
        ("--weight-power", "1e308", "a non-negative number <= 10.0"),
        ("--weight-power", "10.5", "a non-negative number <= 10.0"),
    ],
)
def test_values_out_of_an_options_range_are_one_line(capfd, flag, value, expected):
    """`--temperature 1e-40` trained to NaN and `--weight-power 1e308` divided by zero; both
    are refused by the parser, naming the flag and its range."""
    code, out, err = command(capfd, "train", "--method", "mlcl-labels", flag, value)
    assert code == 2 and out == ""
    assert f"argument {flag}: should be {expected}, not {value!r}" in one_error_line(err)


def test_the_ends_of_an_options_range_are_taken():
    method = ["train", "--method", "mlcl-labels"]
    assert parse_arguments([*method, "--temperature", "1e-4"]).temperature == 1e-4
    assert parse_arguments([*method, "--weight-power", "10"]).weight_power == 10.0
    assert parse_arguments(["train", "--coarse-temperature", "1e-4"]).coarse_temperature == 1e-4


def test_the_tables_minimum_temperature_is_the_losses():
    """The table cannot import the losses (they import Keras): the two numbers are one."""
    assert OPTIONS["temperature"].at_least == MIN_TEMPERATURE
    assert OPTIONS["coarse_temperature"].at_least == MIN_TEMPERATURE


def test_head_weights_refuse_a_power_out_of_range_and_stay_finite_at_its_end():
    """In the API: `weight_power=1e308` raised ZeroDivisionError (every share ** 1e308 is 0).
    At the largest power, 10, a head held by 1 row of 1000 still weighs a positive finite
    share ** 10, scaled to a mean of 1."""
    with pytest.raises(ValueError, match=r"`weight_power` should be a non-negative number <= 10"):
        head_weights(np.eye(2, dtype=int), {"a": [0], "b": [1]}, 1e308)
    labels = np.zeros((1000, 2), int)
    labels[:999, 0] = 1
    labels[999, 1] = 1
    weights = head_weights(labels, {"a": [0], "b": [1]}, 10.0)
    raw = np.array([0.999**10, 0.001**10])
    assert [weights["a"], weights["b"]] == pytest.approx(list(raw / raw.mean()), rel=1e-12)
    assert weights["b"] > 0
