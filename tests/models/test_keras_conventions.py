"""ContrastiveModel with Keras' own conventions: class_weight, compile metrics, build/summary."""

import warnings

import keras
import numpy as np
import pytest

from keras_mlcl import ContrastiveModel
from keras_mlcl import SupCon
from tests.models import problems
from tests.testing import assert_allclose

CLASS_WEIGHT = {0: 3.0, 1: 0.5, 5: 2.0}


def classifier_model(seed=0):
    return problems.model(seed=seed, classifier={"coarse": 2, "fine": 8}, ce_weight=1.0)


def one_step(model, x, y, **fit_kwargs):
    """The logs of one training step on the whole batch (no augmentation: identical views)."""
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    history = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0, **fit_kwargs)
    return {k: v[0] for k, v in history.history.items()}, model.get_weights()


def softmax_ce(logits, labels):
    logits = logits - logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(labels)), labels]


def test_class_weight_equals_the_explicit_sample_weight():
    x, y = problems.clustered(n=64)
    weights = np.array([CLASS_WEIGHT.get(int(c), 1.0) for c in y["fine"]], dtype="float32")
    with_class_weight, trained_a = one_step(classifier_model(), x, y, class_weight=CLASS_WEIGHT)
    with_sample_weight, trained_b = one_step(classifier_model(), x, y, sample_weight=weights)
    unweighted, _ = one_step(classifier_model(), x, y)
    for key in ("loss", "coarse_loss", "fine_loss", "coarse_ce", "fine_ce"):
        assert_allclose(with_class_weight[key], with_sample_weight[key], atol=1e-5)
        assert abs(with_class_weight[key] - unweighted[key]) > 1e-3
    for a, b in zip(trained_a, trained_b, strict=True):
        assert_allclose(a, b, atol=1e-5)


def test_class_weight_weights_the_cross_entropy_per_sample():
    x, y = problems.clustered(n=64)
    model = classifier_model()
    logits = model.predict(x, verbose=0)["fine_logits"]  # the weights before the step
    logs, _ = one_step(model, x, y, class_weight=CLASS_WEIGHT)
    weights = np.array([CLASS_WEIGHT.get(int(c), 1.0) for c in y["fine"]])
    expected = np.mean(weights * softmax_ce(logits.astype("float64"), y["fine"]))
    assert_allclose(logs["fine_ce"], expected, atol=1e-4)


def test_sample_weight_from_class_weight_uses_the_finest_level():
    model = classifier_model()
    y = {"coarse": np.array([0, 0, 1, 1]), "fine": np.array([0, 1, 5, 7])}
    np.testing.assert_array_equal(
        model.sample_weight_from_class_weight(y, CLASS_WEIGHT), [3.0, 0.5, 2.0, 1.0]
    )
    levels = np.stack([y["coarse"], y["fine"]], axis=1)  # (N, L) columns, coarse to fine
    np.testing.assert_array_equal(
        model.sample_weight_from_class_weight(levels, CLASS_WEIGHT), [3.0, 0.5, 2.0, 1.0]
    )


def test_class_weight_errors_name_what_to_use_instead():
    x, y = problems.clustered(n=32)
    model = classifier_model()
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="either `class_weight` or `sample_weight`"):
        model.fit(x, y, class_weight=CLASS_WEIGHT, sample_weight=np.ones(32), verbose=0)
    with pytest.raises(ValueError, match="should be a dict"):
        model.fit(x, y, class_weight=[1.0, 2.0], verbose=0)
    dataset = keras.utils.PyDataset()
    with pytest.raises(ValueError, match=r"yield `\(x, y, sample_weight\)`"):
        model.fit(dataset, class_weight=CLASS_WEIGHT, verbose=0)
    multi_hot = (np.random.default_rng(0).random((32, 5)) > 0.5).astype("int32")
    single = ContrastiveModel(problems.encoder(), heads={"labels": 8}, loss=SupCon())
    single.compile(optimizer="adam")
    with pytest.raises(ValueError, match="Pass `sample_weight`"):
        single.fit(x, multi_hot, class_weight=CLASS_WEIGHT, verbose=0)


def test_compile_metrics_are_logged_per_classifier_level():
    x, y = problems.clustered(n=64)
    y["fine"] = y["fine"].copy()
    y["fine"][:8] = -1  # unlabelled rows count in no metric
    model = classifier_model()
    model.compile(
        optimizer=keras.optimizers.SGD(0.1),
        metrics={"fine": ["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=3)]},
    )
    logits = model.predict(x, verbose=0)["fine_logits"]
    history = model.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0).history
    labelled = y["fine"] >= 0
    accuracy = np.mean(logits.argmax(-1)[labelled] == y["fine"][labelled])
    top3 = np.argsort(-logits, axis=1)[:, :3]
    top3_accuracy = np.mean([y["fine"][i] in top3[i] for i in np.flatnonzero(labelled)])
    assert "coarse_accuracy" not in history
    assert_allclose(history["fine_accuracy"][0], accuracy, atol=1e-6)
    assert_allclose(history["fine_sparse_top_k_categorical_accuracy"][0], top3_accuracy, atol=1e-6)
    logits = model.predict(x, verbose=0)["fine_logits"]
    result = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    assert_allclose(
        result["fine_accuracy"],
        np.mean(logits.argmax(-1)[labelled] == y["fine"][labelled]),
        atol=1e-6,
    )


def test_compile_metrics_list_applies_to_every_level_and_weighted_metrics_use_weights():
    x, y = problems.clustered(n=64)
    model = classifier_model()
    model.compile(
        optimizer=keras.optimizers.SGD(0.0), metrics=["accuracy"], weighted_metrics=["accuracy"]
    )
    logits = model.predict(x, verbose=0)
    weights = np.linspace(0.0, 2.0, 64).astype("float32")
    history = model.fit(
        x, y, sample_weight=weights, batch_size=64, epochs=1, shuffle=False, verbose=0
    ).history
    for level in ("coarse", "fine"):
        correct = logits[f"{level}_logits"].argmax(-1) == y[level]
        assert_allclose(history[f"{level}_accuracy"][0], correct.mean(), atol=1e-6)
        assert_allclose(
            history[f"{level}_weighted_accuracy"][0],
            np.sum(weights * correct) / np.sum(weights),
            atol=1e-5,
        )


def test_compile_metrics_need_a_classifier():
    model = problems.model()
    with pytest.raises(ValueError, match="no `classifier`"):
        model.compile(optimizer="adam", metrics=["accuracy"])
    with pytest.raises(ValueError, match="no classifier level"):
        classifier_model().compile(optimizer="adam", metrics={"labels": ["accuracy"]})


def test_compile_metrics_survive_saving(tmp_path):
    x, y = problems.clustered(n=64)
    model = classifier_model()
    model.compile(optimizer="adam", metrics={"fine": ["accuracy"]})
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = keras.saving.load_model(path)
    expected = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    result = loaded.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    assert_allclose(result["fine_accuracy"], expected["fine_accuracy"], atol=1e-6)


def test_build_gives_the_summary_real_shapes_without_warning():
    model = problems.model(heads={"coarse": 64, "fine": 128}, classifier={"fine": 8}, ce_weight=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.build((None, 16))
    lines = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    text = "\n".join(lines)
    assert "(None, 64)" in text and "(None, 128)" in text and "(None, 8)" in text
    assert "unbuilt" not in text and "?" not in text
    # Every weight exists: encoder, two heads (hidden 512) and the classifier.
    heads = (16 * 512 + 512 + 512 * 64 + 64) + (16 * 512 + 512 + 512 * 128 + 128)
    assert model.count_params() == problems.encoder().count_params() + heads + 16 * 8 + 8
