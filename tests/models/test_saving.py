import json
import os
import subprocess
import sys

import keras
import numpy as np

from keras_mlcl import ContrastiveModel
from keras_mlcl import SupCon
from tests.models import problems
from tests.testing import assert_allclose

SERVE = """
import json, sys
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])  # keep a reference while serving
out = loaded.serve(tf.constant(np.load(sys.argv[2])))
np.savez(sys.argv[3], **{k: v.numpy() for k, v in out.items()})
"""


def trained(**kwargs):
    x, y = problems.clustered()
    model = problems.model(**kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, y if "loss" not in kwargs else y["fine"], batch_size=64, epochs=1, verbose=0)
    return model, x


def test_keras_round_trip_restores_an_identical_model(tmp_path):
    model, x = trained(
        classifier={"fine": 8},
        ce_weight=0.3,
        views=3,
        augment=keras.layers.GaussianNoise(0.05),
    )
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, ContrastiveModel)
    assert restored.views == 3 and restored.classifier == {"fine": 8}
    assert restored.contrastive_loss.get_config() == model.contrastive_loss.get_config()
    expected, got = model.predict(x, verbose=0), restored.predict(x, verbose=0)
    assert sorted(got) == sorted(expected)
    for key in expected:
        assert_allclose(got[key], expected[key], atol=1e-6)
    # Training goes on from the restored model.
    restored.fit(x, problems.clustered()[1], batch_size=64, epochs=1, verbose=0)


def test_single_loss_round_trip(tmp_path):
    model, x = trained(heads={"z": 8}, loss=SupCon(temperature=0.3))
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.contrastive_loss, SupCon)
    assert restored.contrastive_loss.temperature == 0.3
    assert_allclose(restored.predict(x, verbose=0)["z"], model.predict(x, verbose=0)["z"], 1e-6)


def test_saved_model_export_serves_the_same_outputs_in_a_fresh_process(tmp_path):
    """Serves in a fresh TensorFlow process (the point: the SavedModel alone, no Keras object)."""
    model, x = trained()
    export_path = os.path.join(tmp_path, "saved_model")
    model.export(export_path, verbose=False)
    inputs = os.path.join(tmp_path, "x.npy")
    served = os.path.join(tmp_path, "served.npz")
    np.save(inputs, x[:37])
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    subprocess.run([sys.executable, "-c", SERVE, export_path, inputs, served], check=True, env=env)
    out = np.load(served)
    expected = model.predict(x[:37], verbose=0)
    assert sorted(out.files) == sorted(expected)
    for key in expected:
        assert_allclose(out[key], expected[key], atol=1e-5)
    assert json.dumps(sorted(out.files))  # plain string keys
