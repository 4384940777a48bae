"""Probes the inputs of issue 21 ("Results users can trust") and counts OK / DEFECT.

Each probe builds one bad (or borderline) input in a temporary folder: a tiny `.npz`, a table,
fake MULAN or CLINC150 files, a symlink, a mount point, a full disk, a Ctrl-C during training,
and runs the `keras-mlcl` command on it as a process of its own (the package that
`keras_mlcl_launcher` imports: set PYTHONPATH to probe another checkout). The API-level items
(`SupCon(temperature=1e-40)`, memory-bank mismatches, short class names) and exact resume with
Keras' default shuffle run as small Python child processes.

OK means the behaviour the issue asks for: a user's mistake ends in exit code 2 and ONE line on
stderr naming the argument or file, before training (no run folder written); a valid input
trains (exit 0) with the user's files intact; Ctrl-C ends in exit 130 and one line, the old run
kept; a resumed fit matches the uninterrupted one (max weight difference < 1e-5). Anything else
is a DEFECT, printed with its exit code, the number of stderr lines and the last one. SKIP: the
probe cannot be built here (e.g. mounting needs root).

Usage:
    python scripts/probe_trust.py [--backends jax,tensorflow,torch] [--only SUBSTRING,...]
                                  [--jobs 2] [--strict] [--list]

The exit status is 0 unless `--strict` is given and a probe is a DEFECT.
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

LAUNCH = "from keras_mlcl_launcher import main; main()"
TRAIN = ["--epochs", "1", "--batch-size", "32", "--quiet", "--no-export", "--plot", "none"]
TIMEOUT = 300


class Skip(Exception):
    """The probe cannot be built on this machine."""


@dataclass
class Result:
    """What a child process did."""

    code: int | None
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]

    def why(self) -> str:
        last = self.lines[-1][:160] if self.lines else ""
        return f"exit {self.code}, {len(self.lines)} stderr lines, last: {last!r}"


@dataclass
class Context:
    """One backend's probe run: its scratch folder and the runs shared by several probes."""

    backend: str
    root: str
    lock: threading.Lock
    shared: dict

    def folder(self, name: str) -> str:
        path = os.path.join(self.root, name)
        os.makedirs(path)
        return path

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "KERAS_BACKEND": self.backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        env.pop("KERAS_MLCL_DATA", None)
        return {**env, **extra}

    def cli(self, cwd: str, *args: str, prelude: str = "", timeout: float = TIMEOUT,
            env: dict[str, str] | None = None, **popen: object) -> Result:
        """`keras-mlcl ARGS` in `cwd` as a process of its own (`env` added to its variables)."""
        command = [sys.executable, "-c", prelude + LAUNCH, *args]
        return run_child(command, cwd, self.env(**(env or {})), timeout, **popen)

    def python(self, cwd: str, code: str, timeout: float = TIMEOUT) -> tuple[dict, Result]:
        """Runs `code` in a Python child; its last stdout line is a JSON object."""
        result = run_child([sys.executable, "-c", code], cwd, self.env(), timeout)
        try:
            return json.loads(result.out.strip().splitlines()[-1]), result
        except (IndexError, ValueError):
            return {}, result

    def trained_run(self) -> str:
        """A finished vector run (`run/` of `data.npz`), trained once per backend."""
        with self.lock:
            if "run" not in self.shared:
                folder = self.folder("shared_run")
                # Overlapping classes: scores that depend on which rows are held out.
                write_npz(os.path.join(folder, "data.npz"), spread=0.3)
                result = self.cli(folder, "train", "--data", "data.npz", "--out", "run", *TRAIN)
                if result.code != 0:
                    raise RuntimeError(f"training the shared run failed: {result.why()}")
                self.shared["run"] = os.path.join(folder, "run")
            return self.shared["run"]


def run_child(command: list[str], cwd: str, env: dict[str, str], timeout: float,
              **popen: object) -> Result:
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
            **popen,  # type: ignore[arg-type]
        )
    except subprocess.TimeoutExpired as expired:
        err = expired.stderr or ""
        err = err.decode(errors="replace") if isinstance(err, bytes) else err
        return Result(None, "", err + f"\n(timed out after {timeout} s)")
    return Result(done.returncode, done.stdout, done.stderr)


# ---------------------------------------------------------------- inputs


def write_npz(path: str, n: int = 64, width: int = 8, spread: float = 3.0,
              **arrays: object) -> str:
    """A 2-level dataset (`x`, `y_coarse`, `y_fine`: 4 clusters `spread` apart), with `arrays`
    replacing or adding keys (a value of None removes the key)."""
    rng = np.random.default_rng(0)
    fine = np.arange(n) % 4
    centres = rng.normal(size=(4, width)) * spread
    x = (centres[fine] + rng.normal(size=(n, width))).astype("float32")
    content: dict = {"x": x, "y_coarse": fine // 2, "y_fine": fine}
    content.update(arrays)
    np.savez(path, **{key: value for key, value in content.items() if value is not None})
    return path


def npy_bytes(header: str, payload: bytes = b"") -> bytes:
    """An `.npy` member: the magic, version 1.0, a header text padded to 64 bytes, a payload."""
    text = header.encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + payload


def write_members(path: str, members: dict[str, bytes]) -> str:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def array_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def write_text(path: str, text: str | bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    return path


ARFF = "@relation r\n@attribute f1 numeric\n@attribute f2 numeric\n@attribute l1 {0,1}\n" + (
    "@attribute l2 {0,1}\n@data\n" + "".join(f"{i / 10},{i % 3},{i % 2},{(i + 1) % 2}\n"
                                             for i in range(24))
)
MULAN_XML = '<?xml version="1.0"?>\n<labels><label name="l1"></label><label name="l2"></label>\n'


def mulan_folder(root: str, xml: str = MULAN_XML + "</labels>\n",
                 train: str | bytes = ARFF) -> str:
    """A data folder holding `mulan/scene/`: the training ARFF, the test ARFF and the XML."""
    scene = os.path.join(root, "data", "mulan", "scene")
    write_text(os.path.join(scene, "scene-train.arff"), train)
    write_text(os.path.join(scene, "scene-test.arff"), ARFF)
    write_text(os.path.join(scene, "scene.xml"), xml)
    return os.path.join(root, "data")


def clinc_folder(root: str, data_full: str) -> str:
    """A data folder holding `clinc150/`: `data_full.json` as given and a `domains.json`."""
    folder = os.path.join(root, "data", "clinc150")
    write_text(os.path.join(folder, "data_full.json"), data_full)
    write_text(os.path.join(folder, "domains.json"), json.dumps({"d": ["a", "b"]}))
    return os.path.join(root, "data")


def file_tree(folder: str) -> dict[str, bytes | str]:
    """Every file (content) and link (target) below `folder`, by relative path."""
    tree: dict[str, bytes | str] = {}
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            path = os.path.join(root, name)
            key = os.path.relpath(path, folder)
            if os.path.islink(path):
                tree[key] = "-> " + os.readlink(path)
            else:
                with open(path, "rb") as f:
                    tree[key] = f.read()
    return tree


def leftovers(folder: str) -> list[str]:
    return [name for name in os.listdir(folder) if ".keras-mlcl-" in name]


# ---------------------------------------------------------------- verdicts

Verdict = tuple[bool, str]


def refused(result: Result, *words: str) -> Verdict:
    """OK when the command ended in exit 2 and one `keras-mlcl: error:` line holding `words`."""
    lines = result.lines
    if result.code != 2 or len(lines) != 1 or not lines[0].startswith("keras-mlcl: error:"):
        return False, result.why()
    missing = [word for word in words if word.lower() not in lines[0].lower()]
    if missing:
        return False, f"the line does not name {missing}: {lines[0][:160]!r}"
    return True, ""


def refused_before_training(result: Result, out: str, *words: str) -> Verdict:
    ok, why = refused(result, *words)
    if ok and os.path.exists(out):
        return False, f"refused, but {os.path.basename(out)!r} was written"
    return ok, why


def trained(result: Result, out: str) -> Verdict:
    if result.code != 0 or result.lines:
        return False, result.why()
    if not os.path.isfile(os.path.join(out, "results.json")):
        return False, "exit 0 but no results.json in the run folder"
    return True, ""


def refused_or_trained(result: Result, out: str, *words: str) -> Verdict:
    return trained(result, out) if result.code == 0 else refused(result, *words)


def refused_or_clean(result: Result, *words: str) -> Verdict:
    """A one-line refusal naming `words`, or exit 0 with nothing on stderr."""
    if result.code == 0 and not result.lines:
        return True, ""
    return refused(result, *words)


def raised_value_error(report: dict, result: Result, *words: str) -> Verdict:
    if report.get("raised") != "ValueError":
        what = report.get("raised") or "nothing"
        return False, f"raised {what}: {report.get('message', result.why())[:160]!r}"
    message = report["message"]
    missing = [word for word in words if word.lower() not in message.lower()]
    if missing or "\n" in message.strip():
        return False, f"the ValueError does not name {missing} in one line: {message[:160]!r}"
    return True, ""


# ---------------------------------------------------------------- probes


def train_npz(ctx: Context, name: str, **arrays: object) -> tuple[Result, str, str]:
    """`train` on a tiny npz with `arrays`; returns the result, the folder and `out`."""
    folder = ctx.folder(name)
    write_npz(os.path.join(folder, "data.npz"), **arrays)
    result = ctx.cli(folder, "train", "--data", "data.npz", "--out", "run", *TRAIN)
    return result, folder, os.path.join(folder, "run")


def bench_speed_user_file(ctx: Context) -> Verdict:
    folder = ctx.folder("bench_speed_user_file")
    notes = write_text(os.path.join(folder, "mine", "speed.md"), "# my notes\n")
    result = ctx.cli(folder, "bench", "speed", "--out", "mine", "--quick", "--cases",
                     "supcon_vs_matmul", "--quiet")
    with open(notes) as f:
        intact = f.read() == "# my notes\n"
    if not intact:
        return False, f"mine/speed.md replaced ({result.why()})"
    return refused(result, "mine")


def tensorboard_missing(ctx: Context) -> Verdict:
    folder = ctx.folder("tensorboard_missing")
    write_npz(os.path.join(folder, "data.npz"))
    result = ctx.cli(folder, "train", "--data", "data.npz", "--out", "run", "--tensorboard",
                     *TRAIN, prelude="import sys; sys.modules['tensorboard'] = None; ")
    return refused_before_training(result, os.path.join(folder, "run"), "tensorboard")


def zero_feature_columns(ctx: Context) -> Verdict:
    result, _, out = train_npz(ctx, "zero_feature_columns", x=np.zeros((64, 0), "float32"))
    return refused_before_training(result, out, "data.npz")


def float64_overflow(ctx: Context) -> Verdict:
    x = np.random.default_rng(0).normal(size=(64, 8))
    x[5, 2] = 1e300
    result, _, out = train_npz(ctx, "float64_overflow", x=x)
    return refused_before_training(result, out, "`x`", "row 5")


def class_names_short(ctx: Context) -> Verdict:
    result, _, out = train_npz(ctx, "class_names_short", class_names_fine=np.array(["a", "b"]))
    return refused_before_training(result, out, "class_names")


def evaluate_level_order(ctx: Context) -> Verdict:
    run = ctx.trained_run()
    folder = ctx.folder("evaluate_level_order")
    with np.load(os.path.join(os.path.dirname(run), "data.npz")) as data:
        arrays = {key: data[key] for key in data.files}
    np.savez(os.path.join(folder, "same.npz"), **arrays)
    np.savez(os.path.join(folder, "swapped.npz"), x=arrays["x"], y_fine=arrays["y_fine"],
             y_coarse=arrays["y_coarse"])
    model = os.path.join(run, "model.keras")
    metrics = {}
    for name in ("same", "swapped"):
        result = ctx.cli(folder, "evaluate", "--model", model, "--data", f"{name}.npz",
                         "--out", f"{name}.json", "--quiet")
        if result.code != 0:
            return (name == "swapped" and refused(result)[0]), result.why()
        with open(os.path.join(folder, f"{name}.json")) as f:
            metrics[name] = json.load(f)
    swapped = metrics["swapped"]
    if "same_as" not in swapped["probe_rows"]:
        return True, ""
    same = metrics["same"]
    if swapped["linear_probe"] == same["linear_probe"] and swapped["knn"] == same["knn"]:
        return True, ""
    return False, "probe_rows say 'same_as' the run, but the scores differ from the same data's"


def out_symlink_overwrite(ctx: Context) -> Verdict:
    run = ctx.trained_run()
    folder = ctx.folder("out_symlink_overwrite")
    shutil.copytree(run, os.path.join(folder, "old"), symlinks=True)
    shutil.copy(os.path.join(os.path.dirname(run), "data.npz"), folder)
    os.symlink("old", os.path.join(folder, "link"))
    result = ctx.cli(folder, "train", "--data", "data.npz", "--out", "link", "--overwrite",
                     *TRAIN)
    left = leftovers(folder)
    if left:
        return False, f"left {left} ({result.why()})"
    if not os.path.islink(os.path.join(folder, "link")):
        return False, f"the link was replaced or removed ({result.why()})"
    return refused_or_trained(result, os.path.join(folder, "link"), "link")


def out_empty_mount_point(ctx: Context) -> Verdict:
    folder = ctx.folder("out_empty_mount_point")
    write_npz(os.path.join(folder, "data.npz"))
    mount = os.path.join(folder, "mnt")
    os.makedirs(mount)
    if subprocess.run(["mount", "-t", "tmpfs", "none", mount], capture_output=True).returncode:
        raise Skip("cannot mount a tmpfs here (needs root)")
    try:
        result = ctx.cli(folder, "train", "--data", "data.npz", "--out", "mnt", *TRAIN)
        return refused_or_trained(result, mount, "mnt")
    finally:
        subprocess.run(["umount", mount], capture_output=True)


def corrupt_npy_member(ctx: Context) -> Verdict:
    folder = ctx.folder("corrupt_npy_member")
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (64, 8"  # never closed
    write_members(os.path.join(folder, "data.npz"), {
        "x.npy": npy_bytes(header, bytes(64 * 8 * 4)),
        "y_fine.npy": array_bytes(np.arange(64) % 4),
    })
    result = ctx.cli(folder, "train", "--data", "data.npz", "--out", "run", *TRAIN)
    return refused_before_training(result, os.path.join(folder, "run"), "data.npz")


def huge_declared_shape(ctx: Context) -> Verdict:
    folder = ctx.folder("huge_declared_shape")
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (80000000000000, 1), }"
    path = write_members(os.path.join(folder, "data.npz"), {
        "x.npy": npy_bytes(header, bytes(256)),
        "y_fine.npy": array_bytes(np.arange(64) % 4),
    })
    if os.path.getsize(path) > 4096:
        raise Skip("the archive is not small")
    result = ctx.cli(folder, "train", "--data", "data.npz", "--out", "run", *TRAIN)
    return refused_before_training(result, os.path.join(folder, "run"), "data.npz")


PLAIN_MODEL = (
    "import json, keras; model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)]); "
    "model.save('plain.keras'); print(json.dumps({}))"
)


def evaluate_plain_keras_model(ctx: Context) -> Verdict:
    run = ctx.trained_run()
    folder = ctx.folder("evaluate_plain_keras_model")
    _, made = ctx.python(folder, PLAIN_MODEL)
    if made.code != 0:
        raise Skip(f"cannot save a plain Keras model: {made.why()}")
    data = os.path.join(os.path.dirname(run), "data.npz")
    result = ctx.cli(folder, "evaluate", "--model", "plain.keras", "--data", data, "--quiet")
    return refused(result, "plain.keras")


def copied_run(ctx: Context, name: str, results_json: str) -> tuple[str, str]:
    run = ctx.trained_run()
    folder = ctx.folder(name)
    shutil.copytree(run, os.path.join(folder, "run"))
    write_text(os.path.join(folder, "run", "results.json"), results_json)
    return folder, os.path.join(os.path.dirname(run), "data.npz")


def evaluate_results_list(ctx: Context) -> Verdict:
    folder, data = copied_run(ctx, "evaluate_results_list", "[]")
    result = ctx.cli(folder, "evaluate", "--model", "run/model.keras", "--data", data,
                     "--out", "m.json", "--quiet")
    return refused_or_clean(result, "results.json")


def evaluate_text_model_alone(ctx: Context) -> Verdict:
    folder = ctx.folder("evaluate_text_model_alone")
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    rows = [f"{' '.join(words[(i % 4) * 3 + j % 3] for j in range(i % 5 + 2))},g{i % 4 // 2},"
            f"k{i % 4}" for i in range(64)]
    write_text(os.path.join(folder, "t.csv"), "text,group,kind\n" + "\n".join(rows) + "\n")
    table = ["--data", "t.csv", "--label-columns", "group,kind", "--text-column", "text"]
    made = ctx.cli(folder, "train", *table, "--out", "run", *TRAIN)
    if made.code != 0:
        return False, f"training the text run failed: {made.why()}"
    os.makedirs(os.path.join(folder, "copy"))
    shutil.copy(os.path.join(folder, "run", "model.keras"), os.path.join(folder, "copy"))
    result = ctx.cli(folder, "evaluate", "--model", "copy/model.keras", *table, "--quiet")
    return refused_or_clean(result, "model.keras")


def mulan_malformed_xml(ctx: Context) -> Verdict:
    folder = ctx.folder("mulan_malformed_xml")
    data = mulan_folder(folder, xml=MULAN_XML)  # never closed
    result = ctx.cli(folder, "train", "--data", "mulan_scene", "--data-dir", data, "--out",
                     "run", *TRAIN)
    return refused_before_training(result, os.path.join(folder, "run"), "scene.xml")


def clinc_without_train(ctx: Context) -> Verdict:
    folder = ctx.folder("clinc_without_train")
    data = clinc_folder(folder, json.dumps({"val": [["hi", "a"]], "test": [["yo", "b"]]}))
    result = ctx.cli(folder, "train", "--data", "clinc150", "--data-dir", data, "--out",
                     "run", *TRAIN)
    return refused_before_training(result, os.path.join(folder, "run"), "data_full.json")


def weight_power_huge(ctx: Context) -> Verdict:
    folder = ctx.folder("weight_power_huge")
    tags = (np.arange(64)[:, None] % np.array([2, 3, 5, 7]) == 0).astype("int32")
    write_npz(os.path.join(folder, "data.npz"), y_coarse=None, y_fine=None, y_tags=tags)
    result = ctx.cli(folder, "train", "--data", "data.npz", "--out", "run", "--method",
                     "mlcl-labels", "--weight-power", "1e308", *TRAIN)
    return refused_or_trained(result, os.path.join(folder, "run"), "--weight-power")


def long_level_name(ctx: Context) -> Verdict:
    level = "a" * 250
    result, _, out = train_npz(ctx, "long_level_name", y_coarse=None,
                               **{f"y_{level}": np.arange(64) % 2})
    return refused_or_trained(result, out, "level")


def bench_speed_out_file(ctx: Context) -> Verdict:
    folder = ctx.folder("bench_speed_out_file")
    path = write_text(os.path.join(folder, "afile"), "mine\n")
    result = ctx.cli(folder, "bench", "speed", "--out", "afile", "--quick", "--cases",
                     "supcon_vs_matmul", "--quiet")
    with open(path) as f:
        if f.read() != "mine\n":
            return False, f"afile was replaced ({result.why()})"
    return refused(result, "afile")


def ctrl_c(ctx: Context) -> Verdict:
    run = ctx.trained_run()
    folder = ctx.folder("ctrl_c")
    shutil.copytree(run, os.path.join(folder, "run"))
    before = file_tree(os.path.join(folder, "run"))
    write_npz(os.path.join(folder, "big.npz"), n=4096, width=32)
    args = ["train", "--data", "big.npz", "--out", "run", "--overwrite", "--epochs", "500",
            "--quiet", "--no-export", "--plot", "none"]
    child = subprocess.Popen([sys.executable, "-c", LAUNCH, *args], cwd=folder, env=ctx.env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + TIMEOUT
    while not leftovers(folder) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(5)  # into training
    child.send_signal(signal.SIGINT)
    try:
        out, err = child.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
    result = Result(child.returncode, out, err)
    if file_tree(os.path.join(folder, "run")) != before:
        return False, f"the old run was changed ({result.why()})"
    if result.code != 130 or len(result.lines) != 1:
        return False, result.why()
    return True, ""


def full_disk(ctx: Context) -> Verdict:
    import resource

    folder = ctx.folder("full_disk")
    write_npz(os.path.join(folder, "data.npz"))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    result = ctx.cli(folder, "train", "--data", "data.npz", "--out", "run", *TRAIN,
                     preexec_fn=limit)
    left = leftovers(folder) + (["run"] if os.path.exists(os.path.join(folder, "run")) else [])
    if result.code == 0:
        return False, "exit 0 although no file over 4 KB could be written"
    lines = result.lines
    if len(lines) != 1 or not lines[0].startswith("keras-mlcl: error:"):
        return False, result.why()
    return (not left), f"left {left}" if left else ""


def out_link_to_empty_folder(ctx: Context) -> Verdict:
    folder = ctx.folder("out_link_to_empty_folder")
    write_npz(os.path.join(folder, "data.npz"))
    os.makedirs(os.path.join(folder, "target"))
    os.symlink("target", os.path.join(folder, "link"))
    result = ctx.cli(folder, "train", "--data", "data.npz", "--out", "link", *TRAIN)
    if not os.path.islink(os.path.join(folder, "link")):
        return False, f"the link was replaced or removed ({result.why()})"
    if leftovers(folder):
        return False, f"left {leftovers(folder)} ({result.why()})"
    if result.code == 0:
        return trained(result, os.path.join(folder, "target"))
    ok, why = refused(result, "link")
    if ok and os.listdir(os.path.join(folder, "target")):
        return False, "refused, but the link's folder was written"
    return ok, why


def all_unlabelled_level(ctx: Context) -> Verdict:
    result, _, out = train_npz(ctx, "all_unlabelled_level", y_coarse=np.full(64, -1))
    return refused_before_training(result, out, "coarse")


def cli_refusal(name: str, *extra: str, words: tuple[str, ...]) -> Callable[[Context], Verdict]:
    """A probe: `train` on a tiny valid npz with the options `extra`, expected refused."""

    def probe(ctx: Context) -> Verdict:
        folder = ctx.folder(name)
        write_npz(os.path.join(folder, "data.npz"))
        args = ["train", "--data", "data.npz", *TRAIN, *extra]
        args += [] if "--out" in extra else ["--out", "run"]
        result = ctx.cli(folder, *args)
        written = [n for n in os.listdir(folder) if n != "data.npz"]
        if result.code == 2 and written:
            return False, f"refused, but wrote {written}"
        return refused(result, *words)

    probe.__name__ = name
    return probe


def long_out(ctx: Context) -> Verdict:
    folder = ctx.folder("long_out")
    write_npz(os.path.join(folder, "data.npz"))
    out = "r" * 240
    result = ctx.cli(folder, "train", "--data", "data.npz", "--out", out, *TRAIN)
    return trained(result, os.path.join(folder, out))


def odd_level_name(name: str, level: str) -> Callable[[Context], Verdict]:
    def probe(ctx: Context) -> Verdict:
        result, _, out = train_npz(ctx, name, y_coarse=None, **{f"y_{level}": np.arange(64) % 2})
        return trained(result, out)

    probe.__name__ = name
    return probe


def refused_npz(name: str, *words: str, **arrays: object) -> Callable[[Context], Verdict]:
    """A probe: `train` on a tiny npz with `arrays`, expected refused naming `words`."""

    def probe(ctx: Context) -> Verdict:
        result, _, out = train_npz(ctx, name, **arrays)
        return refused_before_training(result, out, *words)

    probe.__name__ = name
    return probe


def tiny_images(name: str, side: int) -> Callable[[Context], Verdict]:
    def probe(ctx: Context) -> Verdict:
        x = np.random.default_rng(0).random((64, side, side)).astype("float32")
        result, _, out = train_npz(ctx, name, x=x)
        return refused_or_trained(result, out, "data.npz")

    probe.__name__ = name
    return probe


def without_read_override() -> None:
    """In a child of root: drops the capabilities that let root read any folder."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0):  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def unreadable_data_folder(ctx: Context) -> Verdict:
    folder = ctx.folder("unreadable_data_folder")
    data = clinc_folder(folder, json.dumps({"train": [], "val": [], "test": []}))
    os.chmod(os.path.join(data, "clinc150"), 0)
    popen = {"preexec_fn": without_read_override} if os.geteuid() == 0 else {}
    try:
        result = ctx.cli(folder, "train", "--data", "clinc150", "--data-dir", data,
                         "--out", "run", *TRAIN, **popen)
    finally:
        os.chmod(os.path.join(data, "clinc150"), 0o755)
    ok, why = refused(result, "clinc150")
    if ok and "not found" in result.lines[0]:
        return False, f"reported as not found: {result.lines[0][:160]!r}"
    return ok, why


def binary_arff(ctx: Context) -> Verdict:
    folder = ctx.folder("binary_arff")
    data = mulan_folder(folder, train=bytes(range(256)) * 4)
    result = ctx.cli(folder, "train", "--data", "mulan_scene", "--data-dir", data, "--out",
                     "run", *TRAIN)
    return refused_before_training(result, os.path.join(folder, "run"), "scene-train.arff")


def clinc_not_json(ctx: Context) -> Verdict:
    folder = ctx.folder("clinc_not_json")
    data = clinc_folder(folder, "this is not JSON {")
    result = ctx.cli(folder, "train", "--data", "clinc150", "--data-dir", data, "--out",
                     "run", *TRAIN)
    return refused_before_training(result, os.path.join(folder, "run"), "data_full.json")


def corrupt_results_json(ctx: Context) -> Verdict:
    folder, data = copied_run(ctx, "corrupt_results_json", "{ broken")
    result = ctx.cli(folder, "evaluate", "--model", "run/model.keras", "--data", data,
                     "--out", "m.json", "--quiet")
    return refused_or_clean(result, "results.json")


API_PRELUDE = (
    "import json, sys\n"
    "def report(action):\n"
    "    try:\n"
    "        action()\n"
    "    except Exception as error:\n"
    "        print(json.dumps({'raised': type(error).__name__, 'message': str(error)}))\n"
    "    else:\n"
    "        print(json.dumps({}))\n"
    "import keras, numpy as np, keras_mlcl\n"
)


def api_probe(name: str, body: str, *words: str) -> Callable[[Context], Verdict]:
    """A probe: Python `body` (which calls `report(action)`) should raise a ValueError."""

    def probe(ctx: Context) -> Verdict:
        report, result = ctx.python(ctx.folder(name), API_PRELUDE + body)
        if not report and result.code != 0:
            return False, result.why()
        return raised_value_error(report, result, *words)

    probe.__name__ = name
    return probe


# A bank of 2-wide embeddings with multi-hot labels of 4 classes, given other batches.
BANK = (
    "bank = keras_mlcl.MemoryBank(size=8)\n"
    "bank.build({'fine': 2}, {'fine': (4,)})\n"
    "loss = keras_mlcl.SupCon(temperature=1.0, positives='any')\n"
    "z = {'fine': keras.ops.convert_to_tensor(np.eye(3, %d, dtype='float32'))}\n"
    "y = {'fine': keras.ops.convert_to_tensor(np.array(%s, dtype='int32'))}\n"
    "report(lambda: bank.term_losses(loss, y, z))\n"
)

RESUME = """
import json, os, tempfile
import keras, numpy as np
from keras_mlcl import ContrastiveModel
rng = np.random.default_rng(0)
fine = rng.integers(0, 4, size=128)
x = (rng.normal(size=(4, 8))[fine] * 2 + rng.normal(size=(128, 8))).astype('float32')
y = {'coarse': fine // 2, 'fine': fine}
FIT = dict(batch_size=32, epochs=4, verbose=0)  # Keras' default shuffle=True

def make():
    keras.utils.set_random_seed(3)
    encoder = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation='relu'),
                                keras.layers.Dense(8)])
    model = ContrastiveModel(encoder, heads={'coarse': 8, 'fine': 8},
                             augment=keras.layers.GaussianNoise(0.3, seed=1))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    return model

class InterruptAt(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise RuntimeError('interrupted')

reference = make()
reference.fit(x, y, **FIT)
backup = os.path.join(tempfile.mkdtemp(dir='.'), 'backup')
try:
    make().fit(x, y, callbacks=[keras.callbacks.BackupAndRestore(backup), InterruptAt()], **FIT)
except RuntimeError:
    pass
resumed = make()
resumed.fit(x, y, callbacks=[keras.callbacks.BackupAndRestore(backup)], **FIT)
difference = max(float(np.max(np.abs(a - b)))
                 for a, b in zip(resumed.get_weights(), reference.get_weights()))
print(json.dumps({'difference': difference}))
"""


def resume_with_shuffle(ctx: Context) -> Verdict:
    report, result = ctx.python(ctx.folder("resume_with_shuffle"), RESUME)
    if "difference" not in report:
        return False, result.why()
    difference = report["difference"]
    return difference < 1e-5, f"max weight difference {difference:.3g} (want < 1e-5)"


PROBES: list[tuple[str, Callable[[Context], Verdict]]] = [
    ("critical/bench-speed-out-with-user-file", bench_speed_user_file),
    ("high/tensorboard-not-installed", tensorboard_missing),
    ("high/npz-zero-feature-columns", zero_feature_columns),
    ("high/float64-beyond-float32", float64_overflow),
    ("high/class-names-shorter-than-ids", class_names_short),
    ("high/evaluate-levels-in-another-order", evaluate_level_order),
    ("medium/out-symlink-to-run-overwrite", out_symlink_overwrite),
    ("medium/out-empty-mount-point", out_empty_mount_point),
    ("medium/npz-corrupt-npy-header", corrupt_npy_member),
    ("medium/npz-huge-declared-shape", huge_declared_shape),
    ("medium/evaluate-plain-keras-model", evaluate_plain_keras_model),
    ("medium/evaluate-results-json-a-list", evaluate_results_list),
    ("medium/evaluate-text-model-without-results", evaluate_text_model_alone),
    ("medium/mulan-malformed-xml", mulan_malformed_xml),
    ("medium/clinc-without-train", clinc_without_train),
    ("medium/weight-power-1e308", weight_power_huge),
    ("medium/level-name-250-chars", long_level_name),
    ("medium/bench-speed-out-a-file", bench_speed_out_file),
    ("low/ctrl-c-during-training", ctrl_c),
    ("low/full-disk", full_disk),
    ("low/out-link-to-empty-folder", out_link_to_empty_folder),
    ("low/level-all-unlabelled", all_unlabelled_level),
    ("low/temperature-1e-40",
     cli_refusal("temperature_tiny", "--temperature", "1e-40", words=("--temperature",))),
    ("low/ce-with-temperature-cli",
     cli_refusal("ce_temperature", "--method", "ce", "--temperature", "0.5",
                 words=("--temperature",))),
    ("low/ce-with-temperature-in-python",
     api_probe("ce_temperature_python",
               "from keras_mlcl.experiments import train_and_evaluate\n"
               "data = keras_mlcl.data.LabeledDataset(x=np.eye(32, 4, dtype='float32'), "
               "labels={'fine': np.arange(32) % 2})\n"
               "report(lambda: train_and_evaluate(data, method='ce', temperature=0.5, epochs=1, "
               "batch_size=16, out='run', export=False, plot='none', verbose=0))",
               "temperature")),
    ("low/out-empty-string", cli_refusal("out_empty", "--out", "", words=("--out",))),
    ("low/data-dir-empty-string",
     cli_refusal("data_dir_empty", "--data-dir", "", words=("--data-dir",))),
    ("low/out-240-characters", long_out),
    ("low/level-name-with-space", odd_level_name("level_space", "my level")),
    ("low/level-name-non-ascii", odd_level_name("level_non_ascii", "niveau_\u00e9t\u00e9")),
    ("low/images-1x1", tiny_images("images_1x1", 1)),
    ("low/images-3x3", tiny_images("images_3x3", 3)),
    ("low/npz-zero-rows",
     refused_npz("zero_rows", "data.npz", "row", x=np.zeros((0, 8), "float32"),
                 y_coarse=np.zeros(0, int), y_fine=np.zeros(0, int))),
    ("low/multi-hot-class-names-wrong-count",
     refused_npz("multi_hot_names", "class_names", y_coarse=None,
                 y_fine=(np.arange(64)[:, None] % np.array([2, 3, 5, 7]) == 0).astype(int),
                 class_names_fine=np.array(["a", "b", "c"]))),
    ("low/unreadable-data-folder", unreadable_data_folder),
    ("low/mulan-binary-arff", binary_arff),
    ("low/clinc-not-json", clinc_not_json),
    ("low/evaluate-corrupt-results-json", corrupt_results_json),
    ("low/memory-bank-width-mismatch",
     api_probe("bank_width", BANK % (3, "np.eye(3, 4)"), "bank")),
    ("low/memory-bank-label-mismatch",
     api_probe("bank_labels", BANK % (2, "np.eye(3, 2)"), "bank")),
    ("low/supcon-temperature-1e-40",
     api_probe("supcon_tiny", "report(lambda: keras_mlcl.SupCon(temperature=1e-40))",
               "temperature")),
    ("low/class-names-shorter-in-python",
     api_probe("class_names_python",
               "report(lambda: keras_mlcl.data.LabeledDataset(x=np.zeros((4, 2)), "
               "labels={'fine': [0, 1, 2, 3]}, class_names={'fine': ['a', 'b']}))",
               "class_names")),
    ("resume/backup-and-restore-with-shuffle", resume_with_shuffle),
]


def run_probe(ctx: Context, name: str, probe: Callable[[Context], Verdict]) -> tuple[str, str]:
    try:
        ok, why = probe(ctx)
    except Skip as skip:
        return "SKIP", str(skip)
    except Exception as error:  # a probe that cannot run is reported, the others go on
        return "DEFECT", f"the probe failed: {type(error).__name__}: {error}"
    return ("OK", "") if ok else ("DEFECT", why)


def run_backend(backend: str, probes: list, jobs: int) -> dict[str, int]:
    counts = {"OK": 0, "DEFECT": 0, "SKIP": 0}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"probe_trust_{backend}_") as root:
        ctx = Context(backend, root, threading.Lock(), {})
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            futures = [pool.submit(run_probe, ctx, name, probe) for name, probe in probes]
            for (name, _), future in zip(probes, futures, strict=True):
                status, why = future.result()
                counts[status] += 1
                print(f"{status:<7}{backend}: {name}" + (f": {why}" if why else ""), flush=True)
    skipped = f", {counts['SKIP']} SKIP" if counts["SKIP"] else ""
    print(f"{backend}: {len(probes)} probes: {counts['OK']} OK, {counts['DEFECT']} DEFECT"
          f"{skipped} ({time.monotonic() - start:.0f} s)", flush=True)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=os.environ.get("KERAS_BACKEND", "jax"),
                        help="comma-separated backends (default: $KERAS_BACKEND or jax)")
    parser.add_argument("--only", default="",
                        help="run the probes whose name holds one of these (comma-separated)")
    parser.add_argument("--jobs", type=int, default=2, help="probes run at once (default: 2)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any probe is a DEFECT")
    parser.add_argument("--list", action="store_true", help="list the probes and exit")
    args = parser.parse_args()
    parts = args.only.split(",")
    probes = [(name, probe) for name, probe in PROBES if any(part in name for part in parts)]
    if args.list:
        print("\n".join(name for name, _ in probes))
        return 0
    totals = {"OK": 0, "DEFECT": 0, "SKIP": 0}
    for backend in args.backends.split(","):
        for status, count in run_backend(backend.strip(), probes, max(1, args.jobs)).items():
            totals[status] += count
    skipped = f", {totals['SKIP']} SKIP" if totals["SKIP"] else ""
    print(f"{sum(totals.values())} probes: {totals['OK']} OK, {totals['DEFECT']} DEFECT{skipped}")
    return 1 if args.strict and totals["DEFECT"] else 0


if __name__ == "__main__":
    sys.exit(main())
