"""The training methods by name, and the table of the options each method takes.

This is the one place that says which option applies to which method, with its default and
its help. Its readers: the command line (`keras_mlcl.cli.parser`: the `train` flags, their
help and defaults, the refusal of an option the method does not use), the `train` command
(`keras_mlcl.cli.main`: the options it passes on), the quality bench's grid
(`keras_mlcl.bench.grid`: the parameters a method may vary) and `build_model`
(`keras_mlcl.experiments.methods`: its defaults).

It imports the standard library only: the `keras-mlcl` launcher loads it before Keras, so
that `--help` and usage errors answer at once. Keep it so.

| option | default | values | methods |
|---|---|---|---|
| `temperature` | 0.1 | >= 1e-4 | every method but `ce` and `bce` |
| `coarse_temperature` | 0.5 | >= 1e-4 | `mlcl`, `mlcl+ce` |
| `coarse_weight` | 1.0 | >= 0 | `mlcl`, `mlcl+ce` |
| `weight_power` | 0.0 | in [0, 10] | `mlcl-labels`, `mlcl-groups` |
| `ce_weight` | 1.0 | > 0 | `<method>+ce` |

Temperatures are at least `MIN_TEMPERATURE`, the losses' bound (`keras_mlcl.losses.temperature`,
which this module cannot import: it imports Keras). `weight_power` is at most
`MAX_WEIGHT_POWER`: a head's weight is a share of rows, at least `1 / N`, to that power, which
stays a positive float64 for any `N` below 1e30.
"""

import dataclasses
import math

METHODS = (
    "ce",
    "supcon",
    "mlcl",
    "himulcon",
    "simdis",
    "supcon-any",
    "jaccard",
    "bce",
    "mlcl-labels",
    "mlcl-groups",
)
# Methods with one head per label or label group of the multi-hot level.
LABEL_HEAD_METHODS = ("mlcl-labels", "mlcl-groups")
# Methods without a `<method>+ce` form: `ce` and `bce` are a cross-entropy already.
WITHOUT_JOINT_CE = ("ce", "bce", *LABEL_HEAD_METHODS)
JOINT_CE = "+ce"
MIN_TEMPERATURE = 1e-4
MAX_WEIGHT_POWER = 10.0


def parse_method(name: str) -> tuple[str, bool]:
    """Splits a method name into its base method and whether it adds a joint cross-entropy.

    Args:
        name: a method name: one of `METHODS`, or `<method>+ce` for one not in
            `WITHOUT_JOINT_CE`.

    Returns:
        `(base, joint_ce)`.

    Example:

    >>> parse_method("mlcl+ce")
    ('mlcl', True)
    """
    joint = name.endswith(JOINT_CE)
    base = name[: -len(JOINT_CE)] if joint else name
    if base not in METHODS or (joint and base in WITHOUT_JOINT_CE):
        known = ", ".join(METHODS)
        single = ", ".join(m for m in METHODS if m not in WITHOUT_JOINT_CE)
        raise ValueError(
            f"`method` should be one of {known}, or one of {single} followed by '+ce'. "
            f"Received: `method`={name!r}"
        )
    return base, joint


def method_names() -> tuple[str, ...]:
    """Every method name: `METHODS`, then the `<method>+ce` forms.

    Example:

    >>> method_names()[-2:]
    ('supcon-any+ce', 'jaccard+ce')
    """
    joint = tuple(f"{m}{JOINT_CE}" for m in METHODS if m not in WITHOUT_JOINT_CE)
    return METHODS + joint


def _in_words(names: list[str]) -> str:
    """`["a", "b", "c"]` as `"a, b and c"`."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


@dataclasses.dataclass(frozen=True)
class MethodOption:
    """An option of `build_model` that some methods take: a `train` flag and a grid parameter.

    Args:
        name: the `build_model` argument and grid parameter; the flag is `--name` with
            dashes.
        default: `build_model`'s default, the flag's, and the grid's for a method it
            leaves out.
        help: what the option sets, for the flag's help (which the `scope` precedes).
        methods: the base methods it applies to, with and without `+ce`.
        joint_ce_only: whether it applies to the `<method>+ce` forms of `methods` only.
        allows_zero: whether 0 is a valid value (else it should be positive).
        at_least: the smallest valid value, if above 0.
        at_most: the largest valid value, if any.

    Example:

    >>> option = MethodOption("coarse_weight", 1.0, "...", methods=("mlcl",))
    >>> option.flag, option.applies_to("mlcl+ce"), option.scope
    ('--coarse-weight', True, 'mlcl and mlcl+ce')
    >>> option.check(0.5), option.expected
    (0.5, 'a positive number')
    """

    name: str
    default: float
    help: str
    methods: tuple[str, ...]
    joint_ce_only: bool = False
    allows_zero: bool = False
    at_least: float | None = None
    at_most: float | None = None

    @property
    def flag(self) -> str:
        """The `train` flag, e.g. `--coarse-weight`."""
        return "--" + self.name.replace("_", "-")

    @property
    def expected(self) -> str:
        """The valid values in words, e.g. `"a positive number >= 0.0001"`."""
        words = "a non-negative number" if self.allows_zero else "a positive number"
        if self.at_least is not None:
            words += f" >= {self.at_least}"
        if self.at_most is not None:
            words += f" <= {self.at_most}"
        return words

    def check(self, value: float | str) -> float:
        """Returns `value` as a float, or raises a `ValueError` naming the option when it is not
        one of the option's valid values (`expected`)."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        valid = number >= 0 if self.allows_zero else number > 0
        valid = valid and number >= (self.at_least or 0) and number <= (self.at_most or math.inf)
        if isinstance(value, bool) or not (valid and math.isfinite(number)):
            raise ValueError(
                f"`{self.name}` should be {self.expected}. Received: `{self.name}`={value!r}"
            )
        return number

    def applies_to(self, method: str) -> bool:
        """Whether the method named `method` uses the option (`ValueError` for no method)."""
        base, joint = parse_method(method)
        return base in self.methods and (joint or not self.joint_ce_only)

    @property
    def scope(self) -> str:
        """The methods it applies to, in words (for the help and the refusals)."""
        if self.joint_ce_only and set(self.methods) == set(METHODS) - set(WITHOUT_JOINT_CE):
            return f"<method>{JOINT_CE}"
        others = [m for m in METHODS if m not in self.methods]
        if len(others) < len(self.methods):
            return f"every method but {_in_words(others)}"
        return _in_words([m for m in method_names() if self.applies_to(m)])


METHOD_OPTIONS = (
    MethodOption(
        "temperature",
        0.1,
        "temperature of the contrastive head (mlcl: the finest level's; mlcl-labels, "
        "mlcl-groups: every head's)",
        methods=tuple(m for m in METHODS if m not in ("ce", "bce")),
        at_least=MIN_TEMPERATURE,
    ),
    MethodOption(
        "coarse_temperature",
        0.5,
        "temperature of the heads of the levels coarser than the finest",
        methods=("mlcl",),
        at_least=MIN_TEMPERATURE,
    ),
    MethodOption(
        "coarse_weight",
        1.0,
        "weight of those coarser heads (the finest head's is 1)",
        methods=("mlcl",),
        allows_zero=True,
    ),
    MethodOption(
        "weight_power",
        0.0,
        "each head weighs the share of rows with one of its labels to this power (scaled to a "
        "mean of 1)",
        methods=LABEL_HEAD_METHODS,
        allows_zero=True,
        at_most=MAX_WEIGHT_POWER,
    ),
    MethodOption(
        "ce_weight",
        1.0,
        "weight of the joint cross-entropy on the finest level",
        methods=tuple(m for m in METHODS if m not in WITHOUT_JOINT_CE),
        joint_ce_only=True,
    ),
)
DEFAULTS = {option.name: option.default for option in METHOD_OPTIONS}
OPTIONS = {option.name: option for option in METHOD_OPTIONS}


def options_for(method: str) -> tuple[str, ...]:
    """The names of the options that the method named `method` uses, in the table's order.

    Example:

    >>> options_for("mlcl+ce")
    ('temperature', 'coarse_temperature', 'coarse_weight', 'ce_weight')
    """
    return tuple(option.name for option in METHOD_OPTIONS if option.applies_to(method))
