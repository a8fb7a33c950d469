"""Stereo on a mono model at the bandwidth asked for (`channels="joint"`): the codebooks split between mid and
side, or left and right, recorded in the version 3 header and honoured by every reader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pedalboard.io import AudioFile

import encodec_fx.compress as compress
from encodec_fx import EncodecConfig, EncodecModel
from encodec_fx.compress import (
    check_archive_codes,
    compress_file,
    decode_range,
    decompress_file,
    split_candidates,
    transcode_file,
)
from entropy.archive import ArchiveHeader, ArchiveReader, ArchiveWriter
from entropy.coding import StaticModel, decode_many
from entropy.describe import describe_archive
from entropy.lm import EntropyLM, LMConfig, load_lm, save_lm

from conftest import randomize

RATE = 24_000


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("stereo")
    torch.manual_seed(11)  # as conftest.save_tiny_codecs_and_lm: the model must not depend on the tests before
    randomize(EncodecModel(EncodecConfig(num_filters=4)), seed=11).save_pretrained(root / "codec24")
    torch.manual_seed(0)
    save_lm(EntropyLM(LMConfig(n_q=32, dim=32, num_heads=4, num_layers=1, past_context=20)), root / "lm.safetensors")
    n = int(RATE * 7.3)  # 2 segments, an odd length
    rng = np.random.default_rng(3)
    tones = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 800, (2, 1)) * np.arange(n) / RATE)
    left, right = tones[0] + 0.5 * tones[1], 0.5 * tones[0] + tones[1]
    with AudioFile(str(root / "stereo.wav"), "w", samplerate=RATE, num_channels=2) as file:
        file.write((np.stack([left, right]) + 0.01 * rng.standard_normal((2, n))).astype(np.float32))
    with AudioFile(str(root / "mono.wav"), "w", samplerate=RATE, num_channels=1) as file:
        file.write(left[None].astype(np.float32))
    return root


def read(path):
    with AudioFile(str(path)) as file:
        return file.read(file.frames)


def codes_of(path, lm=None):
    """Each stream's codes over the whole file, decoded as the format says: [stream] of [its n_q, frames]."""
    with ArchiveReader(path) as reader:
        header = ArchiveHeader.from_dict(reader.header)
        static = StaticModel.from_bytes(header.static_model) if header.static_model else None
        segments = list(reader)
    streams = []
    for stream, n_q in enumerate(header.stream_codebooks):
        table = None if static is None else StaticModel(static.counts[:n_q])
        rows = decode_many([unit.payloads[stream] for segment in segments for unit in segment.units], n_q,
                           [unit.frames for segment in segments for unit in segment.units], header.coding_mode,
                           lm=lm, static=table)
        streams.append(np.concatenate(rows, axis=-1))
    return header, streams


@pytest.mark.parametrize("split", [("mid-side", [3, 1]), ("left-right", [2, 2])])
@pytest.mark.parametrize("mode", ["raw", "static", "lm"])
def test_a_split_archive_decodes_to_the_model_decode_of_its_streams(files, tmp_path, monkeypatch, split, mode):
    monkeypatch.setattr(compress, "choose_split", lambda model, units, audio: split)
    model, lm = EncodecModel.from_pretrained(files / "codec24"), load_lm(files / "lm.safetensors")
    archive = tmp_path / "s.ecfx"
    # segments of 2.5 s, 3 of them (the range below in the last): the LM codes a group's segments side by side, a
    # frame at a time, so each of the LM's many passes over the archive here takes a segment's frames in steps
    header = compress_file(files / "stereo.wav", archive, model, bandwidth=3.0, model_name="m", mode=mode,
                           lm=lm if mode == "lm" else None, progress=False, segment_seconds=2.5)
    assert (header.stereo, header.stream_codebooks, header.n_q, header.bandwidth) == (*split, max(split[1]), 3.0)
    assert header.segments == 3
    read_back, streams = codes_of(archive, lm)
    assert (read_back.stereo, read_back.stream_codebooks, read_back.n_q) == (header.stereo, split[1], header.n_q)
    assert [codes.shape[0] for codes in streams] == split[1]
    codes_per_second = sum(codes.shape[0] for codes in streams) * model.config.frame_rate
    assert codes_per_second * 10 / 1000 <= 3.0  # the archive's codes (10 bits each) within -b
    payload = describe_archive(archive)["payload_bytes"]
    if mode == "raw":  # 10 bits a code: the codes' kbps, + each payload's 4-byte CRC (an untrained LM codes more)
        assert payload * 8 / (header.audio_length / RATE) / 1000 <= 3.0 + 0.1
    decompress_file(archive, tmp_path / "s.wav", model, lm=lm, progress=False)
    with torch.inference_mode():
        first, second = (model.decode(torch.from_numpy(codes)[None, None], return_dict=False)[0][0, 0].numpy()
                         for codes in streams)
    expected = np.stack([first + second, first - second] if split[0] == "mid-side" else [first, second])
    decoded = read(tmp_path / "s.wav")
    np.testing.assert_allclose(decoded, expected[:, :decoded.shape[-1]], atol=1e-4)
    whole = decode_range(archive, model, lm=lm)  # decompress's output is 16-bit WAV
    np.testing.assert_allclose(whole, decoded, atol=2 / 32768)
    np.testing.assert_allclose(decode_range(archive, model, lm=lm, start=5.5, duration=1.0),
                               whole[:, round(5.5 * RATE): round(6.5 * RATE)], atol=1e-5, rtol=0)
    assert check_archive_codes(archive, lm=lm)[1] == []
    assert describe_archive(archive)["stream_codebooks"] == split[1]


@pytest.fixture(scope="module")
def joint_raw(files, tmp_path_factory):
    """stereo.wav compressed raw at 6 kbps with the defaults (joint: the split measured), once for the tests that
    read it: (its header, its path)."""
    path = tmp_path_factory.mktemp("joint") / "raw.ecfx"
    header = compress_file(files / "stereo.wav", path, EncodecModel.from_pretrained(files / "codec24"), bandwidth=6.0,
                           model_name="m", mode="raw", progress=False)
    return header, path


def test_joint_is_the_default_and_independent_keeps_todays_archives(files, tmp_path, joint_raw):
    model = EncodecModel.from_pretrained(files / "codec24")
    options = dict(model_name="m", mode="raw", progress=False)
    joint, joint_path = joint_raw
    assert joint.stereo in ("mid-side", "left-right") and sum(joint.stream_codebooks) == 8
    assert (joint.stereo, joint.stream_codebooks) in split_candidates(8)
    independent = compress_file(files / "stereo.wav", tmp_path / "i.ecfx", model, bandwidth=6.0,
                                channels="independent", **options)
    assert (independent.stereo, independent.stream_codebooks, independent.n_q) == (None, None, 8)
    doubled = describe_archive(tmp_path / "i.ecfx")["payload_bytes"] / describe_archive(joint_path)["payload_bytes"]
    assert 1.99 < doubled < 2  # raw codes: 16 codebooks a frame against 8, with a 4-byte CRC per payload
    for channels in ("joint", "independent"):  # mono is coded as before either way
        compress_file(files / "mono.wav", tmp_path / f"{channels}.ecfx", model, bandwidth=6.0, channels=channels,
                      **options)
    assert (tmp_path / "joint.ecfx").read_bytes() == (tmp_path / "independent.ecfx").read_bytes()
    with pytest.raises(ValueError, match="channels must be one of joint, independent"):
        compress_file(files / "stereo.wav", tmp_path / "x.ecfx", model, bandwidth=6.0, channels="both", **options)


def test_transcoding_a_split_archive(files, tmp_path, monkeypatch, joint_raw):
    model = EncodecModel.from_pretrained(files / "codec24")
    options = dict(model_name="m", progress=False)
    raw, raw_path = joint_raw
    # the same file at the same bandwidth: the split measured for raw, without measuring it again
    monkeypatch.setattr(compress, "choose_split", lambda model, units, audio: (raw.stereo, raw.stream_codebooks))
    compress_file(files / "stereo.wav", tmp_path / "static.ecfx", model, bandwidth=6.0, mode="static", **options)
    transcode_file(raw_path, tmp_path / "out.ecfx", mode="static", bandwidth=6.0)
    assert (tmp_path / "out.ecfx").read_bytes() == (tmp_path / "static.ecfx").read_bytes()
    with pytest.raises(ValueError, match="^cannot transcode split stereo .* to another bandwidth") as error:
        transcode_file(raw_path, tmp_path / "low.ecfx", bandwidth=3.0)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="^cannot transcode to 12 kbps: the archive holds 6 kbps"):
        transcode_file(raw_path, tmp_path / "high.ecfx", bandwidth=12.0)


def test_the_split_in_the_header(files, tmp_path, monkeypatch):
    monkeypatch.setattr(compress, "choose_split", lambda model, units, audio: ("mid-side", [3, 1]))  # not measured
    model = EncodecModel.from_pretrained(files / "codec24")
    header = compress_file(files / "stereo.wav", tmp_path / "s.ecfx", model, bandwidth=3.0, model_name="m",
                           mode="raw", progress=False)
    with pytest.raises(ValueError, match="version 2 archives cannot hold split stereo"):
        ArchiveWriter(tmp_path / "v2.ecfx", header, version=2)
    assert "stream_codebooks" not in ArchiveHeader.from_dict({**header.to_dict(), "stereo": None,
                                                             "stream_codebooks": None}).to_dict()
    for bad in ({"stream_codebooks": [header.n_q + 1, 1]}, {"stream_codebooks": [1]}, {"stereo": "surround"},
                {"stream_codebooks": [0, header.n_q]}):
        with pytest.raises(ValueError, match="stream_codebooks must be"):
            ArchiveHeader.from_dict({**header.to_dict(), **bad})


@pytest.mark.parametrize("split", [("mid-side", [3, 1]), ("left-right", [2, 2])])
def test_a_file_longer_than_the_measure_codes_only_its_two_streams(files, tmp_path, monkeypatch, split):
    """The split is chosen on the first SPLIT_MEASURE_SECONDS (four streams coded there); the rest of a longer
    file is coded as the two chosen streams only, with the codes of coding those streams directly."""
    measured = []

    def choose(model, units, audio):
        measured.append((audio.shape, sum(unit.codes.shape[-1] for unit in units), units[0].codes.shape[0]))
        return split

    monkeypatch.setattr(compress, "SPLIT_MEASURE_SECONDS", 2.0)
    monkeypatch.setattr(compress, "choose_split", choose)
    model = EncodecModel.from_pretrained(files / "codec24")
    archive = tmp_path / "s.ecfx"
    header = compress_file(files / "stereo.wav", archive, model, bandwidth=3.0, model_name="m", mode="raw",
                           progress=False)
    assert measured == [((2, 2 * RATE), 2 * 75, 4)]  # 2 s of stereo; 150 frames of left, right, mid and side
    assert header.audio_length == read(files / "stereo.wav").shape[-1]
    left, right = read(files / "stereo.wav")
    streams = np.stack([left, right] if split[0] == "left-right" else [(left + right) / 2, (left - right) / 2])
    with torch.inference_mode():
        expected = model.encode(torch.from_numpy(streams)[:, None], bandwidth=3.0).audio_codes[0].numpy()
    _, coded = codes_of(archive)
    for stream, count in enumerate(split[1]):
        np.testing.assert_array_equal(coded[stream], expected[stream, :count])


def test_a_reader_that_understates_its_length_is_still_coded_to_its_end(files, tmp_path, monkeypatch):
    """Whether a file is longer than the measure is found by reading, not from `frames` (an estimate for MP3)."""
    real_reader = compress.model_reader

    class Understated:
        def __init__(self, reader):
            self.reader, self.frames = reader, RATE  # says 1 s; the file holds 7.3

        def read(self, count):
            return self.reader.read(count)

    monkeypatch.setattr(compress, "SPLIT_MEASURE_SECONDS", 2.0)
    monkeypatch.setattr(compress, "model_reader", lambda *args: Understated(real_reader(*args)))
    model = EncodecModel.from_pretrained(files / "codec24")
    compress_file(files / "stereo.wav", tmp_path / "s.ecfx", model, bandwidth=3.0, model_name="m", mode="raw",
                  progress=False)
    _, streams = codes_of(tmp_path / "s.ecfx")
    assert all(codes.shape[-1] == -(-read(files / "stereo.wav").shape[-1] // model.config.hop_length)
               for codes in streams)


@pytest.mark.parametrize("config", [{}, {"chunk_length_s": 1.0, "overlap": 0.01},
                                    {"normalize": True, "chunk_length_s": 1.0, "overlap": 0.01}],
                         ids=["causal", "chunked", "chunked and normalising"])
def test_the_split_is_chosen_as_the_models_own_decode_measures(tmp_path, config):
    """The split is measured (and the archive decoded) as the model's own whole-file encode and decode
    would: a chunked model decodes chunk by chunk, a normalising one each chunk with its loudness scale."""
    from encodec_fx.compress import _stereo_streams, _to_left_right
    from encodec_fx.train.losses import MultiScaleMelLoss
    model = randomize(EncodecModel(EncodecConfig(num_filters=4, **config)), seed=5)
    n = int(RATE * 3.3)
    rng = np.random.default_rng(8)
    with AudioFile(str(tmp_path / "in.wav"), "w", samplerate=RATE, num_channels=2) as file:
        file.write((np.array([[0.2], [0.05]]) * rng.standard_normal((2, n))).astype(np.float32))
    audio = read(tmp_path / "in.wav")  # as the 16-bit file holds it
    header = compress_file(tmp_path / "in.wav", tmp_path / "s.ecfx", model, bandwidth=6.0, model_name="m",
                           mode="raw", progress=False)
    with torch.inference_mode():
        encoded = model.encode(torch.from_numpy(_stereo_streams(audio)), bandwidth=6.0)

        def decoded(row, codebooks):
            return model.decode(encoded.audio_codes[:, row: row + 1, :codebooks],
                                [None if scale is None else scale[row: row + 1] for scale in encoded.audio_scales],
                                return_dict=False)[0][0, 0, :n]

        def estimate(split):
            first, second = (decoded(row, count) for row, count in zip(compress._JOINT_STREAMS[split[0]], split[1]))
            return torch.stack(_to_left_right(split[0], first, second))

        mel = MultiScaleMelLoss(RATE)
        distances = {split[0] + str(split[1]): float(mel(estimate(split)[:, None], torch.from_numpy(audio)[:, None]))
                     for split in split_candidates(8)}
        chosen = (header.stereo, header.stream_codebooks)
        assert distances[chosen[0] + str(chosen[1])] == pytest.approx(min(distances.values()), rel=1e-5)
        np.testing.assert_allclose(decode_range(tmp_path / "s.ecfx", model), estimate(chosen).numpy(), atol=1e-5)
