"""Archives re-coded without their audio (transcode), decoded by time range, and repaired from parity, through
the library and the command line."""

from __future__ import annotations

import numpy as np
import pytest
from pedalboard.io import AudioFile

from encodec_fx import EncodecConfig, EncodecModel
from encodec_fx.cli import main
from encodec_fx.compress import compress_file, decode_range, decompress_file, segment_geometry, transcode_file
from encodec_fx.stream import default_frames_per_step
from entropy.archive import ArchiveReader

from conftest import save_tiny_codecs_and_lm
from test_compress import flip_byte_in_segment, segment_offsets


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("transcode")
    save_tiny_codecs_and_lm(root)
    rate, n = 44_100, int(44_100 * 13.3)  # stereo at another rate than the models', an odd length: 3 segments
    rng = np.random.default_rng(1)
    audio = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 800, (2, 1)) * np.arange(n) / rate)
    with AudioFile(str(root / "in.wav"), "w", samplerate=rate, num_channels=2) as file:
        file.write((audio + 0.02 * rng.standard_normal((2, n))).astype(np.float32))
    return root


@pytest.fixture
def fixed_split(monkeypatch):
    """Split stereo (a mono model's default) as left and right halves of the codebooks, the split the measure
    picks for in.wav at every bandwidth here (two unrelated tones), without measuring it: for tests of what
    comes after the choice (time ranges, coding modes), where the measure, the decode of every candidate and its
    multi-scale mel distance, took 4 of every 5 seconds of coding the file. The choice is tested in
    tests/test_stereo_split.py, and test_range_from_the_command_line... measures it here."""
    import encodec_fx.compress
    monkeypatch.setattr(encodec_fx.compress, "choose_split", lambda model, units, audio: (
        "left-right", [units[0].codes.shape[1] - units[0].codes.shape[1] // 2, units[0].codes.shape[1] // 2]))


def models(files, codec):
    from entropy.lm import load_lm
    return EncodecModel.from_pretrained(files / codec), load_lm(files / "lm.safetensors")


@pytest.mark.parametrize("codec, mode", [("codec24", "raw"), ("codec24", "static"), ("codec24", "lm"),
                                         ("codec24", "auto"), ("codec48", "static"), ("codec48", "lm")])
def test_transcoding_to_a_lower_bandwidth_is_compressing_at_it(files, tmp_path, codec, mode):
    model, lm = models(files, codec)
    high, low = model.config.target_bandwidths[2], model.config.target_bandwidths[0]
    options = dict(model_name=codec, mode=mode, lm=lm if mode in ("lm", "auto") else None, progress=False, parity=2,
                   channels="independent")  # split stereo (joint) is refused: tests/test_stereo_split.py
    header = compress_file(files / "in.wav", tmp_path / "high.ecfx", model, bandwidth=high, **options)
    compress_file(files / "in.wav", tmp_path / "low.ecfx", model, bandwidth=low, **options)
    transcode_file(tmp_path / "high.ecfx", tmp_path / "out.ecfx", bandwidth=low, mode=mode, lm=options["lm"],
                   source_lm=lm if header.coding_mode == "lm" else None)
    assert (tmp_path / "out.ecfx").read_bytes() == (tmp_path / "low.ecfx").read_bytes()


@pytest.fixture(scope="module")
def raw_archive(files, tmp_path_factory):
    """in.wav coded by codec24 at 6 kbps, raw, each channel on its own, once for the module."""
    model, _ = models(files, "codec24")
    path = tmp_path_factory.mktemp("raw") / "high.ecfx"
    compress_file(files / "in.wav", path, model, bandwidth=6.0, model_name="m", mode="raw", progress=False,
                  channels="independent")
    return path


@pytest.mark.parametrize("bandwidth", [np.float32(1.5), np.int64(3)])
def test_a_numpy_bandwidth_transcodes_as_the_number(files, tmp_path, raw_archive, bandwidth):
    """compress_file takes numpy's numbers; transcoding refused all but float64 as "not a whole number of
    codebooks"."""
    transcode_file(raw_archive, tmp_path / "number.ecfx", bandwidth=float(bandwidth))
    transcode_file(raw_archive, tmp_path / "numpy.ecfx", bandwidth=bandwidth)
    assert (tmp_path / "numpy.ecfx").read_bytes() == (tmp_path / "number.ecfx").read_bytes()


def test_short_segments_transcode_as_they_compress(files, tmp_path):
    model, lm = models(files, "codec24")
    options = dict(model_name="m", mode="lm", lm=lm, progress=False, channels="independent", segment_seconds=0.5)
    compress_file(files / "in.wav", tmp_path / "high.ecfx", model, bandwidth=6.0, **options)
    low = compress_file(files / "in.wav", tmp_path / "low.ecfx", model, bandwidth=1.5, **options)
    assert low.segments == 27 and low.segment_frames == 38
    transcode_file(tmp_path / "high.ecfx", tmp_path / "out.ecfx", bandwidth=1.5, mode="lm", lm=lm, source_lm=lm)
    assert (tmp_path / "out.ecfx").read_bytes() == (tmp_path / "low.ecfx").read_bytes()


@pytest.mark.parametrize("seconds", ["0", "0.0999", "nan", "60.001"])
@pytest.mark.parametrize("many", [False, True])
def test_a_segment_length_out_of_range_is_refused_in_one_line(files, tmp_path, capsys, seconds, many):
    output = ["-o", str(tmp_path / "out")] if many else [str(tmp_path / "a.ecfx")]
    assert main(["compress", str(files / "in.wav"), *output, "--model", str(files / "codec24"),
                 "--segment-seconds", seconds]) == 1
    error = capsys.readouterr().err
    assert f"segment_seconds must be from 0.1 to 60 seconds, got {float(seconds)!r}" in error
    assert error.count("\n") == 1
    assert not (tmp_path / "a.ecfx").exists() and not (tmp_path / "out").exists()


def test_segment_lengths_round_to_whole_frames_or_chunks(files):
    config24, config48 = (EncodecModel.from_pretrained(files / codec).config for codec in ("codec24", "codec48"))
    assert segment_geometry(config24, 55 / 75) == (1, 55, 55 / 75)  # 55 / 75 * 75 is 54.99999…
    assert segment_geometry(config24, 0.1) == (1, 8, 8 / 75)
    assert segment_geometry(config48, 60.0) == (61, 150, 61 * 47_520 / 48_000)
    assert segment_geometry(config48, 0.1) == (1, 150, 0.99)


def test_segments_too_large_for_an_archive_are_refused_before_coding(files, tmp_path, monkeypatch):
    import encodec_fx.compress
    monkeypatch.setattr(encodec_fx.compress, "MAX_SEGMENT_CODES", 2_000)
    model, _ = models(files, "codec24")
    with pytest.raises(ValueError, match=r"segments of 2.50667 s would hold 188 frames × 8 codebooks × 2 channels, "
                                         r"more than the 2000 codes an archive segment holds: use segment_seconds of "
                                         r"at most 1.67 for this file"):
        compress_file(files / "in.wav", tmp_path / "a.ecfx", model, bandwidth=6.0, model_name="m", mode="raw",
                      progress=False, segment_seconds=2.5, channels="independent")
    assert not (tmp_path / "a.ecfx").exists()


def test_a_range_just_after_a_lost_segment_is_the_recovered_whole_there(tmp_path):
    """The decoder starts afresh after a lost segment, and its first output waits for a step of frames
    (`default_frames_per_step`): a range that ends within them must decode past its end as the whole decode
    does. A codec of 37.5 frames a second, whose shortest segments (0.1 s) hold 4 frames, fewer than its step;
    at the model's rate, so that no resampler margin hides it."""
    from conftest import randomize
    model = randomize(EncodecModel(EncodecConfig(num_filters=4, upsampling_ratios=[8, 5, 4, 4])), seed=11)
    assert default_frames_per_step(model) > 4
    rng = np.random.default_rng(3)
    with AudioFile(str(tmp_path / "in.wav"), "w", samplerate=24_000, num_channels=1) as file:
        file.write((0.1 * rng.standard_normal((1, 72_000))).astype(np.float32))
    compress_file(tmp_path / "in.wav", tmp_path / "a.ecfx", model, bandwidth=6.0, model_name="m", mode="raw",
                  progress=False, segment_seconds=0.1)
    flip_byte_in_segment(tmp_path / "a.ecfx", 20)  # frames 80-83 lost: the decoder restarts at frame 84
    whole = decode_range(tmp_path / "a.ecfx", model, recover=True)
    first, end = 60 * 640, 86 * 640  # to 2 frames after the restart
    part = decode_range(tmp_path / "a.ecfx", model, start=first / 24_000, duration=(end - first) / 24_000,
                        recover=True)
    np.testing.assert_allclose(part, whole[:, first:end], atol=1e-5, rtol=0)


def test_transcoding_the_coding_mode_and_its_refusals(files, tmp_path, capsys, fixed_split):
    model, lm = models(files, "codec24")
    compress_file(files / "in.wav", tmp_path / "lm.ecfx", model, bandwidth=3.0, model_name="m", mode="lm", lm=lm,
                  lm_name=str(files / "lm.safetensors"), progress=False)
    compress_file(files / "in.wav", tmp_path / "raw.ecfx", model, bandwidth=3.0, model_name="m", mode="raw",
                  progress=False)
    assert main(["transcode", str(tmp_path / "lm.ecfx"), str(tmp_path / "out.ecfx"), "--coding", "raw"]) == 0
    assert (tmp_path / "out.ecfx").read_bytes() == (tmp_path / "raw.ecfx").read_bytes()
    capsys.readouterr()
    for arguments, message in [(["-b", "6"], "cannot transcode to 6 kbps: the archive holds 3 kbps"),
                               (["-b", "1"], "bandwidth 1.0 kbps is not a whole number of codebooks of 0.75 kbps"),
                               (["--coding", "lm"], "coding mode 'lm' needs an LM")]:
        assert main(["transcode", str(tmp_path / "raw.ecfx"), str(tmp_path / "bad.ecfx"), *arguments]) == 1
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1
    assert not (tmp_path / "bad.ecfx").exists()


@pytest.mark.parametrize("codec, segment_seconds, segments, against_decompress", [
    ("codec24", 5.0, 3, False), ("codec48", 5.0, 3, False), ("codec24", 1.25, 11, False),
    ("codec48", 1.25, 14, True), ("codec24", 0.1, 125, True)])
def test_a_time_range_is_the_whole_decode_there(files, tmp_path, fixed_split, codec, segment_seconds, segments,
                                                against_decompress):
    model, lm = models(files, codec)
    header = compress_file(files / "in.wav", tmp_path / "a.ecfx", model, bandwidth=6.0, model_name=codec, mode="lm",
                           lm=lm, progress=False, segment_seconds=segment_seconds)
    assert header.segments == segments  # 13.3 s: 1.25 s is 94 frames at 75 Hz, one 0.99 s chunk at 48 kHz; 0.1 s 8
    # frames, whose 125 segments a range decodes in LM batches of the writer's groups (16 segments of stereo)
    whole = decode_range(tmp_path / "a.ecfx", model, lm=lm)
    if against_decompress:  # once a codec (its resampling and chunking), on its archive of the most segments
        decompress_file(tmp_path / "a.ecfx", tmp_path / "whole.wav", model, lm=lm, progress=False)
        with AudioFile(str(tmp_path / "whole.wav")) as file:  # the Python API's decode is decompress's (16-bit WAV)
            np.testing.assert_allclose(whole, file.read(file.frames), atol=2 / 32768)  # conversion errs ≤ 1.4 steps
    for start, duration in [(0.0, 1.0), (3.3, 4.0), (7.77, 10.0), (13.29, 5.0)]:
        part = decode_range(tmp_path / "a.ecfx", model, lm=lm, start=start, duration=duration)
        first = round(start * 44_100)
        expected = whole[:, first: first + round(duration * 44_100)]
        assert part.shape == expected.shape  # cut at the end of the audio
        np.testing.assert_allclose(part, expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="start 13.4 s is past the end of the archive's audio"):
        decode_range(tmp_path / "a.ecfx", model, lm=lm, start=13.4)


def test_range_from_the_command_line_and_parity_repair_reported(files, tmp_path, capsys):
    archive = tmp_path / "p.ecfx"
    assert main(["compress", str(files / "in.wav"), str(archive), "--model", str(files / "codec24"), "--coding",
                 "static", "--parity", "2"]) == 0
    flip_byte_in_segment_v3(archive, 1)
    capsys.readouterr()
    assert main(["decompress", str(archive), str(tmp_path / "r.wav"), "--start", "4", "--duration", "2"]) == 0
    streams = capsys.readouterr()
    assert "repaired segment(s) 1 from parity" in streams.err
    with AudioFile(str(tmp_path / "r.wav")) as file:
        assert file.frames == 2 * 44_100
    assert main(["verify", str(archive)]) == 1
    assert "1 of 3 segment(s) damaged, all 1 repairable from parity (1)" in capsys.readouterr().out
    assert main(["transcode", str(archive), str(tmp_path / "fixed.ecfx")]) == 0  # writes it whole again
    assert main(["verify", str(tmp_path / "fixed.ecfx")]) == 0
    flip_byte_in_segment_v3(archive, 0)  # two in one group: lost
    capsys.readouterr()
    assert main(["verify", str(archive)]) == 1
    assert "2 of 3 segment(s) damaged and lost" in capsys.readouterr().out


def flip_byte_in_segment_v3(path, number, parity=2):
    """Flip a byte of data segment `number` in an archive with a parity segment after every `parity`."""
    data = bytearray(path.read_bytes())
    data[segment_offsets(data)[number + number // parity] + 12] ^= 0xFF
    path.write_bytes(bytes(data))


def test_transcode_many_archives_into_a_folder(files, tmp_path, capsys):
    model, _ = models(files, "codec24")
    (tmp_path / "in").mkdir()
    compress_file(files / "in.wav", tmp_path / "in" / "a.ecfx", model, bandwidth=3.0, model_name="m", mode="raw",
                  progress=False, channels="independent")
    (tmp_path / "in" / "b.ecfx").write_bytes((tmp_path / "in" / "a.ecfx").read_bytes())  # what a second compress writes
    assert main(["transcode", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-b", "1.5", "--coding", "static",
                 "--workers", "1", "--quiet"]) == 0
    for name in ("a", "b"):
        with ArchiveReader(tmp_path / "out" / f"{name}.ecfx") as reader:
            assert reader.header["n_q"] == 2 and reader.header["coding_mode"] == "static"


assert flip_byte_in_segment  # the version 3 layout helpers above build on test_compress's
