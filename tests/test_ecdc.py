"""`.ecdc` files byte-identical to the original `encodec.compress(..., use_lm=False)`, and bit packing."""

import io
import json
import math
import os
import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from entropy.bitpack import pack_bits, packed_size, unpack_bits
from entropy.ecdc import OFFICIAL_GEOMETRIES, EcdcContent, EcdcGeometry, ecdc_bytes, read_ecdc, write_ecdc

from conftest import Trickle, import_original_encodec


def build_original_model(name: str, bandwidth: float):
    """An original EncodecModel with random weights and random codebooks (fresh ones are all zero).

    The codebooks are scaled to the small embeddings a random encoder produces, so codes vary.
    """
    encodec = import_original_encodec()
    torch.manual_seed(0)
    if name == "encodec_24khz":
        model = encodec.EncodecModel._get_model(
            [1.5, 3.0, 6.0, 12.0, 24.0], 24_000, 1, causal=True, model_norm="weight_norm", name=name
        )
    else:
        model = encodec.EncodecModel._get_model(
            [3.0, 6.0, 12.0, 24.0], 48_000, 2, causal=False, model_norm="time_group_norm",
            audio_normalize=True, segment=1.0, name=name,
        )
    with torch.no_grad():
        for layer in model.quantizer.vq.layers:
            layer._codebook.embed.copy_(0.01 * torch.randn(layer._codebook.embed.shape))
    model.set_target_bandwidth(bandwidth)
    return model.eval()


def encode_with_original(model, num_samples: int):
    """Random audio compressed by the original, and its codes/scales as plain `EcdcContent`."""
    from encodec.compress import compress

    wav = torch.randn(model.channels, num_samples, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        original_bytes = compress(model, wav, use_lm=False)
        frames = model.encode(wav[None])
    scales = [float(scale) for _, scale in frames] if model.normalize else None
    content = EcdcContent(model.name, num_samples, [codes[0].numpy() for codes, _ in frames], scales)
    return original_bytes, content


def assert_same_content(actual: EcdcContent, expected: EcdcContent) -> None:
    assert actual.model_name == expected.model_name
    assert actual.audio_length == expected.audio_length
    assert actual.scales == expected.scales
    assert len(actual.codes) == len(expected.codes)
    for actual_codes, expected_codes in zip(actual.codes, expected.codes):
        np.testing.assert_array_equal(actual_codes, expected_codes)


# 0.7 s mono at 1.5 kbps: 53 frames of 2 codes = 1060 bits, so the flush pads a partial byte.
# 110700 samples stereo: chunks of 48000, 48000 and 15660 samples (49 frames, again a partial byte).
# 6720 samples (21 frames): the original decoder's float frame count says 22 and fails on its own file.
@pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")  # raised inside the original package
@pytest.mark.parametrize(
    "name, bandwidth, num_samples",
    [("encodec_24khz", 1.5, 16_800), ("encodec_48khz", 3.0, 110_700), ("encodec_24khz", 12.0, 6_720)],
)
def test_matches_original_compress(name, bandwidth, num_samples):
    original_bytes, content = encode_with_original(build_original_model(name, bandwidth), num_samples)
    assert len(content.codes) == len(OFFICIAL_GEOMETRIES[name].chunk_lengths(num_samples))
    distinct_codes = np.unique(np.concatenate([codes.ravel() for codes in content.codes]))
    assert len(distinct_codes) > 5, f"codes too uniform to test the layout: {distinct_codes}"

    assert ecdc_bytes(content) == original_bytes
    assert_same_content(read_ecdc(original_bytes), content)


# --- bit packing -------------------------------------------------------------------------------


def test_bitpack_round_trip_random_widths_and_lengths():
    rng = np.random.default_rng(0)
    for _ in range(200):
        bits, count = int(rng.integers(1, 17)), int(rng.integers(0, 101))
        values = rng.integers(0, 1 << bits, size=count)
        data = pack_bits(values, bits)
        assert len(data) == packed_size(count, bits)
        np.testing.assert_array_equal(unpack_bits(data, bits, count), values)


def test_bitpack_matches_original_bit_packer():
    binary = import_original_encodec().binary
    rng = np.random.default_rng(1)
    for bits in range(1, 17):
        values = rng.integers(0, 1 << bits, size=37)
        stream = io.BytesIO()
        packer = binary.BitPacker(bits, stream)
        for value in values.tolist():
            packer.push(value)
        packer.flush()
        assert pack_bits(values, bits) == stream.getvalue()


def test_bitpack_layout_is_lsb_first():
    assert pack_bits(np.array([1, 2, 3]), 2) == bytes([0b00_11_10_01])
    assert pack_bits(np.array([0x3FF, 0]), 10) == bytes([0xFF, 0x03, 0x00])
    widest = np.array([2**32 - 1, 0, 2**31])
    np.testing.assert_array_equal(unpack_bits(pack_bits(widest, 32), 32, 3), widest)


@pytest.mark.parametrize(
    "values, bits, message",
    [
        (np.array([0, 4]), 2, r"\[0, 3\] for 2 bits"),
        (np.array([-1, 0]), 2, r"\[0, 3\] for 2 bits"),
        (np.array([0.5]), 2, "integers"),
        (np.zeros((2, 2), dtype=int), 2, "1-D"),
        (np.array([0]), 0, "between 1 and 32"),
    ],
)
def test_bitpack_rejects_bad_values(values, bits, message):
    with pytest.raises(ValueError, match=message):
        pack_bits(values, bits)


def test_bitpack_rejects_wrong_data_length():
    data = pack_bits(np.arange(10), 10)
    with pytest.raises(ValueError, match="exactly 13 bytes, got 12"):
        unpack_bits(data[:-1], 10, 10)
    with pytest.raises(ValueError, match="exactly 13 bytes, got 14"):
        unpack_bits(data + b"\0", 10, 10)


# --- reading and writing without a model ---------------------------------------------------------


def random_content(name: str, audio_length: int, num_codebooks: int = 4, seed: int = 0) -> EcdcContent:
    geometry = OFFICIAL_GEOMETRIES[name]
    rng = np.random.default_rng(seed)
    chunks = geometry.chunk_lengths(audio_length)
    codes = [rng.integers(0, 1024, size=(num_codebooks, geometry.frames_in(n))) for n in chunks]
    scales = [float(np.float32(s)) for s in rng.uniform(0.01, 1.0, len(chunks))] if geometry.normalize else None
    return EcdcContent(name, audio_length, codes, scales)


def test_chunk_geometry_of_official_models():
    assert OFFICIAL_GEOMETRIES["encodec_24khz"].chunk_lengths(16_800) == [16_800]
    assert OFFICIAL_GEOMETRIES["encodec_48khz"].chunk_lengths(110_700) == [48_000, 48_000, 15_660]
    assert OFFICIAL_GEOMETRIES["encodec_48khz"].frames_in(48_000) == 150
    assert OFFICIAL_GEOMETRIES["encodec_24khz"].frames_in(6_720) == 21


def test_header_and_metadata_layout():
    data = ecdc_bytes(random_content("encodec_24khz", 1_000))
    metadata = b'{"m": "encodec_24khz", "al": 1000, "nc": 4, "lm": false}'
    assert data[:9] == struct.pack("!4sBI", b"ECDC", 0, len(metadata))
    assert data[9 : 9 + len(metadata)] == metadata


def test_file_and_stream_round_trip(tmp_path):
    content = random_content("encodec_48khz", 50_000)
    path = tmp_path / "audio.ecdc"
    write_ecdc(content, path)
    assert_same_content(read_ecdc(path), content)
    assert_same_content(read_ecdc(str(path)), content)

    stream = io.BytesIO()
    write_ecdc(content, stream)
    stream.write(b"next record")
    stream.seek(0)
    assert_same_content(read_ecdc(stream), content)
    assert stream.read() == b"next record"


def test_custom_geometry_for_other_model_names():
    geometry = EcdcGeometry(sample_rate=16_000, frame_rate=50, channels=1, normalize=False, bits_per_code=11)
    codes = [np.random.default_rng(0).integers(0, 2048, size=(3, 7))]
    content = EcdcContent("my_model", 2_200, codes)
    data = ecdc_bytes(content, geometry)
    assert_same_content(read_ecdc(data, geometry), content)
    with pytest.raises(ValueError, match=r"unknown model name 'my_model'.*encodec_24khz.*geometry="):
        read_ecdc(data)
    with pytest.raises(ValueError, match=r"unknown model name 'my_model'"):
        ecdc_bytes(content)


def with_header(data: bytes, magic: bytes = b"ECDC", version: int = 0, **metadata_changes) -> bytes:
    """`data` with its header or metadata replaced, the rest unchanged."""
    metadata_length = struct.unpack("!I", data[5:9])[0]
    metadata = json.loads(data[9 : 9 + metadata_length]) | metadata_changes
    metadata_bytes = json.dumps(metadata).encode()
    return struct.pack("!4sBI", magic, version, len(metadata_bytes)) + metadata_bytes + data[9 + metadata_length :]


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(magic=b"RIFF"), r"not an .ecdc file: magic is b'RIFF', expected b'ECDC'"),
        (dict(version=1), "unsupported .ecdc version 1: only version 0"),
        (dict(lm=True), r'LM entropy-coded .ecdc files \("lm": true\) are not supported'),
        (dict(m="encodec_96khz"), r"unknown model name 'encodec_96khz'"),
        (dict(al=0), r'audio length "al" must be a positive integer'),
        (dict(nc="4"), r'number of codebooks "nc" must be a positive integer'),
    ],
)
def test_reader_rejects_bad_headers(changes, message):
    data = with_header(ecdc_bytes(random_content("encodec_24khz", 1_000)), **changes)
    with pytest.raises(ValueError, match=message):
        read_ecdc(data)


def test_reader_rejects_bad_metadata():
    with pytest.raises(ValueError, match="not valid UTF-8 JSON"):
        read_ecdc(struct.pack("!4sBI", b"ECDC", 0, 3) + b"{x}")
    with pytest.raises(ValueError, match=r"keys \('m', 'al', 'nc', 'lm'\)"):
        read_ecdc(struct.pack("!4sBI", b"ECDC", 0, 2) + b"{}")


def test_reader_rejects_truncated_data_naming_the_part():
    content = random_content("encodec_48khz", 110_700, num_codebooks=2)
    data = ecdc_bytes(content)
    metadata_end = 9 + struct.unpack("!I", data[5:9])[0]
    codes_sizes = [packed_size(codes.size, 10) for codes in content.codes]
    chunk_starts = np.cumsum([metadata_end] + [4 + size for size in codes_sizes]).tolist()
    cuts = {
        4: "the header",
        metadata_end - 1: "the JSON metadata",
        chunk_starts[0] + 2: "the scale of chunk 0 of 3",
        chunk_starts[1] + 4 + 100: "the codes of chunk 1 of 3",
        chunk_starts[2]: "the scale of chunk 2 of 3",
        len(data) - 1: "the codes of chunk 2 of 3",
    }
    assert chunk_starts[3] == len(data)
    for cut, part in cuts.items():
        with pytest.raises(ValueError, match=f"truncated .ecdc data: {part} needs"):
            read_ecdc(data[:cut])


def test_reader_rejects_trailing_bytes():
    with pytest.raises(ValueError, match="2 unexpected bytes after the last chunk"):
        read_ecdc(ecdc_bytes(random_content("encodec_24khz", 1_000)) + b"\0\0")


def test_writer_rejects_inconsistent_content():
    content = random_content("encodec_48khz", 50_000)  # two chunks: 150 frames, then 8 for 2480 samples
    codes = content.codes
    cases = [
        (replace(content, codes=[codes[0], codes[1] + 1024]), r"chunk 1 must lie in \[0, 1023\] \(10 bits\)"),
        (replace(content, codes=[codes[0], codes[1] - 1024]), r"chunk 1 must lie in \[0, 1023\]"),
        (replace(content, codes=[codes[0], codes[1][:, :-1]]), r"frames = 8 for its 2480 samples, got \[4, 7\]"),
        (replace(content, codes=[codes[0], codes[1][:3]]), r"chunk 1 must have shape.*got \[3, 8\]"),
        (replace(content, codes=[codes[0][0], codes[1]]), r"chunk 0 must have shape.*got \[150\]"),
        (replace(content, codes=[codes[0], codes[1].astype(float)]), "must be integers"),
        (replace(content, codes=codes[:1]), r"make 2 chunk\(s\) for 'encodec_48khz', got codes for 1"),
        (replace(content, scales=None), "normalises audio: give one scale per chunk"),
        (replace(content, audio_length=0), "audio_length must be a positive integer"),
    ]
    for bad_content, message in cases:
        with pytest.raises(ValueError, match=message):
            ecdc_bytes(bad_content)
    with pytest.raises(ValueError, match="does not normalise audio: scales must be None"):
        ecdc_bytes(replace(random_content("encodec_24khz", 1_000), scales=[1.0]))


# --- input validation ------------------------------------------------------------------------------


def crafted_header(model_name: str, audio_length: int, num_codebooks: int = 4) -> bytes:
    metadata = json.dumps({"m": model_name, "al": audio_length, "nc": num_codebooks, "lm": False}).encode()
    return struct.pack("!4sBI", b"ECDC", 0, len(metadata)) + metadata


def test_absurd_audio_length_is_refused_at_once(tmp_path):
    """A few crafted bytes claiming 10**15 samples: no list of 2e10 chunks, no 15 TB read buffer."""
    chunked = crafted_header("encodec_48khz", 10**15)
    assert len(chunked) == 77
    message = (r"truncated .ecdc data: the scale of chunk 0 of 21043771044 needs 4 bytes, only 0 left "
               r"\(the metadata's audio length of 1000000000000000 samples makes 21043771044 chunk")
    for source in (chunked, io.BytesIO(chunked)):
        with pytest.raises(ValueError, match=message):
            read_ecdc(source)
    with pytest.raises(ValueError, match="the scale of chunk 0 of 21043771044 needs 4 bytes, only 0 left$"):
        read_ecdc(Trickle(chunked, 1))  # size unknown: read chunk by chunk, stops at the first missing byte
    path = tmp_path / "crafted.ecdc"
    path.write_bytes(crafted_header("encodec_24khz", 10**15) + bytes(20))
    with open(path, "rb") as file, pytest.raises(ValueError, match="the codes of chunk 0 of 1 needs 15625000000000 "
                                                                   "bytes, only 20 left"):
        read_ecdc(file)


def test_stream_returning_short_reads_is_read_whole():
    content = random_content("encodec_48khz", 50_000)
    assert_same_content(read_ecdc(Trickle(ecdc_bytes(content), 1)), content)


GEOMETRY = dict(sample_rate=24_000, frame_rate=75, channels=1, normalize=False)


@pytest.mark.parametrize("changes, error, message", [
    (dict(sample_rate=0), ValueError, r"sample_rate must be a positive integer \(samples per second\), got 0"),
    (dict(sample_rate="24000"), TypeError, "sample_rate must be a positive integer.*got '24000'"),
    (dict(frame_rate=0), ValueError, r"frame_rate must be a positive integer \(code frames per second\), got 0"),
    (dict(frame_rate=75.0), TypeError, "frame_rate must be a positive integer"),
    (dict(channels=True), TypeError, "channels must be a positive integer"),
    (dict(normalize="yes"), TypeError, "normalize must be True or False"),
    (dict(bits_per_code=33), ValueError, "bits_per_code must be an integer from 1 to 32, got 33"),
    (dict(chunk_length=480, chunk_stride=0), ValueError,
     r"chunk_stride must be a positive integer \(samples\) or None"),
    (dict(chunk_length=-1, chunk_stride=1), ValueError, "chunk_length must be a positive integer"),
])
def test_geometry_fields_are_checked(changes, error, message):
    with pytest.raises(error, match=f"^EcdcGeometry {message}"):
        EcdcGeometry(**GEOMETRY | changes)


def test_geometry_takes_numpy_integers_as_ints():
    geometry = EcdcGeometry(sample_rate=np.int64(24_000), frame_rate=np.int32(75), channels=1, normalize=np.bool_(0))
    assert geometry == EcdcGeometry(**GEOMETRY) and type(geometry.sample_rate) is int


def test_geometry_argument_must_be_a_geometry():
    content = random_content("encodec_24khz", 1_000)
    data = ecdc_bytes(content)
    for call in (lambda: read_ecdc(data, geometry=GEOMETRY), lambda: ecdc_bytes(content, GEOMETRY)):
        with pytest.raises(TypeError, match="geometry must be an EcdcGeometry or None, got dict"):
            call()


@pytest.mark.parametrize("source, detail", [
    (None, "got NoneType"),
    (5, "got int"),  # not a file descriptor
    (io.StringIO("ECDC"), "got a text stream: open the file with 'rb'"),
    (memoryview(np.zeros(40, dtype=np.int16)), "got a memoryview of format 'h'"),
])
def test_reader_says_what_sources_it_takes(source, detail):
    with pytest.raises(TypeError, match="source must be bytes, a bytearray, a byte memoryview, a path or a binary "
                                        f"file object opened for reading, {detail}"):
        read_ecdc(source)


def test_reader_takes_bytearray_and_byte_memoryview():
    content = random_content("encodec_24khz", 1_000)
    data = ecdc_bytes(content)
    for source in (bytearray(data), memoryview(data), memoryview(bytearray(data)).cast("b")):
        assert_same_content(read_ecdc(source), content)


@pytest.mark.parametrize("scale, error, message", [
    (float("nan"), ValueError, "must be a finite positive number that float32 holds .*, got nan$"),
    (-0.5, ValueError, "must be a finite positive number .*, got -0.5$"),
    (0.0, ValueError, "must be a finite positive number .*, got 0.0$"),
    (1e50, ValueError, "must be a finite positive number that float32 holds .*, got 1e[+]50$"),  # float32 overflows
    (1e-50, ValueError, "must be a finite positive number that float32 holds .*, got 1e-50$"),  # float32 rounds to 0
    ("a", TypeError, r"must be a real number \(or a size-1 array or tensor\), got 'a'"),
    (None, TypeError, "must be a real number"),
    (True, TypeError, "must be a real number"),
    (np.array([0.5, 0.25]), ValueError, r"must be one number, got an array of shape \[2\]"),
    (torch.ones(2), ValueError, r"must be one number, got a tensor of shape \[2\]"),
])
def test_writer_refuses_scales_that_are_not_finite_positive_numbers(scale, error, message):
    content = random_content("encodec_48khz", 50_000)
    with pytest.raises(error, match=f"^the scale of chunk 1 {message}"):
        ecdc_bytes(replace(content, scales=[content.scales[0], scale]))


def test_scales_may_be_numpy_scalars_arrays_or_tensors():
    """What encoders hand out (the original's scale is a [1, 1] tensor, 1e-8 + the chunk's RMS)."""
    content = random_content("encodec_48khz", 50_000)
    expected = ecdc_bytes(content)
    first, second = content.scales
    for scales in ([np.float32(first), np.float64(second)], [np.array([[first]]), np.array(second)],
                   [torch.tensor([[first]]), torch.tensor(second, dtype=torch.float64)], np.array([first, second])):
        assert ecdc_bytes(replace(content, scales=scales)) == expected


@pytest.mark.parametrize("bad_scale", [float("nan"), -1.0, 0.0, float("inf")])
def test_reader_refuses_a_scale_no_encoder_writes(bad_scale):
    data = bytearray(ecdc_bytes(random_content("encodec_48khz", 50_000)))
    metadata_end = 9 + struct.unpack("!I", data[5:9])[0]
    data[metadata_end:metadata_end + 4] = struct.pack("!f", bad_scale)
    with pytest.raises(ValueError,
                       match=f"the scale of chunk 0 of 2 is {bad_scale}: scales must be finite and positive"):
        read_ecdc(bytes(data))


def test_writer_checks_content_before_listing_absurd_chunk_counts():
    content = random_content("encodec_48khz", 50_000)
    with pytest.raises(ValueError, match=r"10000000000000000 samples make 210437710438 chunk\(s\)"):
        ecdc_bytes(replace(content, audio_length=10**16))
    for bad, error, message in [(dict(codes=None), TypeError, "codes must be a list"),
                                (dict(model_name=48), TypeError, "model name must be a string")]:
        with pytest.raises(error, match=message):
            ecdc_bytes(replace(content, **bad))
    with pytest.raises(TypeError, match="content must be an EcdcContent, got dict"):
        ecdc_bytes({"model_name": "encodec_48khz"})


def test_writer_never_overwrites_unless_asked(tmp_path):
    content = random_content("encodec_24khz", 1_000)
    path = tmp_path / "audio.ecdc"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="audio.ecdc already exists: pass overwrite=True to replace it"):
        write_ecdc(content, path)
    assert path.read_bytes() == b"precious"
    write_ecdc(content, path, overwrite=True)
    assert path.read_bytes() == ecdc_bytes(content) and os.listdir(tmp_path) == ["audio.ecdc"]


def test_writer_is_atomic(tmp_path, monkeypatch):
    """A write that fails half-way (a full disk) leaves the old file and no temporary."""
    path = tmp_path / "audio.ecdc"
    path.write_bytes(b"precious")

    def half_written(self, data):
        with open(self, "wb") as file:
            file.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_written)
    with pytest.raises(OSError, match=f"^no space left on device writing {path}$"):
        write_ecdc(random_content("encodec_24khz", 1_000), path, overwrite=True)
    assert path.read_bytes() == b"precious" and os.listdir(tmp_path) == ["audio.ecdc"]


def test_writer_destination_errors_name_the_destination(tmp_path):
    content = random_content("encodec_24khz", 1_000)
    missing = tmp_path / "no such folder" / "audio.ecdc"
    with pytest.raises(FileNotFoundError, match=f"^cannot write {missing}: there is no folder {missing.parent}$"):
        write_ecdc(content, missing)
    with pytest.raises(IsADirectoryError, match="it is a folder; give a file name"):
        write_ecdc(content, tmp_path)
    for destination, detail in [(io.StringIO(), r"a text stream \(open it with 'wb'\)"), (None, "NoneType"),
                                (3, "int")]:
        with pytest.raises(TypeError, match=f"destination must be a path or a binary file object opened for "
                                            f"writing, got {detail}"):
            write_ecdc(content, destination)
    with pytest.raises(ValueError, match="scale"):  # refused before anything is created
        write_ecdc(replace(random_content("encodec_48khz", 50_000), scales=[1.0, math.nan]), tmp_path / "x.ecdc")
    assert os.listdir(tmp_path) == []
