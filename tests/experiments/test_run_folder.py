"""Run folders: written beside, swapped in when complete, never touching foreign files."""

import json
import os

import pytest

from keras_mlcl.experiments.run_folder import MARKER
from keras_mlcl.experiments.run_folder import RunFolderError
from keras_mlcl.experiments.run_folder import add_to_run
from keras_mlcl.experiments.run_folder import foreign_files
from keras_mlcl.experiments.run_folder import run_folder
from tests.testing import file_tree

pytestmark = pytest.mark.backend_independent


def write(path, text="x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def read(path):
    with open(path) as f:
        return f.read()


def make_run(out, text="first", overwrite=False):
    with run_folder(out, "train", overwrite=overwrite) as folder:
        write(os.path.join(folder, "results.json"), text)
        write(os.path.join(folder, "saved_model", "saved_model.pb"), text)


def test_new_folder_gets_the_run_and_a_marker_listing_every_file(tmp_path):
    out = os.path.join(tmp_path, "runs", "first")
    make_run(out)
    with open(os.path.join(out, MARKER)) as f:
        marker = json.load(f)
    assert marker["kind"] == "train"
    assert marker["files"] == ["results.json", os.path.join("saved_model", "saved_model.pb")]
    assert foreign_files(out) == []
    assert sorted(os.listdir(os.path.join(tmp_path, "runs"))) == ["first"]  # no temp left


def test_folder_with_user_files_is_refused_and_untouched(tmp_path):
    out = os.path.join(tmp_path, "myproject")
    write(os.path.join(out, "notes.txt"), "mine")
    write(os.path.join(out, "data", "train.csv"), "1,2")
    before = file_tree(tmp_path)
    for overwrite in (False, True):
        with pytest.raises(RunFolderError, match="is not a keras-mlcl run"):
            make_run(out, overwrite=overwrite)
    assert file_tree(tmp_path) == before


@pytest.mark.parametrize("target", [".", "..", "{data_parent}"])
def test_folder_containing_the_working_folder_or_the_data_is_refused(tmp_path, target, monkeypatch):
    work = os.path.join(tmp_path, "work")
    data = os.path.join(tmp_path, "inputs", "mine.npz")
    write(data, "npz")
    os.makedirs(work)
    monkeypatch.chdir(work)
    before = file_tree(tmp_path)
    target = os.path.dirname(data) if target == "{data_parent}" else target
    with pytest.raises(RunFolderError, match="contains"):
        with run_folder(target, "train", overwrite=True, protected=[data]):
            pytest.fail("the run should not start")
    assert file_tree(tmp_path) == before


def test_finished_run_needs_overwrite_and_is_replaced_only_when_complete(tmp_path):
    out = os.path.join(tmp_path, "run")
    make_run(out, "first")
    with pytest.raises(RunFolderError, match="pass --overwrite"):
        make_run(out, "second")
    assert read(os.path.join(out, "results.json")) == "first"

    with pytest.raises(KeyboardInterrupt):  # a run killed half-way
        with run_folder(out, "train", overwrite=True) as folder:
            write(os.path.join(folder, "results.json"), "half")
            raise KeyboardInterrupt
    assert read(os.path.join(out, "results.json")) == "first"
    assert os.listdir(tmp_path) == ["run"]

    make_run(out, "second", overwrite=True)
    assert read(os.path.join(out, "results.json")) == "second"
    assert os.listdir(tmp_path) == ["run"]  # the old run is gone, nothing else left


def test_run_folder_holding_foreign_files_is_refused_even_with_overwrite(tmp_path):
    out = os.path.join(tmp_path, "run")
    make_run(out)
    write(os.path.join(out, "saved_model", "my_notes.txt"), "mine")
    before = file_tree(tmp_path)
    with pytest.raises(RunFolderError, match="did not write"):
        make_run(out, "second", overwrite=True)
    assert file_tree(tmp_path) == before


def test_empty_folder_and_file_targets(tmp_path):
    empty = os.path.join(tmp_path, "empty")
    os.makedirs(empty)
    make_run(empty)
    assert read(os.path.join(empty, "results.json")) == "first"
    a_file = os.path.join(tmp_path, "a_file")
    write(a_file, "mine")
    with pytest.raises(RunFolderError, match="It is a file"):
        make_run(a_file)
    assert read(a_file) == "mine"


def test_stale_temp_folder_is_removed_only_when_ours_and_dead(tmp_path):
    dead_pid = 2**22 + 12345  # above Linux's pid_max default: no such process
    ours = os.path.join(tmp_path, ".run.keras-mlcl-tmp-dead")
    write(
        os.path.join(ours, ".keras-mlcl-partial.json"),
        json.dumps({"pid": dead_pid, "host": os.uname().nodename}),
    )
    alive = os.path.join(tmp_path, ".run.keras-mlcl-tmp-alive")
    write(
        os.path.join(alive, ".keras-mlcl-partial.json"),
        json.dumps({"pid": os.getpid(), "host": os.uname().nodename}),
    )
    look_alike = os.path.join(tmp_path, ".run.keras-mlcl-tmp-user")
    write(os.path.join(look_alike, "notes.txt"), "mine")
    make_run(os.path.join(tmp_path, "run"))
    assert not os.path.exists(ours)
    assert os.path.exists(alive)
    assert read(os.path.join(look_alike, "notes.txt")) == "mine"


def test_add_to_run_records_a_later_file(tmp_path):
    out = os.path.join(tmp_path, "run")
    make_run(out)
    write(os.path.join(out, "metrics.json"), "{}")
    assert foreign_files(out) == ["metrics.json"]
    add_to_run(out, "metrics.json")
    assert foreign_files(out) == []
    make_run(out, "second", overwrite=True)
    assert not os.path.exists(os.path.join(out, "metrics.json"))
