"""EnCodec stages as audio effects with pedalboard's calling convention, chainable with native
pedalboard plugins. See docs/effects.md."""

from .chain import Chain
from .codec import EncodecCompressor, EncodecDecoder, EncodecEncoder
from .codes import Codes
from .layout import AudioLayout
from .protocol import Effect
from .tokens import BandwidthSchedule, CodebookTruncation, PacketLoss, TokenSubstitution

__all__ = [
    "AudioLayout",
    "BandwidthSchedule",
    "Chain",
    "CodebookTruncation",
    "Codes",
    "Effect",
    "EncodecCompressor",
    "EncodecDecoder",
    "EncodecEncoder",
    "PacketLoss",
    "TokenSubstitution",
]
