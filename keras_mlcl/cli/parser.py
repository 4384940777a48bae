"""The `keras-mlcl` command line: one `add_<command>` function per command, and the checks.

It imports the standard library, `keras_mlcl.version` and the method options' table
(`keras_mlcl.experiments.options`) only: the launcher (`keras_mlcl_launcher`) loads it before
Keras, so that `--help`, `--version` and usage errors answer at once. Keep it so. The commands
themselves run in `keras_mlcl.cli.main`.
"""

import argparse
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import NoReturn

from keras_mlcl.experiments.options import METHOD_OPTIONS
from keras_mlcl.experiments.options import METHODS
from keras_mlcl.experiments.options import WITHOUT_JOINT_CE
from keras_mlcl.experiments.options import MethodOption
from keras_mlcl.experiments.options import parse_method
from keras_mlcl.version import __version__

PROG = "keras-mlcl"
DEFAULT_DATA = "fashion_mnist"
DEFAULT_METHOD = "mlcl"
DEFAULT_EPOCHS = 15
# Options naming a file or folder: an empty string is refused (it would mean the default).
PATH_OPTIONS = ("data", "test_data", "data_dir", "references", "model", "run", "out")
METHODS_HELP = f"{', '.join(METHODS)}, or <method>+ce (not {', '.join(WITHOUT_JOINT_CE)})"


def one_error_line(prog: str, message: str) -> str:
    """A usage error as the one line the command prints on stderr."""
    return f"{PROG}: error: {message} (see `{prog} --help`)\n"


class OneLineParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose usage errors are one line on stderr (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, one_error_line(self.prog, message))


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help that ends every option with its default (unless the help already says it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        unset = action.default is None or action.default is False
        quiet = unset or action.default == argparse.SUPPRESS or not action.option_strings
        if quiet or "%(default)" in text or "default" in text:
            return text
        return f"{text} (default: %(default)s)"


def int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse type: an int >= `minimum`, described as `what` in errors."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"should be a {what} integer, not {text!r}")
        return value

    return parse


def float_above(minimum: float, inclusive: bool, what: str) -> Callable[[str], float]:
    """An argparse type: a finite float > `minimum` (>= when `inclusive`)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        fits = value >= minimum if inclusive else value > minimum
        if not (fits and value < float("inf")):
            raise argparse.ArgumentTypeError(f"should be a {what} number, not {text!r}")
        return value

    return parse


def option_value(option: MethodOption) -> Callable[[str], float]:
    """An argparse type: a valid value of the method option `option` (its `expected`)."""

    def parse(text: str) -> float:
        try:
            return option.check(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"should be {option.expected}, not {text!r}") from None

    return parse


def epochs_per_fraction(text: str) -> dict[float, int]:
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

DATA_HELP = (
    "dataset name, or a .npz, .csv, .parquet or .jsonl file, or a folder written by Hugging Face "
    "datasets' save_to_disk (a table needs --label-columns)"
)
PLOTS = ("tsne", "pca", "none")
TABLE_OPTIONS = ("label_columns", "text_column", "feature_columns", "id_column", "label_separator")

# What `ArgumentParser.add_subparsers` returns (argparse's `_SubParsersAction`, a private name).
Subparsers = Any


def add_training_options(train: argparse.ArgumentParser) -> None:
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
    for option in METHOD_OPTIONS:
        train.add_argument(
            option.flag,
            type=option_value(option),
            default=option.default,
            help=f"{option.scope}: {option.help}",
        )


def add_table_options(parser: argparse.ArgumentParser) -> None:
    """The options that say how to read a table (`--data` a .csv, .parquet or .jsonl file)."""
    parser.add_argument(
        "--label-columns",
        metavar="COARSE,FINE",
        help="a table's label columns, coarse to fine (string or int values); each is a level "
        "named as its column",
    )
    parser.add_argument(
        "--text-column", metavar="COL", help="a table's text column (the inputs are its strings)"
    )
    parser.add_argument(
        "--feature-columns",
        metavar="A,B,...",
        help="a table's feature columns (default: every other numeric column)",
    )
    parser.add_argument(
        "--id-column", metavar="COL", help="a table's id column (names the rows in search results)"
    )
    parser.add_argument(
        "--label-separator",
        metavar="SEP",
        help="splits a multi-label column's values (e.g. 'a|b' with '|') into several labels",
    )


def add_train(commands: Subparsers) -> None:
    """The `train` command."""
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
    train.add_argument("--data", default=DEFAULT_DATA, help=DATA_HELP)
    add_table_options(train)
    train.add_argument(
        "--test-data",
        metavar="FILE",
        help="a table with the same columns as --data, the test rows (default: a stratified "
        "20%% of --data held out)",
    )
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
    train.add_argument(
        "--plot",
        choices=PLOTS,
        default="tsne",
        help="2-D plot of the test embeddings: t-SNE (of at most 5,000 points), PCA, or none",
    )
    train.add_argument("--quiet", action="store_true", help="no progress output")


def add_evaluate(commands: Subparsers) -> None:
    """The `evaluate` command."""
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
    evaluate.add_argument("--data", required=True, help=DATA_HELP)
    add_table_options(evaluate)
    evaluate.add_argument(
        "--test-data", metavar="FILE", help="a table with the same columns as --data, the test rows"
    )
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


def add_bench(commands: Subparsers) -> None:
    """The `bench quality` and `bench speed` commands."""
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
    speed.add_argument("--out", required=True, help="output folder (new, empty, or --overwrite)")
    speed.add_argument(
        "--overwrite", action="store_true", help="replace an earlier bench in --out when done"
    )
    speed.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    speed.add_argument(
        "--cases",
        default=None,
        help="comma-separated cases to run (default: all), e.g. "
        "supcon_vs_matmul,supcon_16k_vs_matmul,dist_replica_vs_global",
    )
    speed.add_argument("--quiet", action="store_true", help="no progress output")


def add_search(commands: Subparsers) -> None:
    """The `search` command."""
    search = commands.add_parser(
        "search",
        help="find a run's nearest stored items of each query, per level",
        formatter_class=DefaultsHelpFormatter,
        description="For each row of --data (a table with the run's feature or text columns; "
        "its labels and ids may be there too), finds the --k nearest items of the run's "
        "training rows (or of --references) by cosine similarity of the encoder's embedding or "
        "of one head's (--head: search at that level), and writes one CSV row per (query, "
        "rank): query, rank, reference, score, then the reference's label at each level.",
    )
    add_run_options(search, "the queries", "the CSV file to write (must not exist)")
    search.add_argument("--k", type=positive_int, default=10, help="neighbours per query")
    search.add_argument(
        "--references",
        metavar="FILE",
        help="search these items instead of the run's training rows (a table like --data)",
    )


def add_embed(commands: Subparsers) -> None:
    """The `embed` command."""
    embed = commands.add_parser(
        "embed",
        help="write a run's embeddings of a table",
        formatter_class=DefaultsHelpFormatter,
        description="Writes the embeddings of --data's rows (a table with the run's feature or "
        "text columns, or an .npz with x) by a run's encoder or one of its heads: an .npz "
        "(ids, embeddings) or a .parquet (an id column and one column per dimension).",
    )
    add_run_options(embed, "the items", "an .npz or .parquet file to write (must not exist)")


def add_run_options(parser: argparse.ArgumentParser, data: str, out: str) -> None:
    """The options of a command that reads a finished run: `--run`, `--data` (described as
    `data`), `--head`, `--out` (described as `out`) and `--quiet`."""
    parser.add_argument("--run", required=True, help="a run folder written by `train`")
    parser.add_argument("--data", required=True, help=f"{data}: a table, or an .npz with x")
    parser.add_argument(
        "--head", help="a head's name (that level's embedding; default: the encoder's)"
    )
    parser.add_argument("--out", required=True, help=out)
    parser.add_argument("--quiet", action="store_true", help="print nothing")


def build_parser() -> OneLineParser:
    """The `keras-mlcl` argument parser."""
    parser = OneLineParser(
        prog=PROG,
        description="Multi-level supervised contrastive learning with Keras 3. "
        "The backend is KERAS_BACKEND (tensorflow, jax or torch).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for add_command in (add_train, add_evaluate, add_search, add_embed, add_bench):
        add_command(commands)
    return parser


def method_refusal(args: argparse.Namespace) -> str | None:
    """Why the parsed `train` arguments `args` do not fit their method, or None when they do.

    The method should be known, and an option of the table
    (`keras_mlcl.experiments.options`) that the method does not use should keep its default
    (passing the default is harmless).
    """
    try:
        parse_method(args.method)
    except ValueError as error:
        return str(error)
    for option in METHOD_OPTIONS:
        if getattr(args, option.name) != option.default and not option.applies_to(args.method):
            return (
                f"`{option.flag}` does not apply to method {args.method!r} "
                f"(it applies to {option.scope})"
            )
    return None


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parses and checks a `keras-mlcl` command line.

    Args:
        argv: the arguments after `keras-mlcl` (default `sys.argv[1:]`).

    Returns:
        The parsed arguments. `--help` and `--version` exit with code 0, a usage error with
        one line on stderr and code 2 (`SystemExit`).

    Example:

    >>> parse_arguments(["train", "--method", "supcon+ce", "--ce-weight", "0.5"]).ce_weight
    0.5
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    empty = [name for name in PATH_OPTIONS if getattr(args, name, None) == ""]
    if empty:
        flag = "--" + empty[0].replace("_", "-")
        message = f"argument {flag}: expected a path, received an empty string"
        parser.exit(2, one_error_line(f"{PROG} {args.command}", message))
    refusal = method_refusal(args) if args.command == "train" else None
    if refusal is not None:
        parser.exit(2, one_error_line(f"{PROG} train", refusal))
    return args
