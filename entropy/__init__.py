"""Entropy coding and archive formats for EnCodec codes."""

from encodec_fx.checkpoints import weights_sha256
from entropy.archive import (ARCHIVE_SUFFIX, ArchiveError, ArchiveHeader, ArchiveReader, ArchiveWriter,
                             DamagedSegmentError, Segment, TruncatedArchiveError, Unit)
from entropy.bitpack import pack_bits, packed_size, unpack_bits
from entropy.coding import CODING_MODES, CodingMode, StaticModel, decode_codes, encode_codes
from entropy.ecdc import OFFICIAL_GEOMETRIES, EcdcContent, EcdcGeometry, ecdc_bytes, read_ecdc, write_ecdc
from entropy.lm import (LM_24KHZ, LM_48KHZ, EntropyLM, LMConfig, LMState, load_lm, load_original_lm,
                        read_lm_metadata, save_lm)
from entropy.portable_lm import NextFrame, PortableLM
from entropy.compress import LostSegment, compress_file, decompress_file, describe_archive
from entropy.train import LMTrainingConfig, lm_config_for, train_lm

__all__ = [
    "ARCHIVE_SUFFIX", "ArchiveError", "ArchiveHeader", "ArchiveReader", "ArchiveWriter", "CODING_MODES", "CodingMode",
    "DamagedSegmentError", "EcdcContent", "EcdcGeometry", "EntropyLM", "LMConfig", "LMState", "LMTrainingConfig",
    "LM_24KHZ", "LM_48KHZ", "LostSegment", "NextFrame", "OFFICIAL_GEOMETRIES", "PortableLM", "Segment", "StaticModel",
    "TruncatedArchiveError", "Unit", "compress_file", "decode_codes", "decompress_file", "describe_archive",
    "ecdc_bytes", "encode_codes", "lm_config_for", "load_lm", "load_original_lm", "pack_bits", "packed_size",
    "read_ecdc", "read_lm_metadata", "save_lm", "train_lm", "unpack_bits", "weights_sha256", "write_ecdc",
]
