"""Entropy coding of integer tokens: LMs over codebook tokens (float for training, portable for
coding), range coding, and the `.ecfx` and `.ecdc` containers. Knows nothing of audio or of
`encodec_fx`, which builds its file compression on this package. Public names are imported on
first use: reading an archive's header needs no torch."""

from entropy.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".archive": ("ARCHIVE_SUFFIX", "ArchiveError", "ArchiveHeader", "ArchiveReader", "ArchiveWriter",
                 "DamagedSegmentError", "Segment", "TruncatedArchiveError", "Unit"),
    ".bitpack": ("pack_bits", "packed_size", "unpack_bits"),
    ".coding": ("CODING_MODES", "CodingMode", "StaticModel", "decode_codes", "encode_codes"),
    ".describe": ("describe_archive",),
    ".ecdc": ("OFFICIAL_GEOMETRIES", "EcdcContent", "EcdcGeometry", "ecdc_bytes", "read_ecdc", "write_ecdc"),
    ".lm": ("LM_24KHZ", "LM_48KHZ", "EntropyLM", "LMConfig", "LMState", "load_lm", "load_original_lm",
            "read_lm_metadata", "save_lm"),
    ".portable_lm": ("NextFrame", "PortableLM"),
    ".train": ("lm_config_for", "train_lm"),
    ".train_settings": ("LMTrainingConfig",),
})
