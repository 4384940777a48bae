"""Entry point of the `keras-mlcl` console script: the command line is parsed here.

It lives outside the `keras_mlcl` package because importing that package
imports Keras (and, through it, TensorFlow): this module imports only the
standard library, so `--help`, `--version` and usage errors answer at
once. For a real command, TensorFlow (when installed) is then imported
with stderr muted, under every backend, since Keras imports it later anyway
(tf.data input, SavedModel export): its C++ start-up logging, which no
setting fully silences, never reaches the terminal, and the command's own
messages, errors included, stand alone on stderr. The commands themselves
are in `keras_mlcl.cli.main`.
"""

import argparse
import importlib.metadata
import os
import re
import sys

DEFAULT_DATA = "fashion_mnist"
DEFAULT_METHOD = "mlcl"
DEFAULT_EPOCHS = 15
# `build_model`'s defaults (`keras_mlcl.experiments.methods`), repeated to stay import-free.
MODEL_OPTION_DEFAULTS = {
    "coarse_temperature": 0.5,
    "coarse_weight": 1.0,
    "weight_power": 0.0,
    "ce_weight": 1.0,
}
METHODS_HELP = (
    "ce, supcon, mlcl, himulcon, simdis, supcon-any, jaccard, bce, mlcl-labels, mlcl-groups, "
    "or <method>+ce (not ce, bce, mlcl-labels, mlcl-groups)"
)


class OneLineParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose usage errors are one line on stderr (exit code 2)."""

    def error(self, message):
        self.exit(2, f"keras-mlcl: error: {message} (see `{self.prog} --help`)\n")


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that ends every option with its default (unless the help already says it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        unset = action.default is None or action.default is False
        quiet = unset or action.default == argparse.SUPPRESS or not action.option_strings
        if quiet or "%(default)" in text or "default" in text:
            return text
        return f"{text} (default: %(default)s)"


def version():
    """The installed package's version, read without importing `keras_mlcl` (nor Keras)."""
    try:
        return importlib.metadata.version("keras-mlcl")
    except importlib.metadata.PackageNotFoundError:  # a source tree that is not installed
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_mlcl", "version.py")
        with open(path, encoding="utf-8") as f:
            return re.search(r"__version__ = \"([^\"]+)\"", f.read()).group(1)


def int_at_least(minimum, what):
    """An argparse type: an int >= `minimum`, described as `what` in errors."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"should be a {what} integer, not {text!r}")
        return value

    return parse


def float_above(minimum, inclusive, what):
    """An argparse type: a finite float > `minimum` (>= when `inclusive`)."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        fits = value >= minimum if inclusive else value > minimum
        if not (fits and value < float("inf")):
            raise argparse.ArgumentTypeError(f"should be a {what} number, not {text!r}")
        return value

    return parse


def epochs_per_fraction(text):
    """An argparse type: `"0.1:30,1.0:5"` as `{0.1: 30, 1.0: 5}`."""
    epochs = {}
    for part in text.split(","):
        fraction, _, count = part.partition(":")
        try:
            key, value = float(fraction), int(count)
        except ValueError:
            key, value = 0.0, 0
        if not 0 < key <= 1 or value < 1 or key in epochs:
            raise argparse.ArgumentTypeError(
                f"should be FRACTION:EPOCHS pairs such as 0.1:30,1.0:5, not {text!r}"
            )
        epochs[key] = value
    return epochs


positive_int = int_at_least(1, "positive")
non_negative_int = int_at_least(0, "non-negative")
positive_float = float_above(0.0, False, "positive")
non_negative_float = float_above(0.0, True, "non-negative")


def add_training_options(train):
    """The `train` options of the method and the optimiser (the bench grid's knobs)."""
    train.add_argument(
        "--method",
        default=DEFAULT_METHOD,
        metavar="METHOD",
        help=f"training method: {METHODS_HELP}",
    )
    train.add_argument(
        "--loss", dest="method", default=argparse.SUPPRESS, help=argparse.SUPPRESS
    )  # the former name
    train.add_argument(
        "--epochs", type=positive_int, default=DEFAULT_EPOCHS, help="training epochs"
    )
    train.add_argument(
        "--fraction", type=float, default=1.0, help="fraction of the training data used, in (0, 1]"
    )
    train.add_argument("--seed", type=non_negative_int, default=0, help="seeds data and weights")
    train.add_argument(
        "--batch-size", type=positive_int, default=256, help="samples per training batch"
    )
    train.add_argument("--views", type=positive_int, default=2, help="views per sample")
    train.add_argument("--lr", type=positive_float, default=1e-3, help="Adam's learning rate")
    train.add_argument(
        "--temperature",
        type=positive_float,
        default=0.1,
        help="temperature of the (finest) contrastive head",
    )
    train.add_argument(
        "--coarse-temperature",
        type=positive_float,
        default=MODEL_OPTION_DEFAULTS["coarse_temperature"],
        help="mlcl: temperature of the heads of the levels coarser than the finest",
    )
    train.add_argument(
        "--coarse-weight",
        type=non_negative_float,
        default=MODEL_OPTION_DEFAULTS["coarse_weight"],
        help="mlcl: weight of those coarser heads (the finest head's is 1)",
    )
    train.add_argument(
        "--weight-power",
        type=non_negative_float,
        default=MODEL_OPTION_DEFAULTS["weight_power"],
        help="mlcl-labels, mlcl-groups: each head weighs the share of rows with one of its "
        "labels to this power (scaled to a mean of 1)",
    )
    train.add_argument(
        "--ce-weight",
        type=positive_float,
        default=MODEL_OPTION_DEFAULTS["ce_weight"],
        help="<method>+ce: weight of the joint cross-entropy on the finest level",
    )


def build_parser():
    """The `keras-mlcl` argument parser (standard library only)."""
    parser = OneLineParser(
        prog="keras-mlcl",
        description="Multi-level supervised contrastive learning with Keras 3. "
        "The backend is KERAS_BACKEND (tensorflow, jax or torch).",
    )
    parser.add_argument("--version", action="version", version=f"keras-mlcl {version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    train = commands.add_parser(
        "train",
        help="train, evaluate per level and export",
        formatter_class=DefaultsHelpFormatter,
        description="Trains a model with a contrastive method, evaluates it per label level "
        "(linear probe, kNN and retrieval on the frozen encoder), saves model.keras, the "
        "training history (history.csv, loss_<head>.png), exports a TF SavedModel and plots "
        "the test embeddings. With no arguments: the bundled Fashion-MNIST subset (2 levels), "
        "method mlcl, written to saved_models/.",
    )
    train.add_argument("--data", default=DEFAULT_DATA, help="dataset name or .npz path")
    add_training_options(train)
    train.add_argument(
        "--data-dir", help="folder holding the named datasets (default: $KERAS_MLCL_DATA)"
    )
    train.add_argument(
        "--out",
        help="run folder (default: saved_models/<data>_<method>): new, empty, or an earlier run "
        "with --overwrite; a folder holding anything else is refused",
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier keras-mlcl run in --out, once the new run is complete",
    )
    train.add_argument(
        "--tensorboard", action="store_true", help="write TensorBoard logs to <out>/tensorboard"
    )
    train.add_argument("--no-export", action="store_true", help="skip the TF SavedModel export")
    train.add_argument("--quiet", action="store_true", help="no progress output")

    evaluate = commands.add_parser(
        "evaluate",
        help="score a saved model per level",
        formatter_class=DefaultsHelpFormatter,
        description="Loads a model.keras written by `train` and prints (and writes) linear-probe, "
        "kNN and retrieval scores per label level of a dataset. The probe and the kNN "
        "references use the rows that `train` used when the run's results.json is beside the "
        "model and the data is the same; else the whole training split.",
    )
    evaluate.add_argument("--model", required=True, help="path to a model.keras")
    evaluate.add_argument("--data", required=True, help="dataset name or .npz path")
    evaluate.add_argument(
        "--data-dir", help="folder holding the named datasets (default: $KERAS_MLCL_DATA)"
    )
    evaluate.add_argument(
        "--out", help="metrics JSON file (default: metrics.json beside the model)"
    )
    evaluate.add_argument(
        "--overwrite", action="store_true", help="replace a metrics file written by keras-mlcl"
    )
    evaluate.add_argument("--quiet", action="store_true", help="print nothing")

    bench = commands.add_parser("bench", help="quality and speed benchmarks")
    benches = bench.add_subparsers(dest="bench", required=True, parser_class=OneLineParser)
    quality = benches.add_parser(
        "quality",
        help="compare methods on one dataset",
        formatter_class=DefaultsHelpFormatter,
        description="Trains every method with the same encoder, optimiser, epochs and batch; "
        "hyper-parameters are chosen on a validation split of the training data; writes "
        "DIR/results.json (test score per level: mean, std, runs), meta.json, results.md and "
        "a PNG plot.",
    )
    quality.add_argument("--data", required=True, help="dataset name or .npz path")
    quality.add_argument(
        "--methods", help="comma-separated method names (default: all that fit the data)"
    )
    quality.add_argument("--fractions", default="0.1,1.0", help="comma-separated, each in (0, 1]")
    quality.add_argument("--seeds", type=positive_int, default=3, help="runs per configuration")
    epochs = quality.add_mutually_exclusive_group()
    epochs.add_argument(
        "--epochs", type=positive_int, default=15, help="training epochs of each run"
    )
    epochs.add_argument(
        "--epochs-per-fraction",
        type=epochs_per_fraction,
        metavar="F:E,...",
        help="training epochs per fraction, e.g. 0.1:30,1.0:5 (one entry per --fractions)",
    )
    quality.add_argument(
        "--grid",
        help="JSON {method: {parameter: [values]}}; '{}' for none (default: the built-in grid)",
    )
    quality.add_argument(
        "--data-dir", help="folder holding the named datasets (default: $KERAS_MLCL_DATA)"
    )
    quality.add_argument("--out", required=True, help="output folder (new, empty, or --overwrite)")
    quality.add_argument(
        "--overwrite", action="store_true", help="replace an earlier bench in --out when done"
    )
    quality.add_argument("--quiet", action="store_true", help="no progress output")
    speed = benches.add_parser(
        "speed",
        help="loss and step cost ratios on the active backend",
        formatter_class=DefaultsHelpFormatter,
        description="Measures, in one process, the cost ratios (loss vs bare matmul, "
        "4 heads vs 4 single heads, fit step vs CE step) and, on torch, the speed-up over "
        "pytorch-metric-learning's SupConLoss; writes DIR/speed.json and DIR/speed.md.",
    )
    speed.add_argument("--out", required=True, help="output folder")
    speed.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    speed.add_argument(
        "--cases",
        default=None,
        help="comma-separated cases to run (default: all), e.g. "
        "supcon_vs_matmul,supcon_16k_vs_matmul,dist_replica_vs_global",
    )
    speed.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def import_tensorflow_quietly():
    """Imports TensorFlow, if installed, and finds its devices with the process's stderr muted.

    Its C++ start-up logging (oneDNN, CPU features, CUDA) goes to a muted stderr then, once.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow

        tensorflow.config.list_physical_devices()  # CUDA's start-up lines, if any, come now
    except ImportError:
        pass
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def run(argv=None):
    """Parses `argv` (exits 0 on --help/--version, 2 on a usage error), then runs the command.

    Returns:
        The exit code.
    """
    args = build_parser().parse_args(argv)
    import_tensorflow_quietly()
    from keras_mlcl.cli.main import run_command

    return run_command(args)


def main():
    sys.exit(run())
