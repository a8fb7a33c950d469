"""Reproductions of bugs in `compress --segment-seconds` (commit 95732d9), found by probing; each fails today."""

from __future__ import annotations

import numpy as np
import pytest
from pedalboard.io import AudioFile

from encodec_fx import EncodecConfig, EncodecModel
from encodec_fx.compress import compress_file, decode_range, segment_geometry
from entropy.archive import ArchiveHeader, ArchiveReader

from conftest import randomize, save_tiny_codecs_and_lm


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe_segments")
    save_tiny_codecs_and_lm(root)
    rng = np.random.default_rng(1)
    n = 24_000 * 3
    audio = 0.2 * np.sin(2 * np.pi * 300 * np.arange(n) / 24_000) + 0.02 * rng.standard_normal(n)
    with AudioFile(str(root / "in.wav"), "w", samplerate=24_000, num_channels=1) as file:
        file.write(audio[None].astype(np.float32))
    return root


@pytest.mark.parametrize("segment_frames", [1, 3, 6])
def test_a_range_at_the_start_of_short_segments_is_the_whole_decode(files, tmp_path, segment_frames):
    """Segments of fewer than 7 frames (the causal decoder's start: its reflect padding reads ahead there):
    a range that ends within the first 7 frames decodes only the segments it needs, and the decoder's
    flush then gives other samples than the whole decode (1.5e-3 off here; 0.015 on a 0.27 peak with the
    shipped codec through `decompress --start 0 --duration 0.05`). Default 5 s segments always decode a
    whole first segment, so never showed it."""
    model = EncodecModel.from_pretrained(files / "codec24")
    compress_file(files / "in.wav", tmp_path / "a.ecfx", model, bandwidth=3.0, model_name="m", mode="raw",
                  progress=False, segment_seconds=(segment_frames + 0.5) / 75)
    whole = decode_range(tmp_path / "a.ecfx", model)
    part = decode_range(tmp_path / "a.ecfx", model, start=0.0, duration=0.05)
    np.testing.assert_allclose(part, whole[:, :part.shape[-1]], atol=1e-5, rtol=0)


def test_the_segment_length_an_archive_reports_gives_its_segments_again(files, tmp_path):
    """`int(seconds * frame_rate)` truncates 55/75 * 75 = 54.99999999999999 to 54 frames (225 of the 4500
    whole-frame lengths up to 60 s lose a frame this way): compressing at the length an archive reports
    (`header.segment_seconds`) makes other segments, so it is not 'the same segment length' that
    transcode's byte-identity is stated for."""
    model = EncodecModel.from_pretrained(files / "codec24")
    compress_file(files / "in.wav", tmp_path / "a.ecfx", model, bandwidth=1.5, model_name="m", mode="raw",
                  progress=False, segment_seconds=0.74)
    with ArchiveReader(tmp_path / "a.ecfx") as reader:
        first = ArchiveHeader.from_dict(reader.header)
    assert first.segment_frames == 55
    again = compress_file(files / "in.wav", tmp_path / "b.ecfx", model, bandwidth=1.5, model_name="m", mode="raw",
                          progress=False, segment_seconds=first.segment_seconds)
    assert again.segment_frames == first.segment_frames


def test_the_shortest_segment_length_the_refusal_names_is_accepted(files):
    """The refusal says 'from 0.01333 (one frame of this codec)', but 0.01333 (and 0.013333) is refused."""
    model = EncodecModel.from_pretrained(files / "codec24")
    assert segment_geometry(model.config, 0.01333)[1] == 1


def test_one_frame_segments_on_a_codec_whose_hop_divides_its_rate():
    """22.05 kHz with a hop of 225 (98 frames a second): the shortest length accepted, one hop, makes
    int(225 / 22050 * 98) = int(0.9999999999999999) = 0 frames per segment; compress_file then codes the
    whole file (code_units takes 0 frames as 'the default', 5 s) and fails at the end on the header
    ('segment_seconds must be a positive number, got 0.0')."""
    config = EncodecConfig(sampling_rate=22_050, upsampling_ratios=[5, 5, 3, 3], num_filters=4)
    randomize(EncodecModel(config), seed=1)  # a codec that can be built
    assert segment_geometry(config, config.hop_length / config.sampling_rate)[1] == 1
