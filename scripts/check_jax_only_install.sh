#!/usr/bin/env bash
# Proves that `pip install 'keras-mlcl[jax]'` alone (no TensorFlow) is enough for the command:
# a fresh venv with only the JAX extra, at the exact versions of requirements/pinned.txt, trains
# one epoch on a small .npz and exits 0, with model.keras written and the SavedModel export
# skipped with its one-line reason in results.json.
# Usage: scripts/check_jax_only_install.sh [PYTHON]   (about 1-2 minutes with a warm pip cache)
set -euo pipefail
cd "$(dirname "$0")/.."
python="${1:-python3}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "=== fresh venv with keras-mlcl[jax] only ==="
"$python" -m venv "$work/venv"
venv_python="$work/venv/bin/python"
"$venv_python" -m pip install --quiet --disable-pip-version-check \
  -c requirements/pinned.txt ".[jax]"
if "$venv_python" -c "import tensorflow" 2>/dev/null; then
  echo "error: tensorflow is installed in the JAX-only venv" >&2
  exit 1
fi

"$venv_python" - "$work/small.npz" <<'EOF'
import sys

import numpy as np

rng = np.random.default_rng(0)
fine = np.arange(200) % 4
x = rng.normal(size=(200, 16)).astype("float32") + fine[:, None]
np.savez(sys.argv[1], x=x, y_coarse=fine // 2, y_fine=fine)
EOF

echo "=== keras-mlcl train under KERAS_BACKEND=jax ==="
KERAS_BACKEND=jax "$work/venv/bin/keras-mlcl" train \
  --data "$work/small.npz" --epochs 1 --out "$work/run" --quiet

"$venv_python" - "$work/run" <<'EOF'
import json
import os
import sys

folder = sys.argv[1]
assert os.path.isfile(os.path.join(folder, "model.keras")), "model.keras missing"
with open(os.path.join(folder, "results.json")) as f:
    results = json.load(f)
assert results["backend"] == "jax", results["backend"]
assert results["export"]["saved_model"] is None, results["export"]
assert "keras-mlcl[export]" in results["export"]["skipped"], results["export"]
print("jax-only install: train exited 0, model.keras written, export skipped as expected")
EOF
