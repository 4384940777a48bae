"""Synthetic embeddings and labels for the evaluation tests."""

import numpy as np


def clusters(seed, per_class=20, num_classes=6, dim=8, spread=0.05):
    """Tight clusters around orthogonal directions: fine labels, coarse = fine // 2."""
    rng = np.random.default_rng(seed)
    fine = np.repeat(np.arange(num_classes), per_class)
    centres = 5.0 * np.eye(dim)[:num_classes]
    x = centres[fine] + spread * rng.normal(size=(fine.size, dim))
    order = rng.permutation(fine.size)
    return x[order].astype("float32"), {"coarse": fine[order] // 2, "fine": fine[order]}


def split(x, labels, every=3):
    """Every `every`-th row to the test side, the rest to the train side."""
    test = np.arange(len(x)) % every == 0
    return (
        x[~test],
        {k: v[~test] for k, v in labels.items()},
        x[test],
        {k: v[test] for k, v in labels.items()},
    )
