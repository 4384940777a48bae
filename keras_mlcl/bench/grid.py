"""The quality bench's parameters: the methods, the hyper-parameter grid and the run settings.

`parse_grid` checks a grid `{method: {parameter: [values]}}` and expands each method's
candidates; the `check_*` functions check the other arguments of `run_quality_bench` before
any training starts.
"""

import itertools
import json
import math
from collections.abc import Sequence
from typing import Any

from keras_mlcl.data import LabeledDataset
from keras_mlcl.experiments.encoders import DEFAULT_ENCODER_WIDTH
from keras_mlcl.experiments.methods import check_method_for_dataset
from keras_mlcl.experiments.options import DEFAULTS
from keras_mlcl.experiments.options import LABEL_HEAD_METHODS
from keras_mlcl.experiments.options import METHOD_OPTIONS
from keras_mlcl.experiments.options import options_for
from keras_mlcl.utils.validation import check_positive_int

# The baseline of every table: a linear probe on the preprocessed inputs, no training.
RAW = "raw"
HIERARCHY_METHODS = ("ce", "supcon", "mlcl", "himulcon", "supcon+ce", "mlcl+ce")
MULTI_LABEL_METHODS = (
    "bce",
    "supcon-any",
    "jaccard",
    "simdis",
    "supcon-any+ce",
    "jaccard+ce",
    *LABEL_HEAD_METHODS,
)

# Grid parameters: the method options (`keras_mlcl.experiments.options`, each applying to the
# methods its table entry names) and `encoder_width` (every method on vector inputs: the MLP's
# hidden width, its embedding half as wide).
GRID_PARAMETERS = (*(option.name for option in METHOD_OPTIONS), "encoder_width")
NON_NEGATIVE_PARAMETERS = tuple(option.name for option in METHOD_OPTIONS if option.allows_zero)

# The default grid: two candidates a method (see docs/benchmarks.md): the temperature of
# single-head methods, the coarse heads' temperature of `mlcl` (the MLCL paper's 0.5 against the
# finest head's 0.1), the heads' weighting of `mlcl-labels` / `mlcl-groups`, the joint
# cross-entropy's weight. Methods missing here run with the options' defaults.
DEFAULT_GRID: dict[str, dict[str, list[float]]] = {
    "supcon": {"temperature": [0.1, 0.2]},
    "mlcl": {"coarse_temperature": [0.1, 0.5]},
    "himulcon": {"temperature": [0.1, 0.2]},
    "supcon+ce": {"ce_weight": [0.5, 1.0]},
    "mlcl+ce": {"ce_weight": [0.5, 1.0]},
    "supcon-any": {"temperature": [0.1, 0.2]},
    "jaccard": {"temperature": [0.1, 0.2]},
    "simdis": {"temperature": [0.1, 0.2]},
    "supcon-any+ce": {"ce_weight": [0.5, 1.0]},
    "jaccard+ce": {"ce_weight": [0.5, 1.0]},
    "mlcl-labels": {"weight_power": [0.0, 0.5]},
    "mlcl-groups": {"weight_power": [0.0, 0.5]},
}


def default_methods(dataset: LabeledDataset) -> list[str]:
    """The methods benchmarked by default: `raw`, then hierarchy methods or multi-label ones.

    Args:
        dataset: a `LabeledDataset`.

    Returns:
        `raw` and `HIERARCHY_METHODS` when every level holds class ids, else `raw` and
        `MULTI_LABEL_METHODS` (with `mlcl` when there are several levels).
    """
    if any(dataset.is_multi_hot(level) for level in dataset.levels):
        hierarchical = ["mlcl"] if len(dataset.levels) > 1 else []
        return [RAW, *MULTI_LABEL_METHODS, *hierarchical]
    return [RAW, *HIERARCHY_METHODS]


def grid_parameters(method: str) -> list[str]:
    """The grid parameters that apply to `method`: its options, and `encoder_width` (none to
    `raw`).

    Example:

    >>> grid_parameters("supcon+ce")
    ['temperature', 'ce_weight', 'encoder_width']
    """
    if method == RAW:
        return []
    return [*options_for(method), "encoder_width"]


def parse_grid(
    grid: dict[str, dict[str, Any]] | str | None, methods: Sequence[str]
) -> tuple[dict[str, dict[str, list[float]]], dict[str, list[dict[str, float]]]]:
    """Checks a grid and lists each method's candidates.

    Args:
        grid: dict `{method: {parameter: [values]}}` (or its JSON text); parameters among
            `GRID_PARAMETERS`, each applying to the methods `grid_parameters` names. Methods
            of the grid that are not benchmarked are ignored. `None` means `DEFAULT_GRID`.
        methods: the method names benchmarked.

    Returns:
        `(grid, candidates)`: the grid as a plain dict of lists, and
        `{method: [dict of parameter values, ...]}`, the Cartesian product of the method's
        lists in the order given (`[{}]`, the defaults, for a method the grid leaves out).

    Example:

    >>> parse_grid({"mlcl": {"temperature": [0.1, 0.2]}}, ["ce", "mlcl"])[1]
    {'ce': [{}], 'mlcl': [{'temperature': 0.1}, {'temperature': 0.2}]}
    """
    if grid is None:
        grid = DEFAULT_GRID
    if isinstance(grid, str):
        try:
            grid = json.loads(grid)
        except json.JSONDecodeError as error:
            raise ValueError(
                "`grid` should be a dict {method: {parameter: [values]}} or its JSON text. "
                f"Received text that is not JSON ({error.msg}): {grid!r}"
            ) from None
    if not isinstance(grid, dict):
        raise ValueError(
            "`grid` should be a dict {method: {parameter: [values]}}. "
            f"Received: `grid`={grid!r}"
        )
    checked: dict[str, dict[str, list[float]]] = {}
    for method, parameters in grid.items():
        allowed = grid_parameters(method)
        if not isinstance(parameters, dict):
            raise ValueError(
                f"`grid[{method!r}]` should be a dict {{parameter: [values]}}. "
                f"Received: {parameters!r}"
            )
        checked[method] = {}
        for name, values in parameters.items():
            if name not in allowed:
                raise ValueError(
                    f"`grid[{method!r}]` should only set parameters of that method "
                    f"({', '.join(allowed) or 'none'}). Received: {name!r}"
                )
            if isinstance(values, (int, float)) and not isinstance(values, bool):
                values = [values]
            if not isinstance(values, (list, tuple)) or not values:
                raise ValueError(
                    f"`grid[{method!r}][{name!r}]` should be a non-empty list of numbers. "
                    f"Received: {values!r}"
                )
            numbers: list[float] = []
            for value in values:
                positive = name not in NON_NEGATIVE_PARAMETERS
                valid = isinstance(value, (int, float)) and not isinstance(value, bool)
                valid = valid and math.isfinite(value) and (value > 0 if positive else value >= 0)
                if not valid:
                    kind = "positive" if positive else "non-negative"
                    raise ValueError(
                        f"`grid[{method!r}][{name!r}]` should hold {kind} numbers. "
                        f"Received: {value!r}"
                    )
                if name == "encoder_width" and (value != int(value) or value < 2):
                    raise ValueError(
                        f"`grid[{method!r}][{name!r}]` should hold whole numbers >= 2. "
                        f"Received: {value!r}"
                    )
                numbers.append(int(value) if name == "encoder_width" else float(value))
            checked[method][name] = numbers
    candidates = {}
    for method in methods:
        parameters = checked.get(method, {})
        names = list(parameters)
        candidates[method] = [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*(parameters[name] for name in names))
        ]
    return checked, candidates


def candidate_arguments(params: dict[str, float]) -> dict[str, Any]:
    """A candidate as `train_and_evaluate` arguments.

    Returns:
        `{"temperature", "encoder_width", "model_options"}`, the defaults where the candidate
        leaves them out; `model_options` holds the `build_model` options.
    """
    own = ("temperature", "encoder_width")
    return {
        "temperature": params.get("temperature", DEFAULTS["temperature"]),
        "encoder_width": int(params.get("encoder_width", DEFAULT_ENCODER_WIDTH)),
        "model_options": {name: value for name, value in params.items() if name not in own},
    }


def fraction_key(fraction: float) -> str:
    """A fraction as the text key of the results (`0.1` -> `"0.1"`, `1` -> `"1.0"`)."""
    return repr(float(fraction))


def check_fractions(fractions: Any) -> list[float]:
    """The training fractions in (0, 1] from a number, a list or comma-separated text."""
    if isinstance(fractions, (int, float)) and not isinstance(fractions, bool):
        fractions = [fractions]
    if isinstance(fractions, str):
        fractions = [part for part in fractions.split(",") if part.strip()]
    checked = []
    for value in list(fractions or []):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        if isinstance(value, bool) or number is None or not 0 < number <= 1:
            raise ValueError(
                f"`fractions` should be in (0, 1]. Received: `fractions`={fractions!r}"
            )
        if number not in checked:
            checked.append(number)
    if not checked:
        raise ValueError(f"`fractions` should list at least one fraction. Received: {fractions!r}")
    return checked


def check_seeds(seeds: Any) -> list[int]:
    """The list of seeds from a count (`3` -> `[0, 1, 2]`) or a list of non-negative ints."""
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        return list(range(check_positive_int("seeds", seeds)))
    if isinstance(seeds, (list, tuple)) and seeds:
        if all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
            return list(dict.fromkeys(seeds))
    raise ValueError(
        "`seeds` should be a positive int (that many seeds, 0, 1, ...) or a list of "
        f"non-negative int seeds. Received: `seeds`={seeds!r}"
    )


def check_epochs(epochs: Any, fractions: Sequence[float]) -> dict[float, int]:
    """`{fraction: epochs}` from an int, or from a dict with one entry per fraction."""
    if isinstance(epochs, dict):
        by_fraction = {float(k): v for k, v in epochs.items()}
        missing = [f for f in fractions if f not in by_fraction]
        if missing or set(by_fraction) - set(fractions):
            raise ValueError(
                f"`epochs` should be an int, or a dict with one entry per fraction {fractions}. "
                f"Received: `epochs`={epochs!r}"
            )
        return {f: check_positive_int("epochs", by_fraction[f]) for f in fractions}
    return {f: check_positive_int("epochs", epochs) for f in fractions}


def check_methods(methods: Any, dataset: LabeledDataset) -> list[str]:
    """The method names (list or comma-separated text) checked against `dataset`.

    `None` gives `default_methods(dataset)`. `raw`, the baseline, always comes first, named
    or not.
    """
    if methods is None:
        return default_methods(dataset)
    if isinstance(methods, str):
        methods = [part.strip() for part in methods.split(",") if part.strip()]
    methods = list(dict.fromkeys(methods))
    if not methods:
        raise ValueError(f"`methods` should name at least one method. Received: {methods!r}")
    for method in methods:
        if method != RAW:
            check_method_for_dataset(method, dataset)
    return [RAW] + [method for method in methods if method != RAW]
