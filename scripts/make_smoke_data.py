"""Writes `examples/smoke_data/`: tiny synthetic CLINC150 and MULAN files for `--smoke` runs.

The files use the real formats (CLINC150's `data_full.json` + `domains.json`; MULAN's ARFF,
dense and sparse, + label XML), so the examples' `--smoke` runs go through the real loaders in a
fresh clone without the datasets. The content is synthetic: each intent's utterances share a
few words of their own and of their domain; each MULAN label shifts a few features.

    python scripts/make_smoke_data.py

Deterministic: re-running it rewrites the same bytes.
"""

import json
import os

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "examples", "smoke_data")
DOMAINS = {
    "banking": ("balance", "transfer", "freeze_account"),
    "travel": ("book_flight", "book_hotel", "lost_luggage"),
    "kitchen": ("recipe", "cook_time", "nutrition_info"),
    "home": ("smart_home", "shopping_list", "todo_list"),
}
FILLER = ("please", "can", "you", "i", "need", "to", "now", "my", "the", "help", "me", "with")
SPLIT_SIZES = {"train": 8, "val": 2, "test": 4}
LABELS = ("happy", "calm", "sad")
NUM_FEATURES = 8


def utterance(rng, domain, intent):
    words = [domain, *intent.split("_"), *rng.choice(FILLER, size=4, replace=False)]
    return " ".join(rng.permutation(words).tolist())


def write_clinc150(rng, folder):
    os.makedirs(folder, exist_ok=True)
    splits = {}
    for split, size in SPLIT_SIZES.items():
        splits[split] = [
            [utterance(rng, domain, intent), intent]
            for domain, intents in DOMAINS.items()
            for intent in intents
            for _ in range(size)
        ]
        splits[f"oos_{split}"] = [[utterance(rng, "weather", "random_chat"), "oos"]]
    with open(os.path.join(folder, "data_full.json"), "w", encoding="utf-8") as file:
        json.dump(splits, file)
    with open(os.path.join(folder, "domains.json"), "w", encoding="utf-8") as file:
        json.dump({domain: list(intents) for domain, intents in DOMAINS.items()}, file, indent=1)


def arff_header():
    lines = ["@relation smoke", ""]
    lines += [f"@attribute feature_{i} numeric" for i in range(NUM_FEATURES)]
    lines += [f"@attribute {label} {{0,1}}" for label in LABELS]
    return "\n".join(lines + ["", "@data", ""])


def mulan_rows(rng, num_rows):
    labels = (rng.random((num_rows, len(LABELS))) < 0.4).astype(int)
    features = rng.normal(0.0, 0.3, size=(num_rows, NUM_FEATURES))
    features[:, : len(LABELS)] += 2.0 * labels
    features[rng.random(features.shape) < 0.3] = 0.0  # zeros, so sparse rows are sparse
    return np.round(features, 3), labels


def write_mulan(rng, folder, name):
    os.makedirs(folder, exist_ok=True)
    features, labels = mulan_rows(rng, 60)
    dense = [
        ",".join([f"{v:g}" for v in f] + [str(v) for v in y])
        for f, y in zip(features, labels, strict=True)
    ]
    with open(os.path.join(folder, f"{name}-train.arff"), "w", encoding="utf-8") as file:
        file.write(arff_header() + "\n".join(dense) + "\n")
    features, labels = mulan_rows(rng, 30)
    sparse = []
    for row in np.concatenate([features, labels], axis=1):
        entries = [f"{i} {v:g}" for i, v in enumerate(row) if v != 0]
        sparse.append("{" + ",".join(entries) + "}")
    with open(os.path.join(folder, f"{name}-test.arff"), "w", encoding="utf-8") as file:
        file.write(arff_header() + "\n".join(sparse) + "\n")
    label_tags = "".join(f'\n  <label name="{label}"></label>' for label in LABELS)
    with open(os.path.join(folder, f"{name}.xml"), "w", encoding="utf-8") as file:
        file.write(
            '<?xml version="1.0" encoding="utf-8"?>\n'
            f'<labels xmlns="http://mulan.sourceforge.net/labels">{label_tags}\n</labels>\n'
        )


def main():
    rng = np.random.default_rng(0)
    write_clinc150(rng, os.path.join(OUT, "clinc150"))
    write_mulan(rng, os.path.join(OUT, "mulan", "smoke"), "smoke")
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
