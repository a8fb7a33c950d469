"""Entropy coding and archive formats for EnCodec codes."""

from entropy.archive import (ARCHIVE_SUFFIX, ArchiveError, ArchiveHeader, ArchiveReader, ArchiveWriter,
                             DamagedSegmentError, Segment, TruncatedArchiveError, Unit)
from entropy.bitpack import pack_bits, packed_size, unpack_bits
from entropy.coding import CODING_MODES, CodingMode, StaticModel, decode_codes, encode_codes
from entropy.ecdc import OFFICIAL_GEOMETRIES, EcdcContent, EcdcGeometry, ecdc_bytes, read_ecdc, write_ecdc
from entropy.lm import (LM_24KHZ, LM_48KHZ, EntropyLM, LMConfig, LMState, load_lm, read_lm_metadata,
                        load_original_lm, save_lm, weights_sha256)
from entropy.portable_lm import NextFrame, PortableLM
