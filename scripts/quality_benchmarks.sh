#!/usr/bin/env bash
# The runs behind docs/benchmarks.md's quality tables, one `keras-mlcl bench quality` command a
# dataset (default grid, 3 seeds, fractions 0.1 and 1.0). Usage:
#   bash scripts/quality_benchmarks.sh OUT_DIR [DATASET ...]
# Needs the shared datasets (KERAS_MLCL_DATA or ../shared/data) and an installed keras-mlcl with
# JAX and TensorFlow (`.venv`). Each run writes OUT_DIR/<dataset>/ (results.json, meta.json,
# results.md, results.png); docs/quality/ holds the published ones.
set -euo pipefail
out=${1:?usage: bash scripts/quality_benchmarks.sh OUT_DIR [DATASET ...]}
shift
data_dir=${KERAS_MLCL_DATA:-../shared/data}
bin=${KERAS_MLCL_BIN:-.venv/bin/keras-mlcl}
multi_label=bce,supcon-any,jaccard,simdis,jaccard+ce,mlcl-labels,mlcl-groups
datasets=("$@")
[ ${#datasets[@]} -gt 0 ] || datasets=(mulan_emotions mulan_scene mulan_medical_icd clinc150 fashion_mnist)

run() {  # run BACKEND DATASET ARGS...
    local backend=$1 dataset=$2
    shift 2
    echo "== $dataset ($backend)"
    KERAS_BACKEND=$backend "$bin" bench quality --quiet --data "$dataset" --data-dir "$data_dir" \
        --fractions 0.1,1.0 --seeds 3 --out "$out/$dataset" --overwrite "$@"
}

for dataset in "${datasets[@]}"; do
    case $dataset in
    mulan_emotions) run jax "$dataset" --methods "$multi_label" --epochs-per-fraction 0.1:100,1.0:50 ;;
    mulan_scene) run jax "$dataset" --methods "$multi_label" --epochs-per-fraction 0.1:50,1.0:20 ;;
    mulan_medical_icd)
        run jax "$dataset" --methods bce,supcon-any,jaccard,simdis,mlcl-labels,mlcl-groups,mlcl \
            --epochs-per-fraction 0.1:100,1.0:50 ;;
    clinc150)
        run jax "$dataset" --methods ce,supcon,mlcl,himulcon,supcon+ce,mlcl+ce \
            --epochs-per-fraction 0.1:30,1.0:5 ;;
    fashion_mnist)  # TensorFlow: JAX ran this CNN about 5 times slower on a 2-core CPU
        run tensorflow "$dataset" --methods ce,supcon,mlcl,mlcl+ce --epochs-per-fraction 0.1:30,1.0:5 ;;
    *) echo "unknown dataset $dataset" >&2; exit 2 ;;
    esac
done
