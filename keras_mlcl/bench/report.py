"""The benchmarks' reports: Markdown tables and plots of the quality and speed results."""

import json
import os

import numpy as np


def results_table(results, meta):
    """The results as Markdown: one row per method, `mean ± std` per fraction and level.

    The best mean of each column is in bold.

    Args:
        results: the `run_quality_bench` results.
        meta: the run's metadata (as written to `meta.json`).

    Returns:
        A Markdown string.
    """
    levels = meta["levels"]
    fractions = list(next(iter(results.values())))
    columns = [(fraction, level) for fraction in fractions for level in levels]
    best = {
        column: max(results[m][column[0]][column[1]]["mean"] for m in results) for column in columns
    }
    header = [f"{level} @ {fraction}" for fraction, level in columns]
    lines = [
        "| method | " + " | ".join(header) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for method, by_fraction in results.items():
        cells = []
        for fraction, level in columns:
            entry = by_fraction[fraction][level]
            cell = f"{entry['mean']:.3f} ± {entry['std']:.3f}"
            cells.append(f"**{cell}**" if entry["mean"] == best[(fraction, level)] else cell)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chosen_table(meta):
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


def write_quality_markdown(results, meta, path):
    """Writes `results.md`: the settings, the results table and the chosen hyper-parameters."""
    metrics = ", ".join(f"{level}: {metric}" for level, metric in meta["level_metrics"].items())
    machine = meta["machine"]
    counts = sorted(set(meta["epochs"].values()))
    epochs = (
        str(counts[0])
        if len(counts) == 1
        else ", ".join(f"{e} at fraction {f}" for f, e in meta["epochs"].items())
    )
    text = [
        f"# Quality benchmark: {meta['dataset']}",
        "",
        f"Test figure per level ({metrics}) of a linear probe on the frozen encoder, "
        f"mean ± std over seeds {meta['seeds']}.",
        "",
        results_table(results, meta),
        "",
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


def plot_quality_results(results, meta, path):
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


def write_speed_results(results, out):
    """Writes `results` as `out/speed.json` and a Markdown table `out/speed.md`."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "speed.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(out, "speed.md"), "w", encoding="utf-8") as f:
        f.write(speed_table(results))


def speed_table(results):
    """The results as Markdown: one row per case, then the `N` sweep."""
    first = next(iter(results.values()), {})
    machine = first.get("machine", {})
    lines = [
        f"Backend `{first.get('backend')}`, N = {first.get('n')}, D = {first.get('dim')}, "
        f"{first.get('repeats')} timed rounds (medians), {first.get('date')}; machine: "
        f"{machine.get('cpu_count')} CPUs, {machine.get('platform')}, "
        f"load average {machine.get('load_average')}.",
        "",
        "| case | ratio | target | met | measured (ms, median) | baseline (ms, median) | mode |",
        "|---|---|---|---|---|---|---|",
    ]
    for case, entry in results.items():
        if entry.get("skipped"):
            lines.append(
                f"| `{case}` | skipped | {_target_text(entry)} | - | - | - | {entry['reason']} |"
            )
            continue
        met = "yes" if entry["meets_target"] else "no"
        lines.append(
            f"| `{case}` | {entry['ratio']:.2f} | {_target_text(entry)} | {met} | "
            f"{entry['measured_ms']:.2f} ({entry['measured']}) | "
            f"{entry['baseline_ms']:.2f} ({entry['baseline']}) | {entry.get('mode', '')} |"
        )
    for case, entry in results.items():
        for name, other in entry.get("other_modes", {}).items():
            lines.append(
                f"\n`{case}` with `{name}`: ratio {other['ratio']:.2f} "
                f"({other['measured_ms']:.2f} ms / {other['baseline_ms']:.2f} ms)."
            )
    sweep = results.get("supcon_vs_matmul", {}).get("sweep")
    if sweep:
        lines += [
            "",
            "SupCon fwd+bwd against the bare matmul fwd+bwd over the batch size "
            f"(peak memory: {sweep[0]['memory_method']}):",
            "",
            "| N | SupCon (ms) | matmul (ms) | ratio | SupCon peak (MB) | matmul peak (MB) |",
            "|---|---|---|---|---|---|",
        ]
        for point in sweep:
            lines.append(
                f"| {point['n']} | {point['loss_ms']:.2f} | {point['matmul_ms']:.2f} | "
                f"{point['ratio']:.2f} | {_mb(point['loss_peak_mb'])} | "
                f"{_mb(point['matmul_peak_mb'])} |"
            )
    return "\n".join(lines) + "\n"


def _target_text(entry):
    sign = ">=" if entry["better"] == "higher" else "<="
    return f"{sign} {entry['target']}"


def _mb(value):
    return "n/a" if value is None else f"{value:.1f}"
