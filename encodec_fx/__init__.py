"""encodec-fx: the EnCodec neural audio codec, exact with the reference models."""

from .config import EncodecConfig
from .feature_extraction import EncodecFeatureExtractor
from .model import EncodecModel
from .outputs import EncodecDecoderOutput, EncodecEncoderOutput, EncodecOutput

__all__ = [
    "EncodecConfig",
    "EncodecDecoderOutput",
    "EncodecEncoderOutput",
    "EncodecFeatureExtractor",
    "EncodecModel",
    "EncodecOutput",
]
