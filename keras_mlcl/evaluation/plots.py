"""2-D plots of embeddings (t-SNE or PCA), coloured by each label level."""

import dataclasses
import inspect
import os
from typing import Any

import numpy as np

from keras_mlcl.evaluation.multilabel_metrics import check_embeddings
from keras_mlcl.evaluation.multilabel_metrics import check_level_labels
from keras_mlcl.utils.types import ArrayLike
from keras_mlcl.utils.validation import check_choice
from keras_mlcl.utils.validation import check_positive_int

PLOT_METHODS = ("tsne", "pca")
METHOD_NAMES = {"tsne": "t-SNE", "pca": "PCA"}
TSNE_MAX_POINTS = 5000
"""Most points a t-SNE is run on by default (its cost grows faster than the number of points)."""
TSNE_ITERATIONS = 500
"""t-SNE's optimisation steps (scikit-learn's default is 1,000): 250 early-exaggerated, then 250.
On the bundled Fashion-MNIST test embeddings (2,000 points) and 5,000 training rows, 500 and
1,000 steps draw the same clusters (trustworthiness 0.991 / 0.994 either way) in half the time."""
MAX_LEGEND_CLASSES = 20
MISSING_COLOR = "#b0b0b0"


def check_writable_path(name: str, path: Any) -> str:
    """Makes the folder of `path` if needed; raises if a file cannot go there."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"`{name}` should be a file path. Received: `{name}`={path!r}")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(
            f"`{name}` should be a file path, not a folder. Received: `{name}`={path!r}"
        )
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"`{name}` should be in a writable folder; cannot create {folder!r} ({error}). "
            f"Received: `{name}`={path!r}"
        ) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(
            f"`{name}` should be in a writable folder; {folder!r} is not writable. "
            f"Received: `{name}`={path!r}"
        )
    return path


def project_2d(embeddings: np.ndarray, method: str, seed: int) -> np.ndarray:
    """`(N, D)` embeddings mapped to `(N, 2)` with t-SNE or PCA, on one thread.

    One thread: scikit-learn's t-SNE synchronises its OpenMP threads at each of its small
    steps, which on a busy machine (or beside a training backend's own threads) took 5-10x
    longer than one thread does; and one thread gives the same plot on every machine.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        if method == "pca":
            return PCA(n_components=2, random_state=seed).fit_transform(embeddings)
        num_points = embeddings.shape[0]
        perplexity = min(30.0, max(1.0, (num_points - 1) / 3.0))
        # scikit-learn before 1.5 names the steps `n_iter`.
        steps = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"
        tsne = TSNE(
            n_components=2,
            perplexity=perplexity,
            init="pca",
            learning_rate="auto",
            random_state=seed,
            **{steps: TSNE_ITERATIONS},
        )
        return tsne.fit_transform(embeddings)


@dataclasses.dataclass(frozen=True)
class EmbeddingPlot:
    """What `plot_embeddings` drew, to record beside the PNG.

    Attributes:
        path: the PNG file written.
        method: `"tsne"` or `"pca"`.
        num_points: rows of the embeddings given.
        num_drawn: rows projected and drawn (`num_points`, or a random
            subset of them).
    """

    path: str
    method: str
    num_points: int
    num_drawn: int

    @property
    def subsampled(self) -> bool:
        """Whether only a subset of the rows was drawn."""
        return self.num_drawn < self.num_points

    @property
    def note(self) -> str | None:
        """`"t-SNE of 5,000 of 12,000 points"` when subsampled (also in the figure title), else
        None."""
        if not self.subsampled:
            return None
        return f"{METHOD_NAMES[self.method]} of {self.num_drawn:,} of {self.num_points:,} points"


def plot_embeddings(
    embeddings: ArrayLike,
    labels: Any,
    path: str | os.PathLike[str],
    method: str = "tsne",
    max_points: int | None = None,
    seed: int = 0,
    title: str | None = None,
    class_names: Any = None,
) -> EmbeddingPlot:
    """Writes a PNG of the embeddings in 2-D, one panel per label level.

    The embeddings are mapped to 2-D, on one thread, with t-SNE
    (`sklearn.manifold.TSNE`, PCA initialisation, `TSNE_ITERATIONS` steps)
    or PCA (`sklearn.decomposition.PCA`), and drawn once per level, coloured
    by that level's class. A multi-hot level is coloured by each row's first
    label ("none" for an empty row). Unlabelled rows (-1) are drawn in grey.

    When there are more than `max_points` rows (by default, for t-SNE, more
    than `TSNE_MAX_POINTS` = 5,000; PCA draws every row), a random subset
    of `max_points` rows, fixed by `seed` and the same for every level, is
    projected and drawn; the figure title then says so (e.g. "t-SNE of 5,000
    of 12,000 points"), as does the `note` of the result.

    The figure is drawn with matplotlib's Agg canvas (no display needed; the
    global pyplot backend is left alone).

    Args:
        embeddings: `(N, D)` embeddings, `D >= 2`.
        labels: one level's labels (`(N,)` class ids or `(N, K)` multi-hot),
            or a dict `{level: labels}` for one panel per level.
        path: the PNG file to write; its folder is made when missing.
        method: `"tsne"` (default) or `"pca"`.
        max_points: most points drawn, or None (the default) for
            `TSNE_MAX_POINTS` with t-SNE and every point with PCA.
        seed: seed of the subsampling and of the projection. Defaults to 0.
        title: the figure title, or None.
        class_names: names shown in the legend: for one level a list (or a
            dict) indexed by class id, for a dict of levels a dict
            `{level: names}`. Defaults to the class ids. The legend is shown
            for levels with at most 20 classes.

    Returns:
        An `EmbeddingPlot`: the file written, the method, and how many of
        the points were drawn.

    Example:

    >>> x = np.random.default_rng(0).normal(size=(60, 8))
    >>> y = {"coarse": np.arange(60) % 2, "fine": np.arange(60) % 4}
    >>> plot = plot_embeddings(x, y, "embeddings.png", method="pca", max_points=50)
    >>> plot.path, plot.note
    ('embeddings.png', 'PCA of 50 of 60 points')
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    method = check_choice("method", method, PLOT_METHODS)
    if max_points is not None:
        check_positive_int("max_points", max_points)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` should be a non-negative integer. Received: `seed`={seed!r}")
    path = check_writable_path("path", path)
    points = check_embeddings("embeddings", embeddings)
    if points.shape[0] < 3 or points.shape[1] < 2:
        raise ValueError(
            "`embeddings` should have at least 3 rows and 2 columns. "
            f"Received: `embeddings.shape`={points.shape}"
        )
    single_level = not isinstance(labels, dict)
    levels = {"labels": labels} if single_level else dict(labels)
    if not levels:
        raise ValueError("`labels` should be an array or a non-empty dict {level: labels}.")
    if class_names is not None and not single_level and not isinstance(class_names, dict):
        raise ValueError(
            "`class_names` should be a dict {level: names} when `labels` is a dict. "
            f"Received: `class_names`={type(class_names).__name__}"
        )
    names_per_level = {"labels": class_names} if single_level else (class_names or {})
    checked = {
        level: check_level_labels(f"labels[{level!r}]", values, points.shape[0])
        for level, values in levels.items()
    }

    num_points = points.shape[0]
    if max_points is None:
        max_points = TSNE_MAX_POINTS if method == "tsne" else num_points
    rows = np.arange(num_points)
    if num_points > max_points:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(num_points, size=max_points, replace=False))
    plot = EmbeddingPlot(path, method, num_points, rows.size)
    if np.ptp(points[rows], axis=0).max() == 0:
        raise ValueError(
            "`embeddings` should not all be the same point: every drawn row is identical, so "
            "there is nothing to project."
        )
    coordinates = project_2d(points[rows], method, int(seed))

    figure = Figure(figsize=(5.5 * len(levels), 5.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(levels), squeeze=False)[0]
    for ax, (level, (values, multi_hot, labelled)) in zip(axes, checked.items(), strict=True):
        classes = _panel_classes(values[rows], multi_hot, labelled[rows])
        _draw_panel(ax, coordinates, classes, names_per_level.get(level))
        if not single_level:
            ax.set_title(str(level))
        ax.set_xticks([])
        ax.set_yticks([])
    titles = [str(title)] if title is not None else []
    if plot.note is not None:
        titles.append(f"({plot.note})" if titles else plot.note)
    if titles:
        figure.suptitle(" ".join(titles))
    figure.tight_layout()
    figure.savefig(path, format="png")
    return plot


def _panel_classes(values: np.ndarray, multi_hot: bool, labelled: np.ndarray) -> np.ndarray:
    """One int per point: its class (-1 unlabelled, -2 an empty multi-hot row)."""
    if not multi_hot:
        return np.where(labelled, values, -1)
    first = np.argmax(values, axis=1)
    empty = values.sum(axis=1) == 0
    return np.where(~labelled, -1, np.where(empty, -2, first))


def _draw_panel(ax: Any, coordinates: np.ndarray, classes: np.ndarray, class_names: Any) -> None:
    """Scatters one level's points, unlabelled first in grey, then each class."""
    import matplotlib

    for special, name in ((-1, "unlabelled"), (-2, "none")):
        mask = classes == special
        if mask.any():
            ax.scatter(*coordinates[mask].T, s=6, c=MISSING_COLOR, label=name, alpha=0.6)
    present = np.unique(classes[classes >= 0])
    if present.size <= 10:
        colormap = matplotlib.colormaps["tab10"]
    elif present.size <= MAX_LEGEND_CLASSES:
        colormap = matplotlib.colormaps["tab20"]
    else:
        colormap = matplotlib.colormaps["turbo"].resampled(present.size)
    for position, class_id in enumerate(present):
        mask = classes == class_id
        name = str(class_id)
        if class_names is not None:
            try:
                name = str(class_names[class_id])
            except (IndexError, KeyError, TypeError):
                name = str(class_id)
        ax.scatter(*coordinates[mask].T, s=8, color=colormap(position), label=name)
    if 0 < present.size <= MAX_LEGEND_CLASSES:
        ax.legend(fontsize="small", markerscale=2, loc="best", frameon=False)
