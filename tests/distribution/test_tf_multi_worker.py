"""`gather_across_replicas` under TensorFlow's MultiWorkerMirroredStrategy.

Two worker processes on localhost (TF_CONFIG) gather a batch that is a raw
element of a distributed dataset: such a tensor carries no device, and
MultiWorkerMirroredStrategy's gather of it failed with "destinations can
not be empty" until `keras_mlcl.backend` passed it through `tf.identity`.
"""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WORKER = """
import json
import os
import sys

os.environ["TF_CONFIG"] = sys.argv[1]
import numpy as np
import tensorflow as tf

from keras_mlcl.distribution import gather_across_replicas
from keras_mlcl.distribution import local_rows
from keras_mlcl.distribution import replica_count

strategy = tf.distribute.MultiWorkerMirroredStrategy()
x = np.arange(16, dtype="float32").reshape(8, 2)
labels = np.arange(8, dtype="int32") % 3
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
dataset = tf.data.Dataset.from_tensor_slices((x, labels)).batch(8).with_options(options)
batch = next(iter(strategy.experimental_distribute_dataset(dataset)))


@tf.function
def step(xb, yb):
    gathered_x, gathered_y = gather_across_replicas((xb, yb))
    return replica_count(), xb, gathered_x, gathered_y, local_rows(gathered_x, tf.shape(xb)[0])


outputs = strategy.run(step, args=batch)
count, local, gathered_x, gathered_y, own = (
    strategy.experimental_local_results(o)[0].numpy() for o in outputs
)
print(json.dumps({
    "count": int(count),
    "local": local.tolist(),
    "x": gathered_x.tolist(),
    "labels": gathered_y.tolist(),
    "own": own.tolist(),
}))
"""


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="MultiWorkerMirroredStrategy is TensorFlow's"
)
def test_gather_of_a_raw_dataset_batch_across_two_workers(tmp_path):
    """Two TensorFlow worker processes on localhost (the point: a real multi-worker gather)."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(2)]}
    env = {
        **os.environ,
        "KERAS_BACKEND": "tensorflow",
        "PYTHONPATH": REPOSITORY + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), json.dumps({"cluster": cluster, "task": task})],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for task in ({"type": "worker", "index": 0}, {"type": "worker", "index": 1})
    ]
    try:
        outputs = [worker.communicate(timeout=240) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-4000:]
    results = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    x = np.arange(16, dtype="float32").reshape(8, 2)
    for index, result in enumerate(results):
        assert result["count"] == 2
        # Each worker holds its shard of the batch and gathers the global batch, in order.
        np.testing.assert_array_equal(result["local"], x[index * 4 : index * 4 + 4])
        np.testing.assert_array_equal(result["x"], x)
        np.testing.assert_array_equal(result["labels"], np.arange(8) % 3)
        np.testing.assert_array_equal(result["own"], result["local"])
