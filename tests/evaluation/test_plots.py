import os
import struct

import numpy as np
import pytest

from keras_mlcl.evaluation import plot_embeddings
from keras_mlcl.evaluation import plots
from tests.evaluation.synthetic import clusters

pytestmark = pytest.mark.backend_independent

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(path, panels=None):
    """The PNG's bytes; with `panels`, checks its shape: a 5.5 x 5 inch panel per level, side
    by side (width / height = 1.1 per panel, whatever matplotlib's dpi)."""
    with open(path, "rb") as file:
        data = file.read()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 5000
    if panels is not None:
        width, height = struct.unpack(">II", data[16:24])  # from the IHDR chunk
        assert width / height == pytest.approx(1.1 * panels, abs=0.01), (width, height)
    return data


def test_tsne_writes_one_png_with_a_panel_per_level(tmp_path):
    x, labels = clusters(seed=0, per_class=30)  # 180 points
    labels["fine"][:10] = -1
    multi_hot = np.stack([labels["fine"] % 2, labels["fine"] >= 3], axis=1).astype(int)
    multi_hot[:5] = -1
    labels["aspects"] = multi_hot
    path = str(tmp_path / "tsne.png")
    written = plot_embeddings(
        x,
        labels,
        path,
        title="t-SNE",
        class_names={"coarse": ["a", "b", "c"], "fine": {0: "zero"}},
    )
    assert (written.path, written.method, written.num_drawn, written.note) == (
        path,
        "tsne",
        180,
        None,
    )
    read_png(path, panels=3)


def test_pca_single_level_in_a_new_folder(tmp_path):
    x, labels = clusters(seed=1)
    path = str(tmp_path / "new" / "folder" / "pca.png")
    assert plot_embeddings(x, labels["fine"], path, method="pca").path == path
    read_png(path, panels=1)


def test_subsampling_is_deterministic(tmp_path):
    x, labels = clusters(seed=2, per_class=40)
    paths = [str(tmp_path / f"{name}.png") for name in ("a", "b")]
    for path in paths:
        plot_embeddings(x, labels, path, method="pca", max_points=50, seed=3)
    assert read_png(paths[0], panels=2) == read_png(paths[1])


def legends(figure):
    return [[text.get_text() for text in ax.get_legend().get_texts()] for ax in figure.axes]


def test_tsne_over_the_limit_draws_a_subsample_and_says_so(tmp_path, monkeypatch, saved_figures):
    monkeypatch.setattr(plots, "TSNE_MAX_POINTS", 30)
    x, labels = clusters(seed=4, per_class=10)  # 60 points, 6 fine classes
    names = {"coarse": ["animal", "vehicle", "plant"]}
    plot = plot_embeddings(x, labels, str(tmp_path / "a.png"), title="test set", class_names=names)
    assert (plot.method, plot.num_points, plot.num_drawn, plot.subsampled) == ("tsne", 60, 30, True)
    assert plot.note == "t-SNE of 30 of 60 points"
    figure = saved_figures[-1]
    assert figure.get_suptitle() == "test set (t-SNE of 30 of 60 points)"
    coarse, fine = legends(figure)
    assert coarse == ["animal", "vehicle", "plant"]
    assert fine == sorted(fine) and set(fine) <= {str(c) for c in range(6)}
    for ax in figure.axes:  # the same 30 points in each panel
        assert sum(len(c.get_offsets()) for c in ax.collections) == 30
    read_png(plot.path, panels=2)


def test_pca_draws_every_point_by_default(tmp_path, monkeypatch, saved_figures):
    monkeypatch.setattr(plots, "TSNE_MAX_POINTS", 50)
    x, labels = clusters(seed=5, per_class=20)
    plot = plot_embeddings(x, labels["fine"], str(tmp_path / "p.png"), method="pca")
    assert (plot.num_points, plot.num_drawn, plot.subsampled, plot.note) == (120, 120, False, None)
    assert saved_figures[-1].get_suptitle() == ""
    assert legends(saved_figures[-1]) == [[str(c) for c in range(6)]]
    # The panel is PCA: the points' coordinates are sklearn's PCA of the embeddings.
    from sklearn.decomposition import PCA

    drawn = np.concatenate([c.get_offsets() for c in saved_figures[-1].axes[0].collections])
    expected = PCA(n_components=2, random_state=0).fit_transform(x)
    np.testing.assert_allclose(
        np.sort(drawn, axis=0), np.sort(expected, axis=0), rtol=1e-5, atol=1e-5
    )
    # An explicit `max_points` subsamples PCA too; without a title, the note is the title.
    plot = plot_embeddings(x, labels["fine"], str(tmp_path / "q.png"), method="pca", max_points=40)
    assert plot.note == "PCA of 40 of 120 points"
    assert saved_figures[-1].get_suptitle() == "PCA of 40 of 120 points"


def test_many_classes_without_legend(tmp_path):
    """30 classes leave out the legend; the check is that the one panel is still drawn."""
    rng = np.random.default_rng(0)
    path = str(tmp_path / "many.png")
    plot_embeddings(rng.normal(size=(120, 4)), np.arange(120) % 30, path, method="pca")
    read_png(path, panels=1)


def test_unwritable_folder_raises(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    x, labels = clusters(seed=0)
    with pytest.raises(ValueError, match="`path` should be in a writable folder"):
        plot_embeddings(x, labels, str(blocker / "plot.png"), method="pca")
    with pytest.raises(ValueError, match="not a folder"):
        plot_embeddings(x, labels, str(tmp_path), method="pca")
    assert not os.path.exists(blocker / "plot.png")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "umap"}, "`method` should be one of"),
        ({"max_points": 0}, "`max_points`"),
        ({"method": "TSNE"}, "`method` should be one of 'tsne', 'pca'"),
        ({"seed": -1}, "`seed`"),
        ({"labels": {"fine": np.zeros(3, int)}}, "one row per embedding"),
        ({"labels": {}}, "non-empty dict"),
        ({"embeddings": np.ones((10, 1))}, "at least 3 rows and 2 columns"),
        ({"class_names": ["a"]}, "`class_names` should be a dict"),
    ],
)
def test_invalid_arguments_raise(tmp_path, kwargs, message):
    x, labels = clusters(seed=0)
    arguments = {"embeddings": x, "labels": labels, "path": str(tmp_path / "p.png")}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        plot_embeddings(method=arguments.pop("method", "pca"), **arguments)
