import os

import numpy as np
import pytest

from keras_mlcl.data import label_groups
from keras_mlcl.data import load_mulan

pytestmark = pytest.mark.backend_independent

MULAN_ROOT = "/work/shared/data/mulan"


def block_labels(blocks, rows_per_block=40, seed=0):
    """Multi-hot rows where labels co-occur only within their block; columns shuffled."""
    rng = np.random.default_rng(seed)
    num_labels = sum(len(block) for block in blocks)
    rows = []
    for block in blocks:
        for _ in range(rows_per_block):
            row = np.zeros(num_labels, dtype="int32")
            chosen = rng.choice(block, size=rng.integers(1, len(block) + 1), replace=False)
            row[chosen] = 1
            rows.append(row)
    return np.stack(rows)


def test_block_cooccurrence_recovers_the_blocks():
    blocks = [[0, 4, 7], [1, 2, 8, 9], [3, 5, 6]]
    labels = block_labels(blocks)
    assert label_groups(labels, num_groups=3) == [[0, 4, 7], [1, 2, 8, 9], [3, 5, 6]]
    # Default: round(sqrt(10)) = 3.
    assert label_groups(labels) == [[0, 4, 7], [1, 2, 8, 9], [3, 5, 6]]


def test_unlabelled_rows_are_ignored():
    labels = block_labels([[0, 1], [2, 3]])
    # Rows that would tie 1 with 2 are unlabelled: they must not change the groups.
    noise = np.array([[0, 1, 1, 0], [-1, 1, 1, -1]] * 30)
    noise[:, 0] = -1
    rows = np.concatenate([labels, noise])
    assert label_groups(rows, num_groups=2) == [[0, 1], [2, 3]]


def test_num_groups_k_gives_singletons_and_one_gives_one_group():
    labels = block_labels([[0, 1, 2], [3, 4]])
    assert label_groups(labels, num_groups=5) == [[0], [1], [2], [3], [4]]
    assert label_groups(labels, num_groups=1) == [[0, 1, 2, 3, 4]]
    assert label_groups(labels[:, :1]) == [[0]]


def test_column_without_positive_is_far_from_every_column():
    labels = block_labels([[0, 1], [2, 3]])
    labels = np.concatenate([labels, np.zeros((len(labels), 1), dtype="int32")], axis=1)
    assert label_groups(labels, num_groups=3) == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize("num_groups", [0, 6, 2.0, True, "2"])
def test_invalid_num_groups_raises(num_groups):
    with pytest.raises(ValueError, match="`num_groups`"):
        label_groups(np.eye(5, dtype="int32"), num_groups=num_groups)


def test_coarse_hierarchy_gives_the_expected_groups():
    # Fine columns 0..5 under coarse columns: A = {0, 3}, B = {1, 4}, C (never used), D = {2, 5}.
    parent = {0: 0, 1: 1, 2: 3, 3: 0, 4: 1, 5: 3}
    rng = np.random.default_rng(1)
    fine = (rng.random((60, 6)) < 0.3).astype("int32")
    fine[np.arange(6), np.arange(6)] = 1  # every fine column has a positive
    coarse = np.zeros((60, 4), dtype="int32")
    for k, c in parent.items():
        coarse[fine[:, k] == 1, c] = 1
    assert label_groups(fine, coarse=coarse) == [[0, 3], [1, 4], [2, 5]]


def test_coarse_majority_ties_and_columns_without_positive():
    fine = np.array(
        [
            [1, 0, 1, 0, 0],
            [1, 0, 0, 1, 0],
            [1, 1, 0, 0, 0],
            [0, 1, 1, 0, 0],
            [-1, -1, -1, -1, -1],
        ]
    )
    coarse = np.array(
        [
            [1, 0, 1],
            [0, 1, 0],
            [1, 0, 0],
            [0, 1, 0],
            [0, 0, 1],  # unlabelled in `fine`: ignored
        ]
    )
    # Column 0: counts (2, 1, 1) -> coarse 0. Column 1: (1, 1, 0), a tie -> coarse 0.
    # Column 2: (1, 1, 1) -> coarse 0. Column 3: (0, 1, 0) -> coarse 1.
    # Column 4: no positive -> the extra group.
    assert label_groups(fine, coarse=coarse) == [[0, 1, 2], [3], [4]]


def test_coarse_errors():
    labels = np.eye(4, dtype="int32")
    with pytest.raises(ValueError, match="`coarse`"):
        label_groups(labels, coarse=np.eye(3, dtype="int32"))
    with pytest.raises(ValueError, match="`coarse`"):
        label_groups(labels, coarse=np.ones(4, dtype="int32"))
    with pytest.raises(ValueError, match="`num_groups`"):
        label_groups(labels, coarse=labels, num_groups=2)
    with pytest.raises(ValueError, match="`labels`"):
        label_groups(2 * labels)


@pytest.mark.parametrize("name", ["emotions", "scene", "medical"])
def test_mulan_training_labels_every_column_once(name):
    folder = os.path.join(MULAN_ROOT, name)
    if not os.path.isdir(folder):
        pytest.skip(f"{folder} is absent")
    labels = load_mulan(name, folder).labels["labels"]
    num_labels = labels.shape[1]
    groups = label_groups(labels)
    assert len(groups) == min(max(round(num_labels**0.5), 1), num_labels)
    assert sorted(column for group in groups for column in group) == list(range(num_labels))
    assert all(group == sorted(group) and group for group in groups)
    assert [group[0] for group in groups] == sorted(group[0] for group in groups)
    assert label_groups(labels) == groups  # deterministic


def test_coarse_parent_is_found_when_a_code_always_co_occurs_with_another_category():
    # Fine 0 and 1 under coarse 1, fine 2 under coarse 0; fine 1 only ever appears with fine 2,
    # so coarse 0 contains it too, and co-occurs with it as often as its parent does (a count
    # alone would tie and pick coarse 0).
    fine = np.array([[1, 0, 0], [1, 1, 1], [0, 1, 1], [0, 0, 1], [1, 0, 0]])
    coarse = np.array([[0, 1], [1, 1], [1, 1], [1, 0], [0, 1]])
    assert label_groups(fine, coarse=coarse) == [[0, 1], [2]]


def test_icd_codes_join_their_own_category_on_real_medical_rows():
    from keras_mlcl.data.mulan import icd9_category
    from keras_mlcl.data.mulan import load_mulan_medical_icd

    folder = os.path.join(MULAN_ROOT, "medical")
    if not os.path.isdir(folder):
        pytest.skip(f"{folder} is absent")
    data = load_mulan_medical_icd(folder)
    codes, categories = data.labels["code"], data.labels["category"]
    names = data.class_names["code"]
    used = codes.sum(axis=0) > 0
    expected = {}
    for k, name in enumerate(names):
        if used[k]:
            expected.setdefault(icd9_category(name), []).append(k)
    unused = [k for k in range(len(names)) if not used[k]]
    groups = label_groups(codes, coarse=categories)
    assert sorted(groups) == sorted([*expected.values(), unused])
