"""The speed bench's ratios over several fresh processes: median, min and max per case.

One ratio from one process says little on a shared machine: this script runs each case of
`keras-mlcl bench speed` (`keras_mlcl.bench.speed.run_speed_bench`) once in each of `--runs`
fresh Python processes per backend, one process at a time, and prints a Markdown table of the
median and the spread (min–max) of every ratio, and of the extra peak memory of the 16k case as
a fraction of one `N x N` float32 buffer. `supcon_vs_matmul` runs at N = 1024 without its sweep,
eager and (on torch) under `torch.compile`: both modes are reported.

Usage:

    python scripts/speed_spread.py --backends torch --cases supcon_vs_matmul --runs 5
    python scripts/speed_spread.py --out /tmp/spread      # every backend and case, 5 runs

With `--out DIR`, every run's entries go to `DIR/spread.json` and the table to
`DIR/spread.md` (each written beside, then renamed into place; `DIR` is made if missing and
must not be a file).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

BACKENDS = ("jax", "tensorflow", "torch")
CASES = (
    "supcon_vs_matmul",
    "supcon_16k_vs_matmul",
    "dist_replica_vs_global",
    "heads4_vs_4x_one_head",
    "fit_step_vs_ce",
    "vs_pml_supcon",
)
CHILD = """
import json
from keras_mlcl.bench.speed import run_speed_bench
entry = run_speed_bench(cases=[{case!r}], sizes=(), verbose=0)[{case!r}]
print("SPREAD " + json.dumps(entry))
"""


def run_case(backend: str, case: str) -> dict:
    """One fresh process running `case` on `backend`: its bench entry."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, "-c", CHILD.format(case=case)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    for line in result.stdout.splitlines():
        if line.startswith("SPREAD "):
            return json.loads(line[len("SPREAD ") :])
    raise RuntimeError(f"{case} on {backend} failed:\n{result.stderr[-3000:]}")


def figures(entry: dict) -> dict[str, float]:
    """The numbers worth a spread from one entry: the ratio, each mode's, the memory."""
    if entry.get("ratio") is None:
        return {}
    # The case's ratio is its best mode's; every mode is given under its own name.
    found = {f"ratio, {entry['mode']}": entry["ratio"]}
    for mode, other in entry.get("other_modes", {}).items():
        found[f"ratio, {mode}"] = other["ratio"]
    if "loss_extra_mb" in entry:
        found["extra memory / N^2 float32"] = entry["loss_extra_mb"] / (entry["n"] ** 2 * 4 / 2**20)
        found["extra memory, MB"] = entry["loss_extra_mb"]
    return found


def summary(runs: list[dict]) -> dict[str, str]:
    """`median (min–max)` of each figure over the runs."""
    values: dict[str, list[float]] = {}
    for entry in runs:
        for name, value in figures(entry).items():
            values.setdefault(name, []).append(value)
    return {
        name: f"{statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f})"
        for name, v in values.items()
    }


def write_beside(path: str, text: str) -> None:
    """Writes `text` to a temporary file beside `path`, then renames it into place."""
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".spread-")
    with os.fdopen(handle, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated")
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per case")
    parser.add_argument("--out", default=None, help="folder for spread.json and spread.md")
    args = parser.parse_args(argv)
    if args.out is not None and os.path.isfile(args.out):
        parser.error(f"--out should be a folder; {args.out!r} is a file")
    if args.runs < 1:
        parser.error(f"--runs should be a positive int; received {args.runs}")
    results: dict[str, dict[str, list[dict]]] = {}
    lines = ["| backend | case | figure | median (min–max) |", "|---|---|---|---|"]
    for backend in args.backends.split(","):
        for case in args.cases.split(","):
            runs = [run_case(backend, case) for _ in range(args.runs)]
            results.setdefault(backend, {})[case] = runs
            if runs[0].get("skipped"):
                lines.append(f"| {backend} | {case} | skipped: {runs[0]['reason']} | |")
            for name, text in summary(runs).items():
                lines.append(f"| {backend} | {case} | {name} | {text} |")
            print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out is not None:
        os.makedirs(args.out, exist_ok=True)
        write_beside(os.path.join(args.out, "spread.json"), json.dumps(results, indent=1))
        write_beside(os.path.join(args.out, "spread.md"), table)


if __name__ == "__main__":
    main()
