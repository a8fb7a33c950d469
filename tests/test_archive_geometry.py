"""Archive geometry the readers derive from the header: chunks per segment when the last segment is short, chunked
streams that end with two short chunks, version 2 archives of the chunked 48 kHz model, and what time ranges,
transcoding and recovery do with them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pedalboard.io import AudioFile

from encodec_fx import EncodecModel
from encodec_fx.compress import compress_file, decode_range, decompress_file, transcode_file
from entropy import format_v3 as v3
from entropy.archive import ArchiveHeader, ArchiveReader, ArchiveWriter
from entropy.lm import EntropyLM, LMConfig, load_lm

from conftest import save_tiny_codecs_and_lm
from test_compress import flip_byte_in_segment, segment_offsets


def _write(path, rate, n, seed=1):
    rng = np.random.default_rng(seed)
    audio = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 800) * np.arange(n) / rate) + 0.02 * rng.standard_normal(n)
    with AudioFile(str(path), "w", samplerate=rate, num_channels=1) as file:
        file.write(audio[None].astype(np.float32))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("geometry")
    save_tiny_codecs_and_lm(root)
    _write(root / "mono48k.wav", 48_000, int(48_000 * 6.5))  # 7 chunks: segments of 5 and 2
    _write(root / "mono24k.wav", 24_000, int(24_000 * 8.0))  # 2 segments of 5 s and 3 s
    return root


def _model(files, name):
    return EncodecModel.from_pretrained(files / name)


def test_a_range_in_a_short_last_segment_is_the_whole_decode_there(files, tmp_path):
    model = _model(files, "codec48")
    header = compress_file(files / "mono48k.wav", tmp_path / "a.ecfx", model, bandwidth=6.0, model_name="m",
                           mode="static", progress=False)
    assert (header.units, header.segments, header.segment_frames // header.unit_frames) == (7, 2, 5)
    whole = decode_range(tmp_path / "a.ecfx", model)
    for start, duration in [(5.2, 0.5), (4.9, 1.0), (6.0, 1.0)]:
        part = decode_range(tmp_path / "a.ecfx", model, start=start, duration=duration)
        first = round(start * 48_000)
        np.testing.assert_allclose(part, whole[:, first: first + round(duration * 48_000)], atol=1e-5, rtol=0)


def test_transcoding_a_short_last_segment_is_compressing_at_the_lower_bandwidth(files, tmp_path):
    model = _model(files, "codec48")
    options = dict(model_name="m", mode="static", progress=False)
    compress_file(files / "mono48k.wav", tmp_path / "high.ecfx", model, bandwidth=12.0, **options)
    compress_file(files / "mono48k.wav", tmp_path / "low.ecfx", model, bandwidth=6.0, **options)
    transcode_file(tmp_path / "high.ecfx", tmp_path / "out.ecfx", bandwidth=6.0)
    assert (tmp_path / "out.ecfx").read_bytes() == (tmp_path / "low.ecfx").read_bytes()


def test_recover_keeps_the_rows_of_a_lost_segment_in_an_lm_group(files, tmp_path):
    """Both segments are LM-coded as one batch: losing the first (5 chunks) must skip 5 rows, not 4."""
    model, lm = _model(files, "codec48"), load_lm(files / "lm.safetensors")
    header = compress_file(files / "mono48k.wav", tmp_path / "a.ecfx", model, bandwidth=6.0, model_name="m",
                           mode="lm", lm=lm, progress=False)
    assert header.lm_group_segments >= 2
    decompress_file(tmp_path / "a.ecfx", tmp_path / "whole.wav", model, lm=lm, progress=False)
    flip_byte_in_segment(tmp_path / "a.ecfx", 0)
    lost = decompress_file(tmp_path / "a.ecfx", tmp_path / "lost.wav", model, lm=lm, recover=True, progress=False)
    assert [segment.number for segment in lost] == [0]
    with AudioFile(str(tmp_path / "whole.wav")) as a, AudioFile(str(tmp_path / "lost.wav")) as b:
        whole, recovered = a.read(a.frames), b.read(b.frames)
    after = 5 * model.config.chunk_stride + model.config.chunk_length  # past the second segment's first overlap
    np.testing.assert_allclose(recovered[:, after:], whole[:, after:], atol=1e-4, rtol=0)


@pytest.mark.parametrize("samples", [47_520 * 2 + 1, 47_520 * 2 + 160, 47_520 * 3 + 80, 142_660])
def test_a_stream_ending_in_two_short_chunks_round_trips(files, tmp_path, samples):
    model = _model(files, "codec48")
    _write(tmp_path / "in.wav", 48_000, samples)
    header = compress_file(tmp_path / "in.wav", tmp_path / "a.ecfx", model, bandwidth=6.0, model_name="m",
                           mode="raw", progress=False)
    stride, hop = model.config.chunk_stride, model.config.hop_length
    chunks = [-(-min(model.config.chunk_length, samples - i * stride) // hop) for i in range(-(-samples // stride))]
    assert chunks[-2:] == [chunks[-2], 1] and chunks[-2] < model.config.frames_per_chunk
    assert (header.units, header.frames) == (len(chunks), sum(chunks))
    with ArchiveReader(tmp_path / "a.ecfx") as reader:
        assert [unit.frames for segment in reader for unit in segment.units] == chunks
    decompress_file(tmp_path / "a.ecfx", tmp_path / "out.wav", model, progress=False)
    with AudioFile(str(tmp_path / "out.wav")) as file:
        assert file.frames == samples
        whole = file.read(file.frames)
    np.testing.assert_allclose(decode_range(tmp_path / "a.ecfx", model, start=1.5), whole[:, 72_000:], atol=2 / 32768)


def test_geometry_lays_out_a_tail_of_short_chunks():
    geometry = v3.Geometry(450, 150, 2, 1, False, 0, tail=v3.chunk_tail(142_660, 48_000, 47_520, 48_000, 150, 150,
                                                                         450))
    assert geometry.tail == (149, 1) and (geometry.units, geometry.segments) == (4, 2)
    assert [geometry.units_of(n) for n in range(2)] == [[150, 150], [149, 1]]
    assert [geometry.first_frame(n) for n in range(2)] == [0, 300]
    straddling = v3.Geometry(450, 150, 3, 1, False, 0, tail=(149, 1))
    assert [straddling.units_of(n) for n in range(2)] == [[150, 150, 149], [1]]
    assert straddling.first_frame(1) == 449


def test_a_version_2_archive_of_the_48khz_model_decodes(files, tmp_path):
    """Version 2 headers have no unit_frames: a chunked one's is a chunk's frames."""
    model = _model(files, "codec48")
    header = compress_file(files / "mono48k.wav", tmp_path / "v3.ecfx", model, bandwidth=6.0, model_name="m",
                           mode="static", progress=False)
    with ArchiveReader(tmp_path / "v3.ecfx") as reader:
        segments = list(reader)
    fields = header.to_dict()
    for name in ("streams", "unit_frames", "scaled", "parity"):  # what version 2 headers did not hold
        del fields[name]
    with ArchiveWriter(tmp_path / "v2.ecfx", fields) as writer:
        for segment in segments:
            writer.write_segment(segment)
    with ArchiveReader(tmp_path / "v2.ecfx") as reader:
        assert reader.version == 2
        assert ArchiveHeader.from_dict(reader.header).unit_frames == model.config.frames_per_chunk
    np.testing.assert_array_equal(decode_range(tmp_path / "v2.ecfx", model), decode_range(tmp_path / "v3.ecfx", model))
    np.testing.assert_array_equal(decode_range(tmp_path / "v2.ecfx", model, start=5.2, duration=0.5),
                                  decode_range(tmp_path / "v3.ecfx", model, start=5.2, duration=0.5))


def test_a_range_without_the_codec_names_it(files, tmp_path):
    model = _model(files, "codec24")
    compress_file(files / "mono24k.wav", tmp_path / "a.ecfx", model, bandwidth=1.5, model_name="m", mode="raw",
                  progress=False)
    with pytest.raises(ValueError, match="this archive needs the codec 'm'"):
        decompress_file(tmp_path / "a.ecfx", tmp_path / "out.wav", None, start=1.0)


@pytest.mark.parametrize("codec, start", [("codec24", 5.5), ("codec48", 5.3)])
def test_a_range_whose_warm_up_segment_is_lost_lines_up(files, tmp_path, codec, start):
    """The range starts in segment 1; its warm-up lies in segment 0, which is damaged: the range is the whole
    recovered decode there, not shifted by the warm-up skipped."""
    model = _model(files, codec)
    source = files / ("mono24k.wav" if codec == "codec24" else "mono48k.wav")
    compress_file(source, tmp_path / "a.ecfx", model, bandwidth=6.0, model_name="m", mode="raw", progress=False)
    flip_byte_in_segment(tmp_path / "a.ecfx", 0)
    whole = decode_range(tmp_path / "a.ecfx", model, recover=True)
    rate = 24_000 if codec == "codec24" else 48_000
    part = decode_range(tmp_path / "a.ecfx", model, start=start, duration=1.0, recover=True)
    first = round(start * rate)
    np.testing.assert_allclose(part, whole[:, first: first + rate], atol=1e-5, rtol=0)


def test_transcode_refuses_what_compress_refuses(files, tmp_path):
    model = _model(files, "codec24")
    compress_file(files / "mono24k.wav", tmp_path / "a.ecfx", model, bandwidth=6.0, model_name="m", mode="raw",
                  progress=False)
    with pytest.raises(ValueError, match="bandwidth 2.25 kbps is not one the codec codes"):
        transcode_file(tmp_path / "a.ecfx", tmp_path / "b.ecfx", bandwidth=2.25)
    with pytest.raises(ValueError, match="bandwidth 2.25"):
        compress_file(files / "mono24k.wav", tmp_path / "c.ecfx", model, bandwidth=2.25, model_name="m",
                      progress=False)
    torch.manual_seed(0)
    small = EntropyLM(LMConfig(n_q=32, card=512, dim=32, num_heads=4, num_layers=1, past_context=20))
    with pytest.raises(ValueError, match="of 512 codes; the archive's codes have 4 of 1024"):
        transcode_file(tmp_path / "a.ecfx", tmp_path / "b.ecfx", bandwidth=3.0, mode="lm", lm=small)
    assert not (tmp_path / "b.ecfx").exists()
    compress_file(files / "mono24k.wav", tmp_path / "low.ecfx", model, bandwidth=1.5, model_name="m", mode="static",
                  progress=False)
    transcode_file(tmp_path / "a.ecfx", tmp_path / "b.ecfx", bandwidth=1.5, mode="static")
    assert (tmp_path / "b.ecfx").read_bytes() == (tmp_path / "low.ecfx").read_bytes()


@pytest.mark.parametrize("case", range(8))
def test_random_lengths_and_segment_lengths_decode_ranges_as_the_whole(files, tmp_path, case):
    """Seeded draws of codec, file length (down to a few samples) and segment length (0.1 s, 8 frames or one
    chunk, to 6 s): the header's geometry counts every frame, every range is the whole decode there, and
    parity rebuilds a damaged segment wherever it falls."""
    rng = np.random.default_rng(case)
    codec = ("codec24", "codec48")[case % 2]
    model = _model(files, codec)
    rate = model.config.sampling_rate
    samples = int(rng.choice([int(rng.integers(1, 2_000)), int(rng.integers(2_000, int(9.5 * rate)))]))
    segment_seconds = float(np.exp(rng.uniform(np.log(0.1), np.log(6.0))))
    _write(tmp_path / "in.wav", rate, samples, seed=case)
    header = compress_file(tmp_path / "in.wav", tmp_path / "a.ecfx", model, bandwidth=6.0, model_name="m",
                           mode="raw", progress=False, parity=2, segment_seconds=segment_seconds)
    with ArchiveReader(tmp_path / "a.ecfx") as reader:
        segments = list(reader)
    assert len(segments) == header.segments and sum(segment.frames for segment in segments) == header.frames
    assert all(segment.frames == header.segment_frames for segment in segments[:-1])
    whole = decode_range(tmp_path / "a.ecfx", model)
    assert whole.shape == (1, samples)
    for _ in range(3):
        start = float(rng.uniform(0, samples / rate))
        duration = float(rng.uniform(0, 3.0))
        first = round(start * rate)
        if first >= samples:
            continue
        part = decode_range(tmp_path / "a.ecfx", model, start=start, duration=duration)
        np.testing.assert_allclose(part, whole[:, first: first + round(duration * rate)], atol=1e-5, rtol=0)
    data = bytearray((tmp_path / "a.ecfx").read_bytes())
    number = int(rng.integers(header.segments))
    offsets = segment_offsets(data)  # parity segments among them, one after every 2
    data[offsets[number + number // 2 + 1] - 1] ^= 0xFF  # the segment's last byte, even in a one-frame segment
    (tmp_path / "a.ecfx").write_bytes(bytes(data))
    repaired: list[int] = []
    np.testing.assert_array_equal(decode_range(tmp_path / "a.ecfx", model, repaired=repaired), whole)
    assert repaired == [number]
