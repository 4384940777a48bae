"""A run's training history on disk: `history.csv` and one loss-curve PNG per head."""

import csv
import os
from collections.abc import Mapping
from collections.abc import Sequence

from keras_mlcl.utils.names import file_name_part

History = Mapping[str, Sequence[float]]
"""A `keras.callbacks.History.history` dict: `{name: [value per epoch]}`."""


def head_names(history: History) -> list[str]:
    """The heads of a `History.history` dict: the `<head>` of each `<head>_loss` key.

    `val_<head>_loss`, the validation loss of a head that is itself in `history`, is not a head.
    """
    return sorted(
        key[: -len("_loss")]
        for key in history
        if key.endswith("_loss") and not (key.startswith("val_") and key[4:] in history)
    )


def write_history_csv(history: History, path: str | os.PathLike[str]) -> None:
    """Writes a `History.history` dict as CSV: an `epoch` column (from 1), then each log.

    Args:
        history: `{name: [value per epoch]}`, as `keras.callbacks.History.history`.
        path: the CSV file to write.

    Example:

    >>> write_history_csv({"loss": [2.0, 1.5], "fine_loss": [2.0, 1.5]}, "history.csv")
    >>> open("history.csv").read().splitlines()
    ['epoch,fine_loss,loss', '1,2.0,2.0', '2,1.5,1.5']
    """
    names = sorted(history)
    epochs = len(history[names[0]]) if names else 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", *names])
        for epoch in range(epochs):
            writer.writerow([epoch + 1, *(float(history[name][epoch]) for name in names)])


def plot_loss_curves(history: History, folder: str, title: str = "") -> list[str]:
    """Writes `loss_<head>.png` (the head's loss per epoch) for each head of `history`.

    `<head>` is `keras_mlcl.utils.names.file_name_part(head)`: the head's name when it is a
    plain ASCII identifier of at most 64 characters, else a safe, bounded name derived from it.

    When `history` also holds `val_<head>_loss` (a `fit` with validation data), the validation
    loss is drawn in the same plot, with a "train" / "validation" legend. A validation list
    shorter than the training one (Keras' `validation_freq=f`) is drawn at epochs `f, 2f, ...`
    with `f = epochs // len(validation)`. NaN values are left as gaps.

    Args:
        history: a `keras.callbacks.History.history` dict, `{name: [value per epoch]}`, with a
            `<head>_loss` entry per head (as `ContrastiveModel.fit` logs them).
        folder: the folder the PNGs are written to.
        title: prefix of each plot's title (e.g. the dataset and method).

    Returns:
        The names of the files written, in head order.

    Example:

    >>> history = {"loss": [2.0, 1.5], "fine_loss": [2.0, 1.5], "val_fine_loss": [2.1, 1.7]}
    >>> plot_loss_curves(history, ".")
    ['loss_fine.png']
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    written = []
    for head in head_names(history):
        key = f"{head}_loss"
        values = history[key]
        validation = history.get(f"val_{key}")
        figure = Figure(figsize=(5, 3.5))
        FigureCanvasAgg(figure)
        axes = figure.subplots()
        axes.plot(range(1, len(values) + 1), values, marker="o", label="train")
        if validation:
            every = max(1, len(values) // len(validation))
            epochs = range(every, every * len(validation) + 1, every)
            axes.plot(epochs, validation, marker="s", label="validation")
            axes.legend(frameon=False)
        axes.set_xlabel("epoch")
        axes.set_ylabel(key)
        axes.set_title(f"{title}{': ' if title else ''}{head} head")
        axes.grid(alpha=0.3)
        figure.tight_layout()
        name = f"loss_{file_name_part(head)}.png"
        figure.savefig(os.path.join(folder, name), dpi=100)
        written.append(name)
    return written
