"""encodec-fx: the EnCodec neural audio codec, exact with the reference models."""

from .chunked import ChunkedDecoder, ChunkedEncoder
from .compress import LostSegment, compress_file, decompress_file
from .config import EncodecConfig
from .effects import (BandwidthSchedule, Chain, CodebookTruncation, Codes, EncodecCompressor, EncodecDecoder,
                      EncodecEncoder, PacketLoss, TokenSubstitution)
from .feature_extraction import EncodecFeatureExtractor
from .lm import load_lm
from .model import EncodecModel
from .outputs import EncodecDecoderOutput, EncodecEncoderOutput, EncodecOutput
from .pretrained import DEFAULT_MODEL
from .streaming import StreamingDecoder, StreamingEncoder, round_trip_latency

__all__ = [
    "BandwidthSchedule",
    "Chain",
    "ChunkedDecoder",
    "ChunkedEncoder",
    "CodebookTruncation",
    "Codes",
    "DEFAULT_MODEL",
    "EncodecCompressor",
    "EncodecConfig",
    "EncodecDecoder",
    "EncodecDecoderOutput",
    "EncodecEncoder",
    "EncodecEncoderOutput",
    "EncodecFeatureExtractor",
    "EncodecModel",
    "EncodecOutput",
    "LostSegment",
    "PacketLoss",
    "StreamingDecoder",
    "StreamingEncoder",
    "TokenSubstitution",
    "compress_file",
    "decompress_file",
    "load_lm",
    "round_trip_latency",
]
