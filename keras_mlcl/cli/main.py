"""The `keras-mlcl` command: argument parsing only; the work is in the library."""

import argparse
import json
import os
import sys
import tempfile

DEFAULT_DATA = "fashion_mnist"
DEFAULT_METHOD = "mlcl"
DEFAULT_EPOCHS = 15
METRICS_FILE = "metrics.json"
METRICS_WRITER = "keras-mlcl evaluate"


class UsageError(Exception):
    """Bad input from the command line, reported in one line with exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose usage errors are one line on stderr (exit code 2)."""

    def error(self, message):
        self.exit(2, f"keras-mlcl: error: {message} (see `{self.prog} --help`)\n")


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


positive_int = int_at_least(1, "positive")
non_negative_int = int_at_least(0, "non-negative")


def positive_float(text):
    """argparse type: a finite float > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"should be a positive number, not {text!r}")
    return value


def build_parser():
    parser = OneLineParser(
        prog="keras-mlcl",
        description="Multi-level supervised contrastive learning with Keras 3. "
        "The backend is KERAS_BACKEND (tensorflow, jax or torch).",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    train = commands.add_parser(
        "train",
        help="train, evaluate per level and export",
        description="Trains a model with a contrastive method, evaluates it per label level "
        "(linear probe and kNN on the frozen encoder), saves model.keras, exports a TF "
        "SavedModel and plots the test embeddings. With no arguments: the bundled "
        "Fashion-MNIST subset (2 levels), method mlcl, written to saved_models/.",
    )
    train.add_argument(
        "--data", default=DEFAULT_DATA, help=f"dataset name or .npz path (default {DEFAULT_DATA})"
    )
    train.add_argument(
        "--loss",
        default=DEFAULT_METHOD,
        metavar="METHOD",
        help="ce, supcon, mlcl, himulcon, simdis, supcon-any, jaccard, bce, or <method>+ce "
        f"(default {DEFAULT_METHOD})",
    )
    train.add_argument("--epochs", type=positive_int, default=DEFAULT_EPOCHS)
    train.add_argument("--fraction", type=float, default=1.0, help="training fraction in (0, 1]")
    train.add_argument("--seed", type=non_negative_int, default=0)
    train.add_argument("--batch-size", type=positive_int, default=256)
    train.add_argument("--views", type=positive_int, default=2)
    train.add_argument("--temperature", type=positive_float, default=0.1)
    train.add_argument("--data-dir", help="folder holding the named datasets")
    train.add_argument(
        "--out",
        help="run folder (default saved_models/<data>_<method>): new, empty, or an earlier run "
        "with --overwrite; a folder holding anything else is refused",
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier keras-mlcl run in --out, once the new run is complete",
    )
    train.add_argument("--no-export", action="store_true", help="skip the TF SavedModel export")
    train.add_argument("--quiet", action="store_true", help="no progress output")

    evaluate = commands.add_parser(
        "evaluate",
        help="score a saved model per level",
        description="Loads a model.keras written by `train` and prints (and writes) linear-probe "
        "and kNN scores per label level of a dataset.",
    )
    evaluate.add_argument("--model", required=True, help="path to a model.keras")
    evaluate.add_argument("--data", required=True, help="dataset name or .npz path")
    evaluate.add_argument("--data-dir", help="folder holding the named datasets")
    evaluate.add_argument("--out", help="metrics JSON file (default metrics.json beside the model)")
    evaluate.add_argument(
        "--overwrite", action="store_true", help="replace a metrics file written by keras-mlcl"
    )
    evaluate.add_argument("--quiet", action="store_true", help="print nothing")

    bench = commands.add_parser("bench", help="quality and speed benchmarks")
    benches = bench.add_subparsers(dest="bench", required=True)
    quality = benches.add_parser(
        "quality",
        help="compare methods on one dataset",
        description="Trains every method with the same encoder, optimiser, epochs and batch; "
        "hyper-parameters are chosen on a validation split of the training data; writes "
        "DIR/results.json (test score per level: mean, std, runs), meta.json, results.md and "
        "a PNG plot.",
    )
    quality.add_argument("--data", required=True, help="dataset name or .npz path")
    quality.add_argument("--methods", help="comma-separated method names (default: all that fit)")
    quality.add_argument("--fractions", default="0.1,1.0", help="comma-separated, each in (0, 1]")
    quality.add_argument("--seeds", type=positive_int, default=3)
    quality.add_argument("--epochs", type=positive_int, default=15)
    quality.add_argument("--grid", help="JSON {method: {parameter: [values]}}; '{}' for none")
    quality.add_argument("--data-dir", help="folder holding the named datasets")
    quality.add_argument("--out", required=True, help="output folder (new, empty, or --overwrite)")
    quality.add_argument(
        "--overwrite", action="store_true", help="replace an earlier bench in --out when done"
    )
    quality.add_argument("--quiet", action="store_true", help="no progress output")
    speed = benches.add_parser(
        "speed",
        help="loss and step cost ratios on the active backend",
        description="Measures, in one process, the SPEC's cost ratios (loss vs bare matmul, "
        "4 heads vs 4 single heads, fit step vs CE step) and, on torch, the speed-up over "
        "pytorch-metric-learning's SupConLoss; writes DIR/speed.json and DIR/speed.md.",
    )
    speed.add_argument("--out", required=True, help="output folder")
    speed.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    speed.add_argument("--quiet", action="store_true", help="no progress output")
    return parser


def run_train(args):
    from keras_mlcl.data import load_dataset
    from keras_mlcl.experiments import train_and_evaluate

    dataset = load_dataset(args.data, data_dir=args.data_dir)
    name = os.path.splitext(os.path.basename(args.data))[0]
    out = args.out or os.path.join("saved_models", f"{name}_{args.loss.replace('+', '_')}")
    results = train_and_evaluate(
        dataset,
        method=args.loss,
        epochs=args.epochs,
        fraction=args.fraction,
        seed=args.seed,
        batch_size=args.batch_size,
        views=args.views,
        temperature=args.temperature,
        out=out,
        overwrite=args.overwrite,
        protected=input_paths(args),
        export=not args.no_export,
        verbose=0 if args.quiet else "auto",
    )
    if not args.quiet:
        print(summary(results, out))
    return 0


def run_evaluate(args):
    from keras_mlcl.data import load_dataset
    from keras_mlcl.experiments import evaluate_saved_run
    from keras_mlcl.experiments.run_folder import add_to_run

    if not os.path.isfile(args.model):
        raise UsageError(f"`--model` should be a model.keras file. Not found: {args.model!r}")
    folder = os.path.dirname(os.path.abspath(args.model))
    out = args.out or os.path.join(folder, METRICS_FILE)
    check_metrics_target(out, args.overwrite)
    dataset = load_dataset(args.data, data_dir=args.data_dir)
    metrics = {**evaluate_saved_run(args.model, dataset), "written_by": METRICS_WRITER}
    try:
        handle, partial = tempfile.mkstemp(
            prefix=f".{os.path.basename(out)}.keras-mlcl-tmp-", dir=os.path.dirname(out) or "."
        )
    except OSError as error:
        raise UsageError(f"`--out` {out!r} cannot be written: {error.strerror}") from None
    try:
        with os.fdopen(handle, "w") as f:
            json.dump(metrics, f, indent=2)
        if os.path.dirname(os.path.abspath(out)) == folder:
            add_to_run(folder, os.path.basename(out))
        os.replace(partial, out)
    except OSError as error:
        raise UsageError(f"`--out` {out!r} cannot be written: {error.strerror}") from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    if not args.quiet:
        print(json.dumps(metrics, indent=2))
    return 0


def check_metrics_target(out, overwrite):
    """Refuses an `evaluate --out` file that exists, unless keras-mlcl wrote it and may replace."""
    if not os.path.exists(out):
        return
    if os.path.isdir(out):
        raise UsageError(f"`--out` should be a file path. {out!r} is a folder.")
    if not overwrite:
        raise UsageError(f"`--out` {out!r} exists; pass --overwrite to replace it.")
    try:
        with open(out) as f:
            ours = json.load(f).get("written_by") == METRICS_WRITER
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise UsageError(
            f"`--out` {out!r} exists and was not written by keras-mlcl evaluate; not replaced."
        )


def input_paths(args):
    """The user's input data, which no run folder may contain."""
    paths = [args.data] if args.data.endswith(".npz") else []
    return paths + ([args.data_dir] if args.data_dir else [])


def run_bench(args):
    if args.bench == "speed":
        from keras_mlcl.bench.speed import markdown_table
        from keras_mlcl.bench.speed import run_speed_bench

        results = run_speed_bench(out=args.out, quick=args.quick, verbose=0 if args.quiet else 1)
        if not args.quiet:
            print(markdown_table(results))
        return 0
    from keras_mlcl.bench.quality import run_quality_bench

    fractions = []
    for text in args.fractions.split(","):
        try:
            fractions.append(float(text))
        except ValueError:
            raise UsageError(
                f"`--fractions` should be numbers in (0, 1]. Received: {args.fractions!r}"
            ) from None
    run_quality_bench(
        args.data,
        args.methods,
        fractions=fractions,
        seeds=args.seeds,
        epochs=args.epochs,
        out=args.out,
        grid=args.grid,
        data_dir=args.data_dir,
        verbose=0 if args.quiet else 1,
        overwrite=args.overwrite,
        protected=input_paths(args),
    )
    if not args.quiet:
        with open(os.path.join(args.out, "results.md")) as f:
            print(f.read())
    return 0


def summary(results, out):
    lines = [
        f"{results['dataset']} / {results['method']} / {results['backend']}: "
        f"{results['train_size']} training samples, {results['epochs']} epochs, "
        f"{results['total_seconds']} s",
        f"{'level':<12}{'linear probe':>14}{'kNN':>10}",
    ]
    for level in results["levels"]:
        lines.append(
            f"{level:<12}{results['linear_probe'][level]:>14.4f}{results['knn'][level]:>10.4f}"
        )
    plot = results.get("plots", {}).get("embeddings", {})
    if plot.get("file") is None and "missing" in plot:
        lines.append(f"no embedding plot: {plot['missing']}")
    written = sorted(os.listdir(out))
    lines.append(f"written to {out}/ ({', '.join(n for n in written if not n.startswith('.'))})")
    return "\n".join(lines)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return run_train(args)
        if args.command == "bench":
            return run_bench(args)
        return run_evaluate(args)
    except (UsageError, ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as e:
        message = " ".join(str(e).split())
        print(f"keras-mlcl: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
