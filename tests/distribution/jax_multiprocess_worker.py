"""One process of a JAX multi-process run (not a test; run by test_jax_multiprocess.py).

Usage (every process, `JAX_PLATFORMS=cpu`,
`XLA_FLAGS=--xla_force_host_platform_device_count=2`, `KERAS_BACKEND=jax`):

    python tests/distribution/jax_multiprocess_worker.py \\
        --coordinator 127.0.0.1:PORT --num-processes 2 --process-id I \\
        --inputs tfdata,numpy --folder FOLDER

(or without the first three options, with `KERAS_DISTRIBUTION_JOB_ADDRESSES`,
`KERAS_DISTRIBUTION_NUM_PROCESSES` and `KERAS_DISTRIBUTION_PROCESS_ID` set).

`FOLDER/initial.npz` holds the initial weights (the same in every process).
The process joins the others with `keras.distribution.initialize`; then, for
each input kind (a `tf.data` dataset of global batches, sharded by Keras; or
NumPy arrays of this process's own rows), it trains a `ContrastiveModel` with
`keras.distribution.DataParallel` over every device of every process and
writes `FOLDER/process_I_KIND.npz`: the `evaluate` loss before training, the
first epoch's `fit` loss and the trained weights.

The module also holds the problem (`data`), the model (`make_model`) and the
run (`evaluate_and_fit`), so that the test computes the single-process
reference with exactly the same code.
"""

import argparse
import os

import keras
import numpy as np

SAMPLES = 128
GLOBAL_BATCH = 32
EPOCHS = 2


def data():
    """128 inputs around one centre per fine class, with coarse and fine labels."""
    rng = np.random.default_rng(0)
    fine = rng.integers(0, 8, size=SAMPLES)
    centres = rng.normal(size=(8, 16)) * 2.0
    x = (centres[fine] + rng.normal(size=(SAMPLES, 16))).astype("float32")
    return x, {"coarse": fine // 4, "fine": fine}


def make_model():
    """A tiny two-head `ContrastiveModel`, compiled with SGD and built."""
    from keras_mlcl import ContrastiveModel

    keras.utils.set_random_seed(0)
    encoder = keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(16)]
    )
    model = ContrastiveModel(encoder, heads={"coarse": 8, "fine": 8})
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    model(np.zeros((2, 16), "float32"))  # build
    return model


def evaluate_and_fit(model, x, y, batch_size):
    """`evaluate`, then `fit` for `EPOCHS` epochs, in order (no shuffling).

    Returns:
        The `evaluate` loss and the first epoch's `fit` loss, as floats.
    """
    evaluated = model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
    history = model.fit(x, y, batch_size=batch_size, epochs=EPOCHS, shuffle=False, verbose=0)
    return float(evaluated["loss"]), float(history.history["loss"][0])


def host_weights(model):
    """The model's weights as NumPy arrays, read from this process's own copy.

    Under a multi-process distribution the variables are global arrays; a
    replicated one holds the full value on every local device.
    """
    return [np.asarray(v.value.addressable_data(0)) for v in model.weights]


def tf_dataset(x, y, batch_size):
    """The global dataset, batched by the global batch size (Keras shards it per process)."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def local_rows(process_id, num_processes):
    """This process's rows of every global batch: its contiguous slice of each."""
    local = GLOBAL_BATCH // num_processes
    starts = range(process_id * local, SAMPLES, GLOBAL_BATCH)
    return np.concatenate([np.arange(start, start + local) for start in starts])


def main():
    parser = argparse.ArgumentParser()
    # Unset, they come from KERAS_DISTRIBUTION_JOB_ADDRESSES, _NUM_PROCESSES and _PROCESS_ID.
    parser.add_argument("--coordinator")
    parser.add_argument("--num-processes", type=int)
    parser.add_argument("--process-id", type=int)
    parser.add_argument("--inputs", default="tfdata,numpy", help="tfdata, numpy or both")
    parser.add_argument("--folder", required=True)
    args = parser.parse_args()

    import jax

    keras.distribution.initialize(args.coordinator, args.num_processes, args.process_id)
    devices = keras.distribution.list_devices()
    process_id, num_processes = jax.process_index(), jax.process_count()
    x, y = data()
    with np.load(os.path.join(args.folder, "initial.npz")) as initial:
        initial_weights = [initial[f"w{i}"] for i in range(len(initial.files))]
    for input_kind in args.inputs.split(","):
        # Keras shards a tf.data dataset per process by itself; NumPy arrays it
        # cannot shard, so each process passes its own rows of every global batch.
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(
                devices=devices, auto_shard_dataset=input_kind == "tfdata"
            )
        )
        model = make_model()
        model.set_weights(initial_weights)
        if input_kind == "tfdata":
            dataset = tf_dataset(x, y, GLOBAL_BATCH)
            evaluated, fitted = evaluate_and_fit(model, dataset, None, None)
        else:
            rows = local_rows(process_id, num_processes)
            y_local = {name: labels[rows] for name, labels in y.items()}
            local_batch = GLOBAL_BATCH // num_processes
            evaluated, fitted = evaluate_and_fit(model, x[rows], y_local, local_batch)
        np.savez(
            os.path.join(args.folder, f"process_{process_id}_{input_kind}.npz"),
            devices=len(devices),
            local_devices=jax.local_device_count(),
            evaluate_loss=evaluated,
            fit_loss=fitted,
            **{f"w{i}": w for i, w in enumerate(host_weights(model))},
        )
        print(
            f"process {process_id}, {input_kind} input: {len(devices)} devices, "
            f"evaluate loss {evaluated:.6f}"
        )


if __name__ == "__main__":
    main()
