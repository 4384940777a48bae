"""Run folders: written beside, swapped in when complete, never touching foreign files."""

import errno
import json
import os

import pytest

from keras_mlcl.experiments.run_folder import MARKER
from keras_mlcl.experiments.run_folder import RunFolderError
from keras_mlcl.experiments.run_folder import add_to_run
from keras_mlcl.experiments.run_folder import foreign_files
from keras_mlcl.experiments.run_folder import run_folder
from keras_mlcl.utils.atomic_write import TEMP_TAG
from keras_mlcl.utils.atomic_write import sibling_prefix
from keras_mlcl.utils.atomic_write import write_beside
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
    prefix = os.path.join(tmp_path, sibling_prefix(TEMP_TAG, "run"))
    ours = prefix + "dead"
    write(
        os.path.join(ours, ".keras-mlcl-partial.json"),
        json.dumps({"pid": dead_pid, "host": os.uname().nodename}),
    )
    alive = prefix + "alive"
    write(
        os.path.join(alive, ".keras-mlcl-partial.json"),
        json.dumps({"pid": os.getpid(), "host": os.uname().nodename}),
    )
    look_alike = prefix + "user"
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


def test_link_to_a_finished_run_replaces_the_run_it_points_to_and_keeps_the_link(tmp_path):
    real = os.path.join(tmp_path, "runs", "2024")
    make_run(real, "first")
    link = os.path.join(tmp_path, "latest")
    os.symlink(real, link)
    with pytest.raises(RunFolderError, match="pass --overwrite"):
        make_run(link, "second")
    make_run(link, "second", overwrite=True)
    assert os.path.islink(link) and os.readlink(link) == real
    assert read(os.path.join(real, "results.json")) == "second"
    assert sorted(os.listdir(tmp_path)) == ["latest", "runs"]  # no old run, no temp left
    assert os.listdir(os.path.join(tmp_path, "runs")) == ["2024"]


def test_link_to_an_empty_folder_gets_the_run_and_a_dangling_link_is_refused(tmp_path):
    empty = os.path.join(tmp_path, "empty")
    os.makedirs(empty)
    link = os.path.join(tmp_path, "link")
    os.symlink(empty, link)
    make_run(link)
    assert os.path.islink(link)
    assert read(os.path.join(empty, "results.json")) == "first"
    dangling = os.path.join(tmp_path, "dangling")
    os.symlink(os.path.join(tmp_path, "nowhere"), dangling)
    with pytest.raises(RunFolderError, match="which does not exist"):
        make_run(dangling)
    assert sorted(os.listdir(tmp_path)) == ["dangling", "empty", "link"]
    assert os.path.islink(dangling)


def test_mount_point_is_refused_before_the_run(tmp_path, monkeypatch):
    mount = os.path.join(tmp_path, "disk")
    os.makedirs(mount)
    real_ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda path: path == mount or real_ismount(path))
    with pytest.raises(RunFolderError, match="is a mount point"):
        with run_folder(mount, "train"):
            pytest.fail("the run should not start")
    assert os.listdir(tmp_path) == ["disk"] and os.listdir(mount) == []
    make_run(os.path.join(mount, "run"))  # a folder inside it is fine
    assert read(os.path.join(mount, "run", "results.json")) == "first"


def test_longest_valid_name_gets_a_run_and_a_replacement(tmp_path):
    out = os.path.join(tmp_path, "r" * 250)
    make_run(out, "first")
    make_run(out, "second", overwrite=True)
    assert read(os.path.join(out, "results.json")) == "second"
    assert os.listdir(tmp_path) == ["r" * 250]


def test_failed_write_keeps_the_old_run_and_names_the_run_folder(tmp_path):
    out = os.path.join(tmp_path, "run")
    make_run(out, "first")
    before = file_tree(tmp_path)
    with pytest.raises(OSError) as error:
        with run_folder(out, "train", overwrite=True):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as a full disk's write
    assert error.value.filename == out
    assert file_tree(tmp_path) == before


def test_write_beside_replaces_only_when_asked_and_never_on_failure(tmp_path):
    out = os.path.join(tmp_path, "f" * 250 + ".txt"[: 255 - 250])
    with write_beside(out) as partial:
        write(partial, "first")
    with pytest.raises(ValueError, match="never replaced"):
        with write_beside(out) as partial:
            write(partial, "second")
    with pytest.raises(OSError) as error:
        with write_beside(out, replace=True) as partial:
            write(partial, "half")
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))  # as `ulimit -f`
    assert error.value.filename == out
    assert read(out) == "first"
    with write_beside(out, replace=True) as partial:
        write(partial, "second")
    assert read(out) == "second"
    assert os.listdir(tmp_path) == [os.path.basename(out)]
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~current_umask()


def current_umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask
