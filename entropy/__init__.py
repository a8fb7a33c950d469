"""Entropy coding of integer tokens: LMs over codebook tokens (float for training, portable for
coding), range coding, and the `.ecfx` and `.ecdc` containers. Knows nothing of audio or of
`encodec_fx`, which builds its file compression on this package."""

from entropy.archive import (ARCHIVE_SUFFIX, ArchiveError, ArchiveHeader, ArchiveReader, ArchiveWriter,
                             DamagedSegmentError, Segment, TruncatedArchiveError, Unit)
from entropy.bitpack import pack_bits, packed_size, unpack_bits
from entropy.coding import CODING_MODES, CodingMode, StaticModel, decode_codes, encode_codes
from entropy.describe import describe_archive
from entropy.ecdc import OFFICIAL_GEOMETRIES, EcdcContent, EcdcGeometry, ecdc_bytes, read_ecdc, write_ecdc
from entropy.lm import (LM_24KHZ, LM_48KHZ, EntropyLM, LMConfig, LMState, load_lm, load_original_lm,
                        read_lm_metadata, save_lm)
from entropy.portable_lm import NextFrame, PortableLM
from entropy.train import lm_config_for, train_lm
from entropy.train_settings import LMTrainingConfig

__all__ = [
    "ARCHIVE_SUFFIX", "ArchiveError", "ArchiveHeader", "ArchiveReader", "ArchiveWriter", "CODING_MODES", "CodingMode",
    "DamagedSegmentError", "EcdcContent", "EcdcGeometry", "EntropyLM", "LMConfig", "LMState", "LMTrainingConfig",
    "LM_24KHZ", "LM_48KHZ", "NextFrame", "OFFICIAL_GEOMETRIES", "PortableLM", "Segment", "StaticModel",
    "TruncatedArchiveError", "Unit", "decode_codes", "describe_archive", "ecdc_bytes", "encode_codes",
    "lm_config_for", "load_lm", "load_original_lm", "pack_bits", "packed_size", "read_ecdc", "read_lm_metadata",
    "save_lm", "train_lm", "unpack_bits", "write_ecdc",
]
