"""`train`'s help and refusals follow the method options' table; every case comes from it."""

import inspect
import re

import pytest

from keras_mlcl.cli.main import model_options
from keras_mlcl.cli.parser import parse_arguments
from keras_mlcl.experiments import build_model
from keras_mlcl.experiments import train_and_evaluate
from keras_mlcl.experiments.options import METHOD_OPTIONS
from keras_mlcl.experiments.options import method_names
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
