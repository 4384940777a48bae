"""The `keras.ops` kernel in a TensorFlow graph without XLA (Keras' CPU train step), where each
block's element-wise passes run as one XLA program (`backend.fuse_elementwise`): values and
gradients against the NumPy reference, and the block rule of each context."""

import keras
import numpy as np
import pytest

if keras.backend.backend() != "tensorflow":
    pytest.skip("TensorFlow graphs without XLA are TensorFlow's", allow_module_level=True)

import tensorflow as tf  # noqa: E402

from keras_mlcl import backend  # noqa: E402
from keras_mlcl.ops import supcon_from_labels  # noqa: E402
from keras_mlcl.ops.blockwise import MAX_CACHED_BLOCK_ROWS  # noqa: E402
from keras_mlcl.ops.blockwise import auto_block_rows  # noqa: E402
from tests import reference  # noqa: E402
from tests.ops.test_supcon_kernel import random_labels  # noqa: E402
from tests.testing import unit_rows  # noqa: E402


def _xla_calls(function, *args):
    """How many calls in `function`'s graph (and the functions it calls) XLA must compile."""
    graph = function.get_concrete_function(*args).graph
    definitions = graph.as_graph_def().library.function
    nodes = list(graph.as_graph_def().node) + [n for f in definitions for n in f.node_def]
    return sum(1 for node in nodes if node.attr["_XlaMustCompile"].b)


def _in_graph(function, jit_compile=False):
    """`function(z)` and its gradient in `z`, traced by `tf.function`."""

    @tf.function(jit_compile=jit_compile)
    def step(z):
        with tf.GradientTape() as tape:
            tape.watch(z)
            value = function(z)
        return value, tape.gradient(value, z)

    return step


def _reference_value_and_gradient(z, weights, temperature, rows, offset, anchor_weights):
    """The weighted sum of anchors `offset:offset + rows`' losses and its gradient in `z`
    (NumPy reference, float64)."""

    def total(x):
        loss, _ = reference.supcon(x, weights, temperature)
        return float(np.sum(anchor_weights * loss[offset : offset + rows]))

    return total(z), reference.numerical_gradient(total, z)


@pytest.mark.parametrize("rule", ["equal", "jaccard"])
@pytest.mark.parametrize(
    "block_size, summed, offset, rows",
    [(None, False, 0, 12), (5, False, 0, 12), (5, True, 0, 12), (4, True, 3, 6)],
)
def test_graph_without_xla_fuses_and_matches_the_reference(rule, block_size, summed, offset, rows):
    # One block (its state kept), several (recomputed in the backward pass), the summed
    # kernel, and a replica's rows against the whole batch.
    rng = np.random.default_rng(3)
    labels = random_labels(rng, rule, 12)
    z = unit_rows(rng, 12, 4)
    anchor_weights = rng.uniform(0.5, 2.0, size=rows).astype("float32")
    expected, expected_gradient = _reference_value_and_gradient(
        z, reference.weights(labels, rule), 0.5, rows, offset, anchor_weights
    )

    def loss(x):
        anchors = x[offset : offset + rows]
        arguments = dict(rule=rule, anchor_offset=offset, block_size=block_size)
        if summed:
            total, _ = supcon_from_labels(
                anchors[None],
                x[None],
                [labels[offset : offset + rows]],
                [labels],
                0.5,
                anchor_weights=anchor_weights[None],
                **arguments,
            )
            return tf.reduce_sum(total)
        per_anchor, _ = supcon_from_labels(
            anchors, x, labels[offset : offset + rows], labels, 0.5, **arguments
        )
        return tf.reduce_sum(per_anchor * anchor_weights)

    z = tf.constant(z)
    step = _in_graph(loss)
    value, gradient = step(z)
    np.testing.assert_allclose(float(value), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gradient.numpy(), expected_gradient, atol=2e-4)
    assert _xla_calls(step, z) >= 1, "the element-wise passes were not fused"
    # Compiled by XLA as a whole: the same values.
    compiled = _in_graph(loss, jit_compile=True)
    compiled_value, compiled_gradient = compiled(z)
    np.testing.assert_allclose(float(compiled_value), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(compiled_gradient.numpy(), expected_gradient, atol=2e-4)


def test_compiled_by_xla_is_true_in_xla_programs_only():
    seen = []

    def probe(x):
        seen.append(backend.compiled_by_xla())
        return x + 1.0

    x = tf.constant(1.0)
    probe(x)
    tf.function(probe)(x)
    tf.function(probe, jit_compile=True)(x)
    tf.function(lambda y: tf.function(probe)(y), jit_compile=True)(x)
    assert seen == [False, False, True, True]


def test_block_rule_per_context():
    # Under XLA the blocks stay within the CPU's cache; in a graph without XLA and eagerly,
    # the whole matrix of 2 heads at N = 1024 is one block.
    seen = {}

    def probe(name):
        def record(x):
            seen[name] = auto_block_rows(1024, 1024, heads=2)
            return x

        return record

    x = tf.constant(1.0)
    probe("eager")(x)
    tf.function(probe("graph"))(x)
    tf.function(probe("xla"), jit_compile=True)(x)
    assert seen == {"eager": 1024, "graph": 1024, "xla": MAX_CACHED_BLOCK_ROWS}


def test_a_rule_xla_cannot_compile_still_runs_in_a_graph():
    # The weights of a rule other than the class ids' are computed outside the fused passes:
    # a rule of the user's may use any op (here a NumPy function, which XLA cannot compile).
    rng = np.random.default_rng(5)
    labels = random_labels(rng, "jaccard", 12)
    z = unit_rows(rng, 12, 4)
    expected, _ = reference.supcon(z, reference.weights(labels, "jaccard"), 0.5)
    host_rule = reference.weights(labels, "jaccard").astype("float32")

    def rule(anchor_labels, candidate_labels):
        # Rows of the whole batch's weights, looked up on the host by the anchors' row index.
        rows = tf.numpy_function(lambda: host_rule, [], tf.float32)
        return tf.reshape(rows, (1, 12, 12))

    def loss(x):
        per_anchor, _ = supcon_from_labels(x, x, labels, labels, 0.5, rule=rule, binary=False)
        return tf.reduce_sum(per_anchor)

    z = tf.constant(z)
    value, _ = _in_graph(loss)(z)
    np.testing.assert_allclose(float(value), expected.sum(), rtol=1e-5, atol=1e-5)
