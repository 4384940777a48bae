"""The benchmarks' reports: Markdown tables and plots of the quality and speed results."""

import json
import os
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_mlcl.experiments.run_folder import run_folder


def table_rows(results: dict[str, Any]) -> list[tuple[str, dict[tuple[str, str], Any]]]:
    """`[(row name, {(fraction, level): entry or None})]`: each method's probe row, followed by
    `<method> (classifier)` when the method has a classifier (`None` on the levels it does not
    classify)."""
    rows = []
    for method, by_fraction in results.items():
        probe, own = {}, {}
        for fraction, by_level in by_fraction.items():
            for level, entry in by_level.items():
                probe[(fraction, level)] = entry
                own[(fraction, level)] = entry.get("classifier")
        rows.append((method, probe))
        if any(value is not None for value in own.values()):
            rows.append((f"{method} (classifier)", own))
    return rows


def results_table(results: dict[str, Any], meta: dict[str, Any]) -> str:
    """The results as Markdown: one row per method, `mean ± std` per fraction and level.

    The headline figure of each level (`meta["level_metrics"]`): the linear probe's, and on a
    row `<method> (classifier)` below a method with a classifier, that classifier's own. The
    best mean of each column is in bold.

    Args:
        results: the `run_quality_bench` results.
        meta: the run's metadata (as written to `meta.json`).

    Returns:
        A Markdown string.
    """
    levels = meta["levels"]
    fractions = list(next(iter(results.values())))
    columns = [(fraction, level) for fraction in fractions for level in levels]
    rows = table_rows(results)
    best = {
        column: max(cells[column]["mean"] for _, cells in rows if cells[column] is not None)
        for column in columns
    }

    def cell(column: tuple[str, str], entry: dict[str, Any]) -> str:
        text = f"{entry['mean']:.3f} ± {entry['std']:.3f}"
        return f"**{text}**" if entry["mean"] == best[column] else text

    return markdown_table("method", columns, rows, cell)


def multilabel_table(results: dict[str, Any], meta: dict[str, Any]) -> str:
    """Markdown of every figure of the multi-hot levels: `macro-F1 / micro-F1 / mAP` means.

    Returns:
        The table, or `""` when no level is multi-hot.
    """
    levels = [level for level, metric in meta["level_metrics"].items() if metric == "macro-F1"]
    if not levels:
        return ""
    fractions = list(next(iter(results.values())))
    columns = [(fraction, level) for fraction in fractions for level in levels]

    def cell(column: tuple[str, str], entry: dict[str, Any]) -> str:
        figures = entry["metrics"]
        return " / ".join(f"{figures[k]['mean']:.3f}" for k in ("macro_f1", "micro_f1", "map"))

    return markdown_table("method (macro-F1 / micro-F1 / mAP)", columns, table_rows(results), cell)


def markdown_table(
    first_header: str,
    columns: Sequence[tuple[str, str]],
    rows: list[tuple[str, dict[tuple[str, str], Any]]],
    cell: Callable[[tuple[str, str], dict[str, Any]], str],
) -> str:
    """A Markdown table: a `<level> @ <fraction>` column per `(fraction, level)` of `columns`,
    a line per `(name, {column: entry or None})` of `rows`, `cell(column, entry)` in each cell
    and `–` where the entry is `None`."""
    header = [f"{level} @ {fraction}" for fraction, level in columns]
    lines = [f"| {first_header} | " + " | ".join(header) + " |", "|---|" + "---|" * len(columns)]
    for name, entries in rows:
        cells = [
            "–" if entries[column] is None else cell(column, entries[column]) for column in columns
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chosen_table(meta: dict[str, Any]) -> str:
    lines = ["| method | fraction | chosen | validation score per candidate |", "|---|---|---|---|"]
    for method, by_fraction in meta["chosen"].items():
        for fraction, record in by_fraction.items():
            chosen = ", ".join(f"{k}={v:g}" for k, v in record["params"].items()) or "defaults"
            trials = "; ".join(
                (", ".join(f"{k}={v:g}" for k, v in t["params"].items()) or "defaults")
                + f": {t['score']:.3f}"
                for t in record["trials"]
            )
            lines.append(f"| {method} | {fraction} | {chosen} | {trials or '(no grid)'} |")
    return "\n".join(lines)


def write_quality_markdown(
    results: dict[str, Any], meta: dict[str, Any], path: str | os.PathLike[str]
) -> None:
    """Writes `results.md`: the settings, the results table and the chosen hyper-parameters."""
    metrics = ", ".join(f"{level}: {metric}" for level, metric in meta["level_metrics"].items())
    machine = meta["machine"]
    counts = sorted(set(meta["epochs"].values()))
    epochs = (
        str(counts[0])
        if len(counts) == 1
        else ", ".join(f"{e} at fraction {f}" for f, e in meta["epochs"].items())
    )
    detail = multilabel_table(results, meta)
    text = [
        f"# Quality benchmark: {meta['dataset']}",
        "",
        f"Test figure per level ({metrics}) of a linear probe on the frozen encoder (`raw`: on "
        "the preprocessed inputs, untrained), and on the `(classifier)` rows of the trained "
        f"classifier itself; mean ± std over seeds {meta['seeds']}.",
        "",
        results_table(results, meta),
        "",
        *(["Every multi-label figure (means):", "", detail, ""] if detail else []),
        f"- Decision thresholds: {meta.get('thresholds', 'none')}.",
        f"- Inputs: {meta['inputs']}; test split: {meta['test_split']}; training samples "
        f"per fraction: {meta['train_sizes']}.",
        f"- Training, the same for every method: epochs {epochs}, batch {meta['batch_size']}, "
        f"{meta['views']} views, Adam learning rate {meta['learning_rate']}.",
        f"- Hyper-parameters chosen on a stratified {meta['validation_fraction']:g} validation "
        "split of each fraction's training samples (seed "
        f"{meta['seeds'][0]}), by the mean validation score over levels; grid: "
        f"`{json.dumps(meta['grid'])}`.",
        f"- Backend {machine['backend']} (Keras {machine['keras']}), {machine['processor']}, "
        f"{machine['cpu_count']} CPUs; {meta['date']}; {meta['seconds']:.0f} s.",
        f"- Command: `{meta['command']}`",
        "",
        "## Chosen hyper-parameters",
        "",
        chosen_table(meta),
        "",
    ]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(text))


def plot_quality_results(
    results: dict[str, Any], meta: dict[str, Any], path: str | os.PathLike[str]
) -> None:
    """Writes a PNG: one panel per level, bars per method and fraction, std as error bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    levels = meta["levels"]
    methods = list(results)
    fractions = list(next(iter(results.values())))
    figure = Figure(figsize=(4.2 * len(levels) + 1.5, 3.6), constrained_layout=True)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(levels), squeeze=False)[0]
    width = 0.8 / len(methods)
    positions = np.arange(len(fractions))
    colors = [f"C{i % 10}" for i in range(len(methods))]
    for axis, level in zip(axes, levels, strict=True):
        lowest = 1.0
        for i, method in enumerate(methods):
            means = [results[method][f][level]["mean"] for f in fractions]
            stds = [results[method][f][level]["std"] for f in fractions]
            lowest = min(lowest, *(m - s for m, s in zip(means, stds, strict=True)))
            axis.bar(
                positions + (i - (len(methods) - 1) / 2) * width,
                means,
                width,
                yerr=stds,
                capsize=2,
                label=method,
                color=colors[i],
            )
        axis.set_xticks(positions, [f"fraction {f}" for f in fractions])
        axis.set_ylim(max(0.0, lowest - 0.05), 1.0)
        axis.set_title(f"{level} ({meta['level_metrics'][level]})")
        axis.grid(axis="y", alpha=0.3)
    axes[-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    figure.suptitle(f"{meta['dataset']}: linear probe on the frozen encoder, test split")
    figure.savefig(path, format="png", dpi=110)


def write_speed_results(
    results: dict[str, Any], out: str | os.PathLike[str], overwrite: bool = False
) -> None:
    """Writes `results` as `out/speed.json`, a Markdown table `out/speed.md` and, when the
    results hold the `N` sweep, its plot `out/speed_sweep.png`.

    `out` is a run folder (`keras_mlcl.experiments.run_folder`): new, empty, or (with
    `overwrite`) an earlier keras-mlcl run, written beside, then moved there; a folder holding
    anything else is refused (`RunFolderError`), untouched.
    """
    with run_folder(out, "bench speed", overwrite) as folder:
        with open(os.path.join(folder, "speed.json"), "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
        with open(os.path.join(folder, "speed.md"), "w", encoding="utf-8") as f:
            f.write(speed_table(results))
        if results.get("supcon_vs_matmul", {}).get("sweep"):
            backend = results["supcon_vs_matmul"]["backend"]
            plot_speed_sweep({backend: results}, os.path.join(folder, "speed_sweep.png"))


def speed_table(results: dict[str, Any]) -> str:
    """The results as Markdown: one row per case, the memory and larger-`N` figures, the sweep."""
    first: dict[str, Any] = next(iter(results.values()), {})
    machine = first.get("machine", {})
    lines = [
        f"Backend `{first.get('backend')}`, N = {first.get('n')}, D = {first.get('dim')}, "
        f"{first.get('repeats')} timed rounds (medians), {first.get('date')}; machine: "
        f"{machine.get('cpu_count')} CPUs, {machine.get('platform')}, "
        f"load average {machine.get('load_average')}.",
        "",
        "| case | N | ratio | target | met | measured (ms, median) | baseline (ms, median) "
        "| mode |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case, entry in results.items():
        if entry.get("skipped"):
            lines.append(
                f"| `{case}` | {entry.get('n')} | skipped | {_target_text(entry)} | - | - | - "
                f"| {entry['reason']} |"
            )
            continue
        met = "yes" if entry["meets_target"] else "no"
        lines.append(
            f"| `{case}` | {entry.get('n')} | {entry['ratio']:.2f} | {_target_text(entry)} | "
            f"{met} | {entry['measured_ms']:.2f} ({entry['measured']}) | "
            f"{entry['baseline_ms']:.2f} ({entry['baseline']}) | {entry.get('mode', '')} |"
        )
    for case, entry in results.items():
        for name, other in entry.get("other_modes", {}).items():
            lines.append(
                f"\n`{case}` with `{name}`: ratio {other['ratio']:.2f} "
                f"({other['measured_ms']:.2f} ms / {other['baseline_ms']:.2f} ms)."
            )
        if "rss_mb" in entry and "memory_target_mb" in entry:
            rss = entry["rss_mb"]
            memory_met = "met" if entry["memory_target_met"] else "not met"
            lines.append(
                f"\n`{case}` memory (peak RSS of a fresh process per side, N = {entry['n']}): "
                f"baseline {rss['baseline']:.0f} MB, matmul {rss['matmul']:.0f} MB, SupCon "
                f"{rss['loss']:.0f} MB; SupCon's extra memory {entry['loss_extra_mb']:.0f} MB "
                f"(target <= {entry['memory_target_mb']:.0f} MB: {memory_met}), the matmul's "
                f"{entry['matmul_extra_mb']:.0f} MB, SupCon minus matmul "
                f"{entry['loss_minus_matmul_mb']:.0f} MB."
            )
        if "larger" in entry:
            larger = entry["larger"]
            lines.append(
                f"\n`{case}` at N = {larger['n']}: ratio {larger['ratio']:.2f} "
                f"({larger['measured_ms']:.2f} ms / {larger['baseline_ms']:.2f} ms)."
            )
    sweep = results.get("supcon_vs_matmul", {}).get("sweep")
    if sweep:
        lines += [
            "",
            "SupCon fwd+bwd against the bare matmul fwd+bwd over the batch size "
            f"(in-process peak: {sweep[0]['memory_method']}; extra RSS: peak resident set of a "
            "fresh process per side minus the baseline process's):",
            "",
            "| N | rounds | SupCon (ms) | matmul (ms) | ratio | SupCon peak (MB) | "
            "matmul peak (MB) | SupCon extra RSS (MB) | matmul extra RSS (MB) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for point in sweep:
            lines.append(
                f"| {point['n']} | {point.get('repeats', '')} | {point['loss_ms']:.2f} | "
                f"{point['matmul_ms']:.2f} | {point['ratio']:.2f} | "
                f"{_mb(point['loss_peak_mb'])} | {_mb(point['matmul_peak_mb'])} | "
                f"{_mb(point.get('loss_extra_mb'))} | {_mb(point.get('matmul_extra_mb'))} |"
            )
    return "\n".join(lines) + "\n"


def plot_speed_sweep(
    results_by_backend: dict[str, dict[str, Any]], path: str | os.PathLike[str]
) -> None:
    """Writes a PNG of the `N` sweep: time (left) and extra peak memory (right) against `N`.

    One colour per backend; SupCon solid, the bare matmul dashed. The memory is the
    fresh-process extra RSS where the sweep has it, else the in-process peak (marked
    "in-process" in the legend); values <= 0 (below the resident set's resolution) are left
    out of the log scale. Grey lines: one `N x N` float32 buffer and a quarter of one.

    Args:
        results_by_backend: a dict of backend name to `run_speed_bench` results (or the
            loaded `speed.json`) holding `supcon_vs_matmul`'s sweep.
        path: the PNG file to write.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.2), constrained_layout=True)
    FigureCanvasAgg(figure)
    time_axis, memory_axis = figure.subplots(1, 2)
    sizes = set()
    for i, (backend, results) in enumerate(results_by_backend.items()):
        sweep = results["supcon_vs_matmul"]["sweep"]
        n = [point["n"] for point in sweep]
        sizes.update(n)
        color = f"C{i % 10}"
        time_axis.plot(n, [p["loss_ms"] for p in sweep], "o-", color=color, label=backend)
        time_axis.plot(n, [p["matmul_ms"] for p in sweep], "s--", color=color, alpha=0.6)
        fresh = all(p.get("loss_extra_mb") is not None for p in sweep)
        keys = ("loss_extra_mb", "matmul_extra_mb") if fresh else ("loss_peak_mb", "matmul_peak_mb")
        label = backend if fresh else f"{backend} (in-process)"
        for key, style, name in zip(keys, ("o-", "s--"), (label, None), strict=True):
            shown = [(p["n"], p[key]) for p in sweep if p.get(key) is not None and p[key] > 0]
            if shown:
                xs, ys = zip(*shown, strict=True)
                alpha = 1.0 if name else 0.6
                memory_axis.plot(xs, ys, style, color=color, label=name, alpha=alpha)
    grid = np.array(sorted(sizes), dtype="float64")
    if grid.size:
        buffer_mb = grid**2 * 4 / 2**20
        memory_axis.plot(grid, buffer_mb, ":", color="grey", label="one N x N float32")
        memory_axis.plot(grid, buffer_mb / 4, "-.", color="grey", label="a quarter of it")
    for axis in (time_axis, memory_axis):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("batch size N")
        axis.grid(alpha=0.3, which="both")
    time_axis.set_ylabel("fwd+bwd time (ms, median)")
    time_axis.set_title("Time: SupCon (solid) vs bare matmul (dashed)")
    memory_axis.set_ylabel("extra peak memory (MB)")
    memory_axis.set_title("Extra peak memory: SupCon (solid) vs matmul (dashed)")
    time_axis.legend(fontsize="small")
    memory_axis.legend(fontsize="small")
    figure.savefig(path, format="png", dpi=110)


def _target_text(entry: dict[str, Any]) -> str:
    sign = ">=" if entry["better"] == "higher" else "<="
    text = f"{sign} {entry['target']}"
    if "memory_target_mb" in entry:
        text += f"; extra memory <= {entry['memory_target_mb']:.0f} MB"
    return text


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"
