"""Checks on plain numbers and settings, shared by the codec's config, the effects and both training
recipes (codec and LM), so each bad value gets one clear message naming what is wrong and what is
accepted. Here, in the lower layer, because `entropy` may import nothing from `encodec_fx`; free of
torch, because the command line builds its options from the training settings without importing it."""

from __future__ import annotations

import math
import numbers
from typing import TypeGuard


def is_integer(value: object) -> TypeGuard[int]:
    """An integer of any kind (numpy's too), but not a bool. To the type checker an int: numpy's
    integers compare, index and convert like one."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_finite_number(value: object) -> TypeGuard[int | float]:
    """A finite real number of any kind, but not a bool (an int of any size is finite, though
    math.isfinite(10**400) overflows)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and (
        isinstance(value, numbers.Integral) or math.isfinite(value))


def check_settings(settings: object, *, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = (),
                   fractions: tuple[str, ...] = (), percents: tuple[str, ...] = ()) -> None:
    """A training recipe's numbers where they make sense: finite (an infinite learning rate or weight
    trains to NaN), and positive (steps, sizes, rates), non-negative, fractions from 0 to 1 or
    percents from 0 to 100."""
    rules = [(positive, lambda v: v > 0, "positive"), (non_negative, lambda v: v >= 0, "at least 0"),
             (fractions, lambda v: 0 <= v <= 1, "from 0 to 1"), (percents, lambda v: 0 <= v <= 100, "from 0 to 100")]
    for names, valid, accepted in rules:
        for name in names:
            value = getattr(settings, name)
            if not is_finite_number(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
            if not valid(value):
                raise ValueError(f"{name} must be {accepted}, got {value!r}")
