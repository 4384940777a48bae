"""Extra checks appended to the guide's data-parallel snippets.

They run in the snippet's child process (with its devices or process group)
after the snippet itself: a loss used on its own inside a replica, sample
weights, `reduction="none"`, gradients with respect to the embeddings, and
the memory bank under data parallelism, and a loss written for the tests
(tests/losses/ordinal_supcon.py, which has no hook for data parallelism).
"""

from pathlib import Path

ORDINAL_SUPCON = (Path(__file__).parents[1] / "losses" / "ordinal_supcon.py").read_text()

TENSORFLOW = """
# --- extra checks (tests/distribution/multi_replica_checks.py) ---
from keras_mlcl import SupCon  # noqa: E402
from keras_mlcl.distribution import replica_count  # noqa: E402

rng = np.random.default_rng(1)
z = rng.normal(size=(32, 8)).astype("float32")
z /= np.linalg.norm(z, axis=1, keepdims=True)
labels = rng.integers(0, 4, 32)
weights = rng.random(32).astype("float32")
loss, per_anchor = SupCon(temperature=0.2), SupCon(temperature=0.2, reduction="none")
z_single = tf.constant(z)
with tf.GradientTape() as tape:
    tape.watch(z_single)
    single_value = loss(labels, z_single, sample_weight=weights)
single_grad = tape.gradient(single_value, z_single).numpy()
single_rows = per_anchor(labels, z).numpy()

dataset = tf.data.Dataset.from_tensor_slices((z, labels, weights)).batch(32)
batch = next(iter(strategy.experimental_distribute_dataset(dataset)))


@tf.function
def replica_step(zb, yb, wb):
    assert replica_count() == 4  # checked while tracing, inside the replica
    with tf.GradientTape() as tape:
        tape.watch(zb)
        value = loss(yb, zb, sample_weight=wb)
    return value, tape.gradient(value, zb), per_anchor(yb, zb)


outputs = strategy.run(replica_step, args=batch)
values, grads, rows = (strategy.experimental_local_results(o) for o in outputs)
assert len(values) == 4
# Each replica returns the global loss / 4; the strategy sums them.
np.testing.assert_allclose(sum(float(v) for v in values), float(single_value), atol=1e-5)
np.testing.assert_allclose(np.concatenate(rows), single_rows, atol=1e-5)
np.testing.assert_allclose(np.concatenate(grads), single_grad, atol=1e-5)

# Blocks of 3 of each replica's 8 anchors: the summed kernel (gradient in the
# forward pass, an overlapping last block) gives the same loss and gradient.
blocked = SupCon(temperature=0.2, block_size=3)


@tf.function
def blocked_step(zb, yb, wb):
    with tf.GradientTape() as tape:
        tape.watch(zb)
        value = blocked(yb, zb, sample_weight=wb)
    return value, tape.gradient(value, zb)


outputs = strategy.run(blocked_step, args=batch)
values, grads = (strategy.experimental_local_results(o) for o in outputs)
np.testing.assert_allclose(sum(float(v) for v in values), float(single_value), atol=1e-5)
np.testing.assert_allclose(np.concatenate(grads), single_grad, atol=1e-5)

with strategy.scope():
    banked = ContrastiveModel(
        keras.Sequential([keras.Input((16,)), keras.layers.Dense(16)]),
        heads={"coarse": 8, "fine": 8},
        memory_bank=96,
    )
    banked.compile(optimizer="adam")
history = banked.fit(x, y, batch_size=32, epochs=1, verbose=0)
assert np.isfinite(history.history["loss"]).all()
bank = banked.memory_bank
assert int(bank.filled.numpy()) == 96
# The bank holds the global rows, identical on every replica.
for slots in bank.embedding_slots.values():
    copies = [v.numpy() for v in strategy.experimental_local_results(slots.value)]
    for copy in copies[1:]:
        np.testing.assert_array_equal(copy, copies[0])
print("extra checks passed")
"""

TORCH = (
    ORDINAL_SUPCON
    + """
# --- extra checks (tests/distribution/multi_replica_checks.py) ---
import torch  # noqa: E402

from keras_mlcl import SupCon  # noqa: E402
from keras_mlcl.distribution import gather_across_replicas  # noqa: E402
from keras_mlcl.distribution import replica_count  # noqa: E402

assert replica_count() == processes == 2
rng = np.random.default_rng(1)
z = rng.normal(size=(8, 8)).astype("float32")
z /= np.linalg.norm(z, axis=1, keepdims=True)
labels = rng.integers(0, 3, 8)
# Uneven shards: rank 0 holds 3 rows, rank 1 holds 5.
mine = slice(0, 3) if rank == 0 else slice(3, 8)
gathered_z, gathered_labels = gather_across_replicas((z[mine], labels[mine]))
np.testing.assert_allclose(gathered_z.numpy(), z)
np.testing.assert_array_equal(gathered_labels.numpy(), labels)

z_local = torch.tensor(z[mine], requires_grad=True)
value = SupCon(temperature=0.2)(labels[mine], z_local)
value.backward()
rows = SupCon(temperature=0.2, reduction="none")(labels[mine], z[mine]).numpy()
ages = rng.integers(0, 5, 8)
ordinal = OrdinalSupCon(temperature=0.3)
ordinal_local = torch.tensor(z[mine], requires_grad=True)
ordinal_value = ordinal(ages[mine], ordinal_local)
ordinal_value.backward()
dist.destroy_process_group()  # the single-process reference below

z_all = torch.tensor(z, requires_grad=True)
single_value = SupCon(temperature=0.2)(labels, z_all)
single_value.backward()
np.testing.assert_allclose(float(value), float(single_value), atol=1e-6)
single_rows = SupCon(temperature=0.2, reduction="none")(labels, z).numpy()
np.testing.assert_allclose(rows, single_rows[mine], atol=1e-6)
# Each process's own rows get d(global loss)/dz times the number of processes;
# averaging gradients over processes (as the hooks do) gives d(global loss)/dz.
np.testing.assert_allclose(
    z_local.grad.numpy() / processes, z_all.grad.numpy()[mine], atol=1e-6
)
# The new loss, gathered like every loss: the global value and gradient.
ordinal_all = torch.tensor(z, requires_grad=True)
ordinal_single = ordinal(ages, ordinal_all)
ordinal_single.backward()
np.testing.assert_allclose(float(ordinal_value), float(ordinal_single), atol=1e-6)
np.testing.assert_allclose(
    ordinal_local.grad.numpy() / processes, ordinal_all.grad.numpy()[mine], atol=1e-6
)
print("extra checks passed")
"""
)

JAX = """
# --- extra checks (tests/distribution/multi_replica_checks.py) ---
keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
banked = ContrastiveModel(
    keras.Sequential([keras.Input((16,)), keras.layers.Dense(16)]),
    heads={"coarse": 8, "fine": 8},
    memory_bank=96,
)
banked.compile(optimizer="adam")
history = banked.fit(x, y, batch_size=32, epochs=1, verbose=0)
assert np.isfinite(history.history["loss"]).all()
assert int(keras.ops.convert_to_numpy(banked.memory_bank.filled)) == 96
keras.distribution.set_distribution(None)
print("extra checks passed")
"""
