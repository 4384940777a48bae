"""The `keras-mlcl` command: argument parsing only; the work is in the library."""

import argparse
import json
import os
import sys

DEFAULT_DATA = "fashion_mnist"
DEFAULT_METHOD = "mlcl"
DEFAULT_EPOCHS = 15


class UsageError(Exception):
    """Bad input from the command line, reported in one line with exit code 2."""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-mlcl",
        description="Multi-level supervised contrastive learning with Keras 3. "
        "The backend is KERAS_BACKEND (tensorflow, jax or torch).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

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
    train.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    train.add_argument("--fraction", type=float, default=1.0, help="training fraction in (0, 1]")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--batch-size", type=int, default=256)
    train.add_argument("--views", type=int, default=2)
    train.add_argument("--temperature", type=float, default=0.1)
    train.add_argument("--data-dir", help="folder holding the named datasets")
    train.add_argument("--out", help="run folder (default saved_models/<data>_<method>)")
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
    evaluate.add_argument("--out", help="metrics JSON file (default: beside the model)")
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
    quality.add_argument("--seeds", type=int, default=3)
    quality.add_argument("--epochs", type=int, default=15)
    quality.add_argument("--grid", help="JSON {method: {parameter: [values]}}; '{}' for none")
    quality.add_argument("--data-dir", help="folder holding the named datasets")
    quality.add_argument("--out", required=True, help="output folder")
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
        verbose=0 if args.quiet else "auto",
    )
    if not args.quiet:
        print(summary(results, out))
    return 0


def run_evaluate(args):
    from keras_mlcl.data import load_dataset
    from keras_mlcl.experiments import evaluate_saved_run

    if not os.path.exists(args.model):
        raise UsageError(f"`--model` should be a model.keras file. Not found: {args.model!r}")
    dataset = load_dataset(args.data, data_dir=args.data_dir)
    metrics = evaluate_saved_run(args.model, dataset)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(args.model)), "metrics.json")
    with open(out, "w") as f:
        json.dump(metrics, f, indent=2)
    if not args.quiet:
        print(json.dumps(metrics, indent=2))
    return 0


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
    lines.append(f"written to {out}/ (results.json, model.keras, saved_model/, embeddings.png)")
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
