"""The `keras-mlcl` commands; the command line is parsed in `keras_mlcl.cli.parser`.

Each command imports the parts of the library it needs when it runs.
"""

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from keras_mlcl.cli.parser import TABLE_OPTIONS
from keras_mlcl.cli.parser import parse_arguments
from keras_mlcl.experiments.options import options_for

METRICS_FILE = "metrics.json"
METRICS_WRITER = "keras-mlcl evaluate"


class UsageError(Exception):
    """Bad input from the command line, reported in one line with exit code 2."""


def model_options(args: argparse.Namespace) -> dict[str, float]:
    """The `build_model` options of `args` that `args.method` uses, for `train_and_evaluate`.

    Which options a method uses is the table's (`keras_mlcl.experiments.options`); the parser
    has refused the others when given. `temperature` is left out: it is an argument of
    `train_and_evaluate` of its own.
    """
    names = options_for(args.method)
    return {name: getattr(args, name) for name in names if name != "temperature"}


def load_data(args: argparse.Namespace, run_table: dict[str, Any] | None = None) -> Any:
    """The `LabeledDataset` of `--data`: a named dataset, an `.npz` file, or a table read with
    the table options (or, for a table given without `--label-columns`, `run_table`: the
    columns a run was trained with)."""
    from keras_mlcl.data import is_table
    from keras_mlcl.data import load_dataset
    from keras_mlcl.data import load_table

    given = [name for name in TABLE_OPTIONS if getattr(args, name) is not None]
    if not is_table(args.data):
        if given or args.test_data:
            flag = "--" + (given[0] if given else "test_data").replace("_", "-")
            raise UsageError(
                f"`{flag}` applies to a table (.csv, .parquet, .jsonl, or a Hugging Face "
                f"datasets folder); `--data` {args.data!r} is not one."
            )
        return load_dataset(args.data, data_dir=args.data_dir)
    options = {name: getattr(args, name) for name in TABLE_OPTIONS}
    if args.label_columns is None and run_table is not None:
        options = {
            "label_columns": run_table["labels"],
            "feature_columns": run_table["features"] or None,
            "text_column": run_table["text"],
            "id_column": run_table["id"],
            "label_separator": run_table["label_separator"],
        }
    if options["label_columns"] is None:
        raise UsageError(
            f"`--data` {args.data!r} is a table: name its label columns, coarse to fine, with "
            "--label-columns (e.g. --label-columns category,product)."
        )
    return load_table(args.data, test_data=args.test_data, **options)


def run_train(args: argparse.Namespace) -> int:
    """`keras-mlcl train`: trains, evaluates and writes the run folder; prints its summary."""
    from keras_mlcl.experiments import train_and_evaluate
    from keras_mlcl.experiments.phase_timer import PhaseTimer

    if args.tensorboard:
        check_tensorboard()
    timer = PhaseTimer(verbose=not args.quiet)
    with timer.phase("load"):
        dataset = load_data(args)
    if os.path.isfile(args.data):  # named in the message, before training
        from keras_mlcl.experiments.encoders import check_images

        try:
            check_images(dataset.x)
        except ValueError as error:
            raise UsageError(f"In {args.data!r}: {error}") from None
    name = os.path.splitext(os.path.basename(os.path.normpath(args.data)))[0]
    out = args.out or os.path.join("saved_models", f"{name}_{args.method.replace('+', '_')}")
    results = train_and_evaluate(
        dataset,
        method=args.method,
        epochs=args.epochs,
        fraction=args.fraction,
        seed=args.seed,
        batch_size=args.batch_size,
        views=args.views,
        temperature=args.temperature,
        learning_rate=args.lr,
        out=out,
        overwrite=args.overwrite,
        protected=input_paths(args),
        export=not args.no_export,
        plot=args.plot,
        tensorboard=args.tensorboard,
        verbose=0 if args.quiet else "auto",
        model_options=model_options(args),
        timer=timer,
    )
    if not args.quiet:
        print(summary(results, out))
    return 0


def check_tensorboard() -> None:
    """Raises a `UsageError` when `--tensorboard` cannot work: its logs are written through
    TensorFlow and its `tensorboard` package, which the `tensorboard` extra installs."""
    import importlib.util

    for package in ("tensorflow", "tensorboard"):
        if importlib.util.find_spec(package) is None:
            raise UsageError(
                f"`--tensorboard` writes its logs through the `{package}` package, which is not "
                "installed; install keras-mlcl[tensorboard] (or the package), or drop "
                "--tensorboard."
            )


def run_evaluate(args: argparse.Namespace) -> int:
    """`keras-mlcl evaluate`: scores a saved model per level and writes the metrics file."""
    from keras_mlcl.experiments import evaluate_saved_run
    from keras_mlcl.experiments.run_folder import add_to_run
    from keras_mlcl.utils.atomic_write import write_beside

    if not os.path.isfile(args.model):
        raise UsageError(f"`--model` should be a model.keras file. Not found: {args.model!r}")
    folder = os.path.dirname(os.path.abspath(args.model))
    out = args.out or os.path.join(folder, METRICS_FILE)
    check_metrics_target(out, args.overwrite)
    dataset = load_data(args, run_table(folder))
    verbose = 0 if args.quiet else 1
    metrics = {
        **evaluate_saved_run(args.model, dataset, verbose=verbose),
        "written_by": METRICS_WRITER,
    }
    with write_beside(out, replace=True) as partial:
        with open(partial, "w", encoding="utf-8") as f:
            json.dump(metrics, f, indent=2)
        if os.path.dirname(os.path.abspath(out)) == folder:
            add_to_run(folder, os.path.basename(out))
    if not args.quiet:
        print(json.dumps(metrics, indent=2))
    return 0


def check_metrics_target(out: str, overwrite: bool) -> None:
    """Refuses an `evaluate --out` file that exists, unless keras-mlcl wrote it and may replace,
    or whose folder does not exist."""
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise UsageError(f"`--out` {out!r}: the folder {parent!r} does not exist.")
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


def run_table(folder: str) -> dict[str, Any] | None:
    """The table columns the run in `folder` was trained with (its results.json), if any."""
    try:
        with open(os.path.join(folder, "results.json"), encoding="utf-8") as f:
            table = json.load(f).get("table")
    except (OSError, ValueError, AttributeError):
        return None
    return table if isinstance(table, dict) else None


def input_paths(args: argparse.Namespace) -> list[str]:
    """The user's input data, which no run folder may contain."""
    from keras_mlcl.data import is_table

    paths = [args.data] if args.data.endswith(".npz") or is_table(args.data) else []
    paths += [args.test_data] if getattr(args, "test_data", None) else []
    return paths + ([args.data_dir] if args.data_dir else [])


def run_search(args: argparse.Namespace) -> int:
    """`keras-mlcl search`: writes each query's nearest stored items to a CSV file."""
    from keras_mlcl.experiments.saved_run import SavedRun
    from keras_mlcl.experiments.saved_run import check_output_file
    from keras_mlcl.experiments.saved_run import search_table
    from keras_mlcl.experiments.saved_run import write_csv

    check_output_file(args.out, (".csv",))
    run = SavedRun(args.run)
    header, rows = search_table(run, args.data, args.k, args.head, args.references)
    write_csv(header, rows, args.out)
    if not args.quiet:
        queries = len(rows) // args.k
        print(f"{queries} queries x {args.k} neighbours written to {args.out}")
    return 0


def run_embed(args: argparse.Namespace) -> int:
    """`keras-mlcl embed`: writes the run's embeddings of a table's rows."""
    from keras_mlcl.experiments.saved_run import SavedRun
    from keras_mlcl.experiments.saved_run import check_output_file
    from keras_mlcl.experiments.saved_run import write_embeddings

    check_output_file(args.out, (".npz", ".parquet"))
    run = SavedRun(args.run)
    x, ids = run.inputs(args.data)
    embeddings = run.embed(x, args.head)
    write_embeddings(ids, embeddings, args.out)
    if not args.quiet:
        count, width = embeddings.shape
        print(f"{count} embeddings of width {width} written to {args.out}")
    return 0


def run_bench(args: argparse.Namespace) -> int:
    """`keras-mlcl bench quality` or `bench speed`: runs the bench, prints its tables."""
    if args.bench == "speed":
        from keras_mlcl.bench.report import speed_table
        from keras_mlcl.bench.speed import CASES
        from keras_mlcl.bench.speed import run_speed_bench

        cases = args.cases.split(",") if args.cases else None
        if cases is not None and not set(cases) <= set(CASES):
            raise UsageError(f"`--cases` should be among {list(CASES)}. Received: {args.cases!r}")
        results = run_speed_bench(
            out=args.out,
            cases=cases,
            quick=args.quick,
            verbose=0 if args.quiet else 1,
            overwrite=args.overwrite,
        )
        if not args.quiet:
            print(speed_table(results))
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
        epochs=args.epochs_per_fraction or args.epochs,
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


def summary(results: dict[str, Any], out: str) -> str:
    """The lines `train` prints: the run, the scores per level, the seconds of each phase
    and the files written."""
    lines = [
        f"{results['dataset']} / {results['method']} / {results['backend']}: "
        f"{results['train_size']} training samples, {results['epochs']} epochs, "
        f"{results['total_seconds']} s",
        f"{'level':<12}{'linear probe':>14}{'kNN':>10}{'Recall@1':>10}{'mAP@R':>10}",
    ]
    for level in results["levels"]:
        retrieval = results["retrieval"].get(level)
        lines.append(
            f"{level:<12}{results['linear_probe'][level]:>14.4f}{results['knn'][level]:>10.4f}"
            + (f"{retrieval['recall@1']:>10.4f}{retrieval['map@r']:>10.4f}" if retrieval else "")
        )
    timings = results.get("timings_s", {})
    if timings:
        lines.append("seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    plot = results.get("plots", {}).get("embeddings", {})
    if plot.get("file") is None and "missing" in plot:
        lines.append(f"no embedding plot: {plot['missing']}")
    written = sorted(os.listdir(out))
    lines.append(f"written to {out}/ ({', '.join(n for n in written if not n.startswith('.'))})")
    return "\n".join(lines)


def run_parsed(args: argparse.Namespace) -> int:
    """Runs the command of `args`; returns its exit code."""
    if args.command == "train":
        return run_train(args)
    if args.command == "bench":
        return run_bench(args)
    if args.command == "search":
        return run_search(args)
    if args.command == "embed":
        return run_embed(args)
    return run_evaluate(args)


def run_command(args: argparse.Namespace) -> int:
    """Runs the parsed command `args`; a user's mistake is one line on stderr and exit code 2.

    A failed write (a full disk) is one line naming the file, exit code 1; an interrupt
    (Ctrl-C) one line, exit code 130. Either way what `--out` held is kept: a run, a metrics
    file or a search's output is written beside its target and moved there only when complete.

    Returns:
        The exit code.
    """
    try:
        with warnings.catch_warnings():
            if getattr(args, "quiet", False):  # nothing at all: warnings and TF's log included
                warnings.simplefilter("ignore")
                logging.getLogger("tensorflow").setLevel(logging.ERROR)
            return run_parsed(args)
    except (
        UsageError,
        ValueError,
        FileNotFoundError,
        NotADirectoryError,
        PermissionError,
        ImportError,  # an optional dependency (tensorflow-datasets, keras-hub) is not installed
    ) as e:
        message = " ".join(str(e).split())
        print(f"keras-mlcl: error: {message}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. ENOSPC, EFBIG (`ulimit -f`), EIO while writing
        where = "" if e.filename is None else f": {e.filename!r}"
        print(f"keras-mlcl: error: {e.strerror or e}{where}; nothing was replaced", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "keras-mlcl: interrupted; nothing was written, and what --out held is kept",
            file=sys.stderr,
        )
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """`keras-mlcl` with the arguments `argv` (default `sys.argv[1:]`), in this process.

    Returns:
        The exit code (`--help`, `--version` and usage errors exit through `SystemExit`).
    """
    return run_command(parse_arguments(argv))


if __name__ == "__main__":
    sys.exit(main())
