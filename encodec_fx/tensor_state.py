"""Telling whether a tensor changed since it was last seen, to keep what was derived from it.

The fast path compiles layers from the model's weights and the quantiser caches its codebooks'
norms; both must notice a weight written in place (as `load_state_dict` and optimisers do),
replaced, or moved to another device or dtype.
"""

from __future__ import annotations

import torch


class TensorState:
    """A tensor's identity, storage and version counter: equal as long as nothing wrote to it or
    replaced it (the reference keeps the tensor alive, so its id cannot be reused).

    A tensor made under `torch.inference_mode` (a model built or loaded there) has no version
    counter, so a write cannot be seen: its state equals no other, and what was derived from it is
    made again at every call (the fast path's layers: 10-25 ms for the full-size models)."""

    def __init__(self, tensor: torch.Tensor):
        self.tensor, self.data_ptr = tensor, tensor.data_ptr()
        self.version = None if tensor.is_inference() else tensor._version

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, TensorState) and self.tensor is other.tensor and self.version is not None
                and self.version == other.version and self.data_ptr == other.data_ptr)
