"""encodec-fx: the EnCodec neural audio codec, exact with the reference models.

Public names are imported on first use, so that the command line can answer `--help` and `info`
without importing torch."""

from entropy.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    ".chunked": ("ChunkedDecoder", "ChunkedEncoder"),
    ".compress": ("LostSegment", "compress_file", "decompress_file"),
    ".config": ("EncodecConfig",),
    ".effects": ("BandwidthSchedule", "Chain", "CodebookTruncation", "Codes", "EncodecCompressor", "EncodecDecoder",
                 "EncodecEncoder", "PacketLoss", "TokenSubstitution"),
    ".feature_extraction": ("EncodecFeatureExtractor",),
    ".lm": ("load_lm",),
    ".model": ("EncodecModel",),
    ".outputs": ("EncodecDecoderOutput", "EncodecEncoderOutput", "EncodecOutput"),
    ".pretrained": ("DEFAULT_MODEL",),
    ".streaming": ("StreamingDecoder", "StreamingEncoder", "round_trip_latency"),
})
