"""Codec artifacts for training pipelines: EnCodec compression and network damage as data augmentation,
per example, seeded, batched. See README "Training with codec artifacts".

- `EncodecCompression`, `EncodecPacketLoss`: audiomentations-style (numpy, inside `audiomentations.Compose`);
- `TorchEncodecCompression`, `TorchEncodecPacketLoss`: torch-audiomentations-style (batched tensors);
- `code_batch` and `Draw`: the batched path itself, and one example's logged, replayable parameters.
"""

from .batch import code_batch
from .draws import Draw
from .numpy_transforms import EncodecCompression, EncodecPacketLoss
from .torch_transforms import ObjectDict, TorchEncodecCompression, TorchEncodecPacketLoss

__all__ = ["Draw", "EncodecCompression", "EncodecPacketLoss", "ObjectDict", "TorchEncodecCompression",
           "TorchEncodecPacketLoss", "code_batch"]
