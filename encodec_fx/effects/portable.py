"""Pickling what pedalboard cannot: its native plugins travel as their class name and parameters.

pedalboard's plugins are C++ objects without pickle support (pedalboard #96, #212), so a chain holding
one could not reach a `DataLoader` worker or a Ray task. A plugin's parameters are its properties, and
its constructor takes the same names, so `NativePlugin` rebuilds an equal plugin on the other side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pedalboard

NOT_PARAMETERS = ("reported_latency_samples",)


@dataclass(frozen=True)
class NativePlugin:
    """A picklable stand-in for one native pedalboard plugin."""

    name: str
    parameters: dict[str, Any]

    @classmethod
    def of(cls, plugin: pedalboard.Plugin) -> NativePlugin:
        kind = type(plugin)
        if getattr(pedalboard, kind.__name__, None) is not kind:
            raise TypeError(f"{kind.__name__} is not one of pedalboard's own plugins, so it cannot be pickled "
                            "(external VST3 and Audio Unit plugins hold native state)")
        parameters = {name: getattr(plugin, name) for name in dir(kind)
                      if isinstance(getattr(kind, name, None), property) and not name.startswith("is_")
                      and name not in NOT_PARAMETERS}
        if isinstance(plugin, pedalboard.Convolution):
            if parameters.get("impulse_response_filename") is None:
                raise TypeError("a Convolution built from an array cannot be pickled (its sample rate is not "
                                "kept): build it from an impulse-response file")
            parameters.pop("impulse_response", None)
        return cls(kind.__name__, {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in parameters.items()})

    def build(self) -> pedalboard.Plugin:
        return getattr(pedalboard, self.name)(**self.parameters)


def portable(stage: Any) -> Any:
    """`stage` itself, or for a native pedalboard plugin its `NativePlugin`."""
    return NativePlugin.of(stage) if isinstance(stage, pedalboard.Plugin) else stage


def rebuilt(stage: Any) -> Any:
    return stage.build() if isinstance(stage, NativePlugin) else stage
