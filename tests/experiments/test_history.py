import csv
import os

import numpy as np
import pytest

from keras_mlcl.experiments.history import head_names
from keras_mlcl.experiments.history import plot_loss_curves
from keras_mlcl.experiments.history import write_history_csv

pytestmark = pytest.mark.backend_independent


def lines(figure):
    (axes,) = figure.axes
    return [(line.get_label(), *line.get_data()) for line in axes.get_lines()]


def legend(figure):
    legend = figure.axes[0].get_legend()
    return None if legend is None else [text.get_text() for text in legend.get_texts()]


def test_validation_curve_is_drawn_beside_the_training_one(tmp_path, saved_figures):
    history = {
        "loss": [3.0, 2.0, 1.0],
        "coarse_loss": [2.0, 1.5, 1.0],
        "val_coarse_loss": [2.5, 1.8, 1.6],
        "fine_loss": [1.0, 0.5, 0.25],
        "val_loss": [3.5, 2.5, 2.0],
    }
    assert plot_loss_curves(history, str(tmp_path), "data") == ["loss_coarse.png", "loss_fine.png"]
    assert all(
        (tmp_path / name).stat().st_size > 1000 for name in ["loss_coarse.png", "loss_fine.png"]
    )
    coarse, fine = saved_figures
    (train_label, train_x, train_y), (val_label, val_x, val_y) = lines(coarse)
    assert (train_label, val_label) == ("train", "validation")
    np.testing.assert_array_equal(train_x, [1, 2, 3])
    np.testing.assert_array_equal(train_y, history["coarse_loss"])
    np.testing.assert_array_equal(val_x, [1, 2, 3])
    np.testing.assert_array_equal(val_y, history["val_coarse_loss"])
    assert legend(coarse) == ["train", "validation"]
    assert coarse.axes[0].get_title() == "data: coarse head"
    # No `val_fine_loss`: one line, no legend.
    ((label, x, y),) = lines(fine)
    np.testing.assert_array_equal(y, history["fine_loss"])
    assert legend(fine) is None


def test_validation_every_two_epochs_is_drawn_at_even_epochs(tmp_path, saved_figures):
    history = {"fine_loss": [4.0, 3.0, 2.0, 1.0, 0.5], "val_fine_loss": [3.5, 1.5]}
    plot_loss_curves(history, str(tmp_path))
    (figure,) = saved_figures
    _, (_, val_x, val_y) = lines(figure)
    np.testing.assert_array_equal(val_x, [2, 4])
    np.testing.assert_array_equal(val_y, [3.5, 1.5])


def test_head_names_leave_out_validation_losses():
    history = {"loss": [1.0], "val_loss": [1.0], "a_loss": [1.0], "val_a_loss": [1.0]}
    assert head_names(history) == ["a"]
    # A head named `val_b` (no `b_loss` beside it) stays a head.
    assert head_names({"val_b_loss": [1.0]}) == ["val_b"]


def test_write_history_csv(tmp_path):
    path = tmp_path / "history.csv"
    write_history_csv({"loss": [2.0, 1.0], "val_loss": [2.5, 1.5]}, path)
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    assert rows == [["epoch", "loss", "val_loss"], ["1", "2.0", "2.5"], ["2", "1.0", "1.5"]]


@pytest.mark.backend_independent
def test_index_folders_of_long_or_odd_level_names_are_bounded():
    # A 250-character level name made `index/<name>` too long for the file system.
    from keras_mlcl.experiments.saved_run import index_path

    assert index_path("fine") == os.path.join("index", "fine")  # runs saved before still load
    long = index_path("a" * 250)
    assert long.startswith(os.path.join("index", "a")) and len(os.path.basename(long)) <= 64
    assert index_path("a" * 250) != index_path("a" * 249)
    assert os.sep not in os.path.basename(index_path("x/y"))
