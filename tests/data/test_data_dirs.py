import os

import pytest

from keras_mlcl.cli.main import main
from keras_mlcl.data.data_dirs import data_root
from keras_mlcl.data.data_dirs import dataset_folder

pytestmark = pytest.mark.backend_independent


def test_data_dir_argument_comes_before_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_MLCL_DATA", str(tmp_path / "from_env"))
    assert data_root() == str(tmp_path / "from_env")
    assert data_root(tmp_path / "given") == str(tmp_path / "given")
    assert dataset_folder("mulan_scene", "mulan/scene") == os.path.join(
        str(tmp_path / "from_env"), "mulan/scene"
    )
    assert dataset_folder("clinc150", "clinc150", "~/data") == os.path.join(
        os.path.expanduser("~/data"), "clinc150"
    )


def test_no_data_folder_is_an_error_naming_both_ways(no_data_dir):
    assert data_root() is None
    with pytest.raises(FileNotFoundError, match=r"--data-dir DIR .* KERAS_MLCL_DATA=DIR"):
        dataset_folder("clinc150", "clinc150")


def test_command_without_a_data_folder_says_so_in_one_line(no_data_dir, tmp_path, capsys):
    code = main(["train", "--data", "clinc150", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "keras-mlcl: error: dataset 'clinc150' needs its files: pass --data-dir DIR "
        "(`data_dir` in Python) or set KERAS_MLCL_DATA=DIR (looked for DIR/clinc150)\n"
    )
    assert not os.listdir(tmp_path)
