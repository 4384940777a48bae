import os

import keras
import numpy as np
import pytest

from keras_mlcl import SupCon
from tests.models import problems
from tests.testing import assert_allclose

COARSE = np.array(["animal", "plant"])
FINE = np.array(["ant", "bee", "cat", "dog", "elm", "fir", "ivy", "oak"])  # sorted


def string_problem(n=64):
    """The clustered problem with names for its ids (object arrays, a few unlabelled)."""
    x, y = problems.clustered(n=n, fine_classes=8, per_coarse=4)
    fine = y["fine"].copy()
    fine[[3, 10]] = -1
    names = {"coarse": COARSE[y["coarse"]].astype(object), "fine": FINE[fine].astype(object)}
    names["fine"][3], names["fine"][10] = None, ""
    return x, {"coarse": y["coarse"], "fine": fine}, names


def test_string_labels_train_as_their_sorted_class_ids():
    x, ids, names = string_problem()
    ids = {k: v.astype("int32") for k, v in ids.items()}  # the dtype of the mapped names
    # Validation rows of the last classes only: their ids come from the recorded mapping.
    keep = ids["fine"] >= 5
    val_ids = {k: v[keep] for k, v in ids.items()}
    val_names = {k: list(v[keep]) for k, v in names.items()}  # lists work too
    model = problems.model()
    model.compile(optimizer=keras.optimizers.SGD(0.1))  # stateless: a rerun is a fresh run
    model.build(x.shape)
    initial = model.get_weights()
    histories = []
    for y, validation in ((names, (x[keep], val_names)), (ids, (x[keep], val_ids))):
        model.set_weights(initial)
        kwargs = dict(batch_size=32, epochs=2, verbose=0, shuffle=False)
        histories.append(model.fit(x, y, validation_data=validation, **kwargs).history)
    assert model.class_names == {"coarse": COARSE.tolist(), "fine": FINE.tolist()}
    with_names, with_ids = histories
    assert sorted(with_names) == sorted(with_ids)
    for key, values in with_ids.items():
        assert_allclose(with_names[key], values, atol=1e-6)
    assert model.get_config()["class_names"] == model.class_names
    got = model.evaluate(x[keep], val_names, verbose=0, return_dict=True)
    expected = model.evaluate(x[keep], val_ids, verbose=0, return_dict=True)
    assert_allclose(got["loss"], expected["loss"], atol=1e-6)


def fitted(**kwargs):
    """A model trained for one step on the string problem's names."""
    x, _, names = string_problem()
    model = problems.model(**kwargs)
    model.compile(optimizer="sgd")
    model.fit(x, names, batch_size=64, epochs=1, verbose=0)
    return model


def test_class_names_come_back_from_a_keras_file(tmp_path):
    names = {"coarse": COARSE.tolist(), "fine": FINE.tolist()}
    model = problems.model(classifier={"fine": 8}, ce_weight=0.5, class_names=names)
    model.build((None, 16))
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert restored.class_names == names
    assert restored.class_ids("fine", ["oak", None]).tolist() == [7, -1]
    assert restored.class_name_of("coarse", np.array([[1, 0]])).tolist() == [["plant", "animal"]]


def test_unknown_names_raise_and_leave_the_mapping_as_it_was():
    x, _, names = string_problem()
    model = fitted()
    before = model.class_names
    bad = dict(names, fine=np.array(["yew", "ant", "zelkova"] * 21 + ["ant"]))
    with pytest.raises(ValueError, match=r"y\['fine'\].*level 'fine'.*\['yew', 'zelkova'\]"):
        model.fit(x, bad, epochs=1, verbose=0)
    assert model.class_names == before
    with pytest.raises(ValueError, match="level 'fine'"):
        model.evaluate(x, bad, verbose=0)
    # Names of a call that raises are not recorded.
    fresh = problems.model()
    fresh.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=r"validation_data\[1\]\['fine'\].*\['yew', 'zelkova'\]"):
        fresh.fit(x, names, epochs=1, verbose=0, validation_data=(x, bad))
    assert fresh.class_names == {} and not fresh.built


def test_evaluate_needs_names_from_a_fit_or_the_constructor():
    x, ids, names = string_problem()
    model = problems.model()
    model.compile(optimizer="sgd")
    model.fit(x, ids, batch_size=64, epochs=1, verbose=0)
    assert model.class_names == {}
    with pytest.raises(ValueError, match="Level 'coarse' has no class names"):
        model.evaluate(x, names, verbose=0)
    # Validation labels map with the training names; they record none.
    with pytest.raises(ValueError, match="Level 'coarse' has no class names"):
        model.fit(x, ids, epochs=1, verbose=0, validation_data=(x, names))
    assert model.class_names == {}


def test_classifier_needs_a_class_per_name():
    x, _, names = string_problem()
    model = problems.model(classifier={"fine": 4}, ce_weight=0.5)
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"'fine' has 8 class names but `classifier\['fine'\]`"):
        model.fit(x, names, epochs=1, verbose=0)
    assert not model.built and model.class_names == {}
    with pytest.raises(ValueError, match=r"'fine' has 5 class names"):
        problems.model(classifier={"fine": 4}, ce_weight=0.5, class_names={"fine": list("abcde")})


@pytest.mark.parametrize(
    "class_names, match",
    [
        (["a"], "should be a dict"),
        ({"middle": ["a"]}, "no head or classifier level"),
        ({"fine": ["a", "a"]}, "distinct non-empty strings"),
        ({"fine": "ab"}, "distinct non-empty strings"),
        ({"fine": [1, 2]}, "distinct non-empty strings"),
    ],
)
def test_bad_class_names_raise(class_names, match):
    with pytest.raises(ValueError, match=match):
        problems.model(class_names=class_names)


def test_one_head_model_takes_a_plain_string_array_and_given_names():
    x, ids, names = string_problem()
    order = FINE[::-1].tolist()  # given names need not be sorted
    model = problems.model(heads={"z": 8}, loss=SupCon(), class_names={"z": order})
    model.compile(optimizer="sgd")
    got = model.evaluate(x, names["fine"], verbose=0)
    expected = model.evaluate(x, np.where(ids["fine"] < 0, -1, 7 - ids["fine"]), verbose=0)
    assert_allclose(got, expected, atol=1e-6)
    assert model.class_ids("z", names["fine"][:4]).tolist() == [7 - i for i in ids["fine"][:3]] + [
        -1
    ]
    assert model.get_config()["class_names"] == {"z": order}


def test_string_labels_in_a_dataset_need_mapping_first():
    x, _, names = string_problem()

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            rows = slice(32 * i, 32 * (i + 1))
            return x[rows], {k: np.asarray(v[rows], dtype=str) for k, v in names.items()}

    model = problems.model()
    model.compile(optimizer="sgd")
    for run in (model.fit, model.evaluate):
        with pytest.raises(ValueError, match=r"model.class_ids\(level, names\)"):
            run(Batches(), verbose=0)


def test_int_labels_still_reach_keras_as_they_are():
    x, ids, _ = string_problem()
    model = problems.model(class_names={"fine": FINE.tolist()})
    assert model.labels_as_ids(ids) == ids
    assert model.labels_as_ids(None) is None
    with pytest.raises(ValueError, match="one column per head"):
        model.labels_as_ids(np.array([["a", "b", "c"]]))
    with pytest.raises(ValueError, match="Level 'coarse' has no class names"):
        model.labels_as_ids(np.array([["animal", "ant"]]))
    recorded = {}
    columns = model.labels_as_ids(
        np.array([["plant", "oak"], ["animal", "ant"]]), recorded, record=True
    )
    # The columns are the heads, coarse to fine; the names of levels without any are recorded.
    assert {k: v.tolist() for k, v in columns.items()} == {"coarse": [1, 0], "fine": [1, 0]}
    assert recorded == {"coarse": ["animal", "plant"], "fine": ["ant", "oak"]}
