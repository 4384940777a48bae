"""A plain NumPy (float64) reference of the losses (weighted SupCon, its positive rules,
HiMulCon), written independently of the library: explicit sets and loops, no shared code with
`keras_mlcl`."""

import math

import numpy as np


def weights(labels, rule):
    labels = np.asarray(labels)
    n = labels.shape[0]
    w = np.zeros((n, n))
    if rule == "equal":
        labels = labels.reshape(n)
        for i in range(n):
            for j in range(n):
                if labels[i] >= 0 and labels[i] == labels[j]:
                    w[i, j] = 1.0
        return w
    sets = [None if (row < 0).any() else set(np.flatnonzero(row)) for row in labels]
    for i in range(n):
        for j in range(n):
            s, t = sets[i], sets[j]
            if not s or not t:
                continue
            inter = len(s & t)
            if inter == 0:
                continue
            if rule == "any":
                w[i, j] = 1.0
            elif rule == "exact":
                w[i, j] = float(s == t)
            elif rule == "jaccard":
                w[i, j] = inter / len(s | t)
            elif rule == "simdis":
                w[i, j] = (inter / len(s)) * (1.0 / (1.0 + len(t - s)))
            else:
                raise ValueError(rule)
    return w


def supcon(z, w, temperature, normalization="count"):
    """Per-anchor losses and validity, straight from the definition."""
    z = np.asarray(z, dtype=np.float64)
    n = z.shape[0]
    sims = z @ z.T / temperature
    losses = np.zeros(n)
    valid = np.zeros(n, dtype=bool)
    for i in range(n):
        others = [a for a in range(n) if a != i]
        positives = [j for j in others if w[i, j] > 0]
        if not positives:
            continue
        log_denominator = math.log(sum(math.exp(sims[i, a]) for a in others))
        total = sum(w[i, j] * (sims[i, j] - log_denominator) for j in positives)
        norm = len(positives) if normalization == "count" else sum(w[i, j] for j in positives)
        losses[i] = -total / norm
        valid[i] = True
    return losses, valid


def numerical_gradient(fn, x, step=1e-6):
    """The gradient of the scalar `fn(x)` in float64 by central differences, one coordinate at
    a time (`x` is small: a few hundred numbers)."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        grad[index] = (fn(up) - fn(down)) / (2 * step)
    return grad


def valid_mean(losses, valid, sample_weight=None):
    sw = np.ones_like(losses) if sample_weight is None else np.asarray(sample_weight, float)
    count = valid.sum()
    return float((losses * sw * valid).sum() / count) if count else 0.0


def supcon_loss(labels, z, temperature, rule="equal", normalization="count", min_weight=0.0):
    w = weights(labels, rule)
    if min_weight > 0:
        w = np.where(w >= min_weight, w, 0.0)
    return valid_mean(*supcon(z, w, temperature, normalization))


def multi_level(labels, z, heads, normalization="count"):
    """`heads`: {name: (temperature, weight, rule)}; labels/z dicts by head."""
    per_head = {
        name: supcon_loss(labels[name], z[name], tau, rule, normalization)
        for name, (tau, _, rule) in heads.items()
    }
    return sum(heads[name][1] * value for name, value in per_head.items()), per_head


def himulcon(labels, z, temperature, variant, penalty="exp"):
    labels = np.asarray(labels)
    n, levels = labels.shape
    f = math.exp if penalty == "exp" else (lambda x: 2.0**x)
    level_losses = []
    for k in range(1, levels + 1):
        depth = levels - k + 1  # columns compared
        w = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                a, b = labels[i, :depth], labels[j, :depth]
                if (a >= 0).all() and (a == b).all():
                    w[i, j] = 1.0
        level_losses.append(valid_mean(*supcon(z, w, temperature)))
    total, running = 0.0, -np.inf
    for k, value in enumerate(level_losses, start=1):
        if variant in ("hce", "hmce"):
            running = max(running, value)
            value = running
        if variant in ("hmc", "hmce"):
            value = f(1.0 / k) * value
        total += value
    return total / levels
