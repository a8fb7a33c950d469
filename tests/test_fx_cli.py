"""`encodec-fx fx` and `process_file`: a file streamed through a chain, aligned, exact length, atomic."""

from __future__ import annotations

import numpy as np
import pedalboard
import pytest
import torch
from pedalboard.io import AudioFile
from scipy.io import wavfile

from encodec_fx import pretrained
from encodec_fx.cli import main
from encodec_fx.effects import Chain, EncodecCompressor, spec
from encodec_fx.effects.files import process_file
from encodec_fx.effects.spec import MAX_STAGES, parse_chain

from effects_models import noise, tiny_model

RATE = 44100


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only add overhead on shared cores
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("model")
    tiny_model("24khz").save_pretrained(directory)
    return directory


def write(path, audio: np.ndarray, rate: int = RATE) -> None:
    with AudioFile(str(path), "w", samplerate=rate, num_channels=audio.shape[0], bit_depth=32) as file:
        file.write(audio)


def read(path) -> np.ndarray:
    with AudioFile(str(path)) as file:
        return file.read(file.frames)


def batch_with_flush(chain: Chain, audio: np.ndarray, rate: int = RATE) -> np.ndarray:
    """What the chain gives in batch for the input and the silence that flushes it, cut to the input."""
    padded = np.concatenate([audio, np.zeros((audio.shape[0], 20000), np.float32)], axis=-1)
    return chain(padded, rate)[:, : audio.shape[-1]]


def test_fx_output_lines_up_with_the_input_and_has_its_length(tmp_path, model_dir, capsys):
    audio = noise(2, 20000)
    write(tmp_path / "in.wav", audio)
    spec = "highpass(cutoff_frequency_hz=80) | encodec(bandwidth=1.5) | gain(gain_db=-1)"
    assert main(["fx", str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), "--chain", spec,
                 "--model", str(model_dir), "--block-size", "1024", "--quiet"]) == 0
    out = read(tmp_path / "out.wav")
    assert out.shape == audio.shape
    expected = batch_with_flush(parse_chain(spec, default_model=tiny_model("24khz")), audio)
    np.testing.assert_allclose(out, expected, atol=1e-4)
    assert "latency" in capsys.readouterr().out
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.wav", "out.wav"]


def test_native_latency_that_no_plugin_reports_is_flushed_too(tmp_path):
    audio = noise(1, 30000)
    write(tmp_path / "in.wav", audio)
    chain = Chain([pedalboard.Gain(1), pedalboard.MP3Compressor()])
    process_file(tmp_path / "in.wav", tmp_path / "out.wav", chain, block_size=4096)
    out = read(tmp_path / "out.wav")
    assert out.shape == audio.shape
    np.testing.assert_allclose(out, batch_with_flush(chain, audio), atol=1e-6)


@pytest.mark.parametrize("channels, length", [(2, 1), (2, 2), (1, 1), (2, 3)])
def test_files_no_longer_than_their_channel_count(tmp_path, model_dir, channels, length):
    """A first block of at most as many samples as channels reads as another layout, or as none:
    the file's layout is fixed before its first block."""
    audio = noise(channels, length)
    wavfile.write(tmp_path / "in.wav", RATE, audio.T)  # pedalboard cannot write a square array
    spec = "highpass(cutoff_frequency_hz=80) | encodec(bandwidth=1.5) | gain(gain_db=-1)"
    assert main(["fx", str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), "--chain", spec,
                 "--model", str(model_dir), "--quiet"]) == 0
    out = read(tmp_path / "out.wav")
    assert out.shape == audio.shape
    np.testing.assert_allclose(out, batch_with_flush(parse_chain(spec, default_model=tiny_model("24khz")), audio),
                               atol=1e-4)


@pytest.mark.parametrize("block_size", [1, 2])
def test_blocks_no_longer_than_the_channel_count(tmp_path, block_size):
    audio = noise(2, 300)
    write(tmp_path / "in.wav", audio)
    chain = Chain([pedalboard.HighpassFilter(80), pedalboard.Gain(-1)])
    process_file(tmp_path / "in.wav", tmp_path / "out.wav", chain, block_size=block_size)
    np.testing.assert_allclose(read(tmp_path / "out.wav"), batch_with_flush(chain, audio), atol=1e-6)


@pytest.mark.parametrize("block_size", [0, 512.5, "512", True, 10**9])
def test_block_size_must_be_a_positive_integer(tmp_path, block_size):
    write(tmp_path / "in.wav", noise(2, 300))
    with pytest.raises(ValueError, match=r"block_size must be an integer from 1 to 4194304 samples"):
        process_file(tmp_path / "in.wav", tmp_path / "out.wav", pedalboard.Gain(-1), block_size=block_size)
    assert not (tmp_path / "out.wav").exists()


def test_the_input_is_never_the_output_and_an_empty_input_is_refused(tmp_path, capsys):
    audio = noise(2, 3000)
    write(tmp_path / "in.wav", audio)
    assert main(["fx", str(tmp_path / "in.wav"), str(tmp_path / "in.wav"), "--chain", "gain(-1)", "--force",
                 "--quiet"]) == 1
    assert f"cannot write {tmp_path / 'in.wav'}: it is the input file" in capsys.readouterr().err
    np.testing.assert_array_equal(read(tmp_path / "in.wav"), audio)
    write(tmp_path / "empty.wav", np.zeros((2, 0), np.float32))
    assert main(["fx", str(tmp_path / "empty.wav"), str(tmp_path / "out.wav"), "--chain", "gain(-1)", "--quiet"]) == 1
    assert "empty.wav holds no audio samples" in capsys.readouterr().err
    assert not (tmp_path / "out.wav").exists()


def test_a_chain_that_overflows_writes_nothing(tmp_path, capsys):
    write(tmp_path / "in.wav", noise(2, 20000))
    overflowing = " | ".join(["gain(gain_db=60)"] * 20)  # each stage in range, 1200 dB in all
    assert main(["fx", str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), "--chain", overflowing, "--quiet"]) == 1
    assert "the chain gave NaN or infinite samples 0.00 s into the output; nothing was written" \
        in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.wav"]


def test_process_file_takes_a_single_effect(tmp_path):
    audio = noise(2, 9000)
    write(tmp_path / "in.wav", audio, 24000)
    compressor = EncodecCompressor(6.0, model=tiny_model("24khz"))
    process_file(tmp_path / "in.wav", tmp_path / "out.wav", compressor, block_size=500)
    np.testing.assert_allclose(read(tmp_path / "out.wav"), batch_with_flush(compressor, audio, 24000)[:, :9000],
                               atol=1e-4)


def test_existing_output_needs_force(tmp_path, capsys):
    write(tmp_path / "in.wav", noise(2, 5000))
    write(tmp_path / "out.wav", np.zeros((1, 10), np.float32))
    arguments = ["fx", str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), "--chain", "gain(6)", "--quiet"]
    assert main(arguments) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--force" in error
    assert read(tmp_path / "out.wav").shape == (1, 10)
    assert main(arguments + ["--force"]) == 0
    np.testing.assert_allclose(read(tmp_path / "out.wav"), read(tmp_path / "in.wav") * 10 ** (6 / 20), rtol=1e-5)


@pytest.mark.parametrize("spec, message", [
    ("revrb", r"stage 0 \(revrb\): unknown effect 'revrb'; accepted: encodec, .*reverb"),
    ("gain(1) | reverb(room_sise=0.3)", r"stage 1 \(reverb\(room_sise=0.3\)\): .*Reverb accepts: .*room_size"),
    ("gain(gain_db=__import__('os').getcwd())", r"stage 0 .*parameters must be literals"),
    ("gain(1) reverb", "cannot parse chain"),
    ("gain | truncate(2)", r"stage 1 \(CodebookTruncation\) takes codes"),
    ("truncate(num_codebooks=2)", "must take and give audio"),
    ("convolution('no-such-impulse.wav')", r"stage 0 .*: impulse_response_filename='no-such-impulse.wav' cannot be "
                                           r"read \(No such file or directory\); accepted: an audio file$"),
    ("reverb(room_size=0.3, room_size=0.4)", r"stage 0 \(reverb\(room_size=0.3, room_size=0.4\)\): "
                                             "room_size given twice$"),
    ("gain(1) | encodec(bandwidth=6, bandwidth=3)", r"stage 1 \(encodec\(bandwidth=6, bandwidth=3\)\): "
                                                    "bandwidth given twice$"),
    (" | ".join(["gain"] * 3000), "cannot parse chain: too long or too deeply nested "
                                  rf"\(at most {MAX_STAGES} stages\)$"),
    ("gain(" + "-" * 100000 + "1)", "cannot parse chain: too long or too deeply nested"),  # a MemoryError in the parser
])
def test_bad_chains_are_one_line_errors_and_write_nothing(tmp_path, capsys, spec, message):
    write(tmp_path / "in.wav", noise(2, 5000))
    assert main(["fx", str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), "--chain", spec, "--quiet"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("encodec-fx fx: error: ")
    assert __import__("re").search(message, error)
    assert [path.name for path in tmp_path.iterdir()] == ["in.wav"]


def test_codec_stage_without_the_default_models_weights_names_the_stage(monkeypatch, tmp_path):
    monkeypatch.setattr(pretrained, "ROOT", tmp_path)  # a copy of the package without shipped weights
    with pytest.raises(ValueError, match=r"^stage 1 \(encodec\(bandwidth=6.0\)\): shipped model 'encodec-fx-24khz' "
                                         "is missing config.json and model.safetensors"):
        parse_chain("gain(1) | encodec(bandwidth=6.0)")


def test_a_model_that_cannot_be_loaded_is_a_one_line_error(tmp_path, capsys):
    write(tmp_path / "in.wav", noise(2, 5000))
    spec_text = f"encodec(bandwidth=6.0, model={str(tmp_path / 'none')!r})"
    assert main(["fx", str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), "--chain", spec_text, "--quiet"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"encodec-fx fx: error: stage 0 ({spec_text}): no model at ")
    assert [path.name for path in tmp_path.iterdir()] == ["in.wav"]


@pytest.mark.parametrize("model", [5, ["a"]])
def test_a_model_that_is_not_a_source_lists_the_sources(model):
    with pytest.raises(ValueError, match=rf"^stage 0 \(encodec\(model=.*\)\): model must be a path, a shipped model "
                                         rf"name \(.*{pretrained.DEFAULT_MODEL}.*\), a hub id .* EncodecModel, got"):
        parse_chain(f"encodec(model={model!r})")


def test_the_default_model_may_be_a_path_object(model_dir):
    assert parse_chain("encodec(bandwidth=3.0)", default_model=model_dir)[0].model.config == tiny_model("24khz").config


def test_at_most_max_stages():
    assert len(parse_chain(" | ".join(["gain"] * MAX_STAGES))) == MAX_STAGES
    with pytest.raises(ValueError, match=rf"^chain has {MAX_STAGES + 1} stages; at most {MAX_STAGES} are accepted$"):
        parse_chain(" | ".join(["gain"] * (MAX_STAGES + 1)))


@pytest.mark.parametrize("text, message", [
    ("encodec(bandwidth=7)", r"stage 0 \(encodec\(bandwidth=7\)\): bandwidth 7 kbps is not supported by this model; "
                             r"choose one of \[1.5, 3.0, 6.0, 12.0, 24.0\]; EncodecCompressor accepts: bandwidth"),
    ("gain(1) | encode(bandwidth=7) | decode", r"stage 1 \(encode\(bandwidth=7\)\): bandwidth 7 kbps"),
    ("encode | truncate(0) | decode", r"stage 1 \(truncate\(0\)\): CodebookTruncation.num_codebooks must be an "
                                      "integer of at least 1, got 0"),
    ("encode | packetloss(rate=2) | decode", r"stage 1 \(packetloss\(rate=2\)\): PacketLoss.rate must be a "
                                             "probability"),
    ("encode | packetloss(seed=1.5) | decode", r"stage 1 .*: PacketLoss.seed must be None or an integer"),
    ("encode | substitute(rate=-1) | decode", r"stage 1 .*: TokenSubstitution.rate must be a probability"),
    ("encode | schedule([]) | decode", r"stage 1 \(schedule\(\[\]\)\): BandwidthSchedule.schedule must be a non-empty"),
    # parameters that depend on the codes: checked against what the encoder before them gives
    ("encode(bandwidth=6) | truncate(100) | decode", r"stage 1 \(truncate\(100\)\): CodebookTruncation.num_codebooks "
                                                     r"must be an integer from 1 to 8 \(the codes hold 8 codebooks\)"),
    ("encode(bandwidth=6) | truncate(2) | schedule([(0, 3)]) | decode",
     r"stage 2 .*: BandwidthSchedule.schedule asks for 3.0 kbps, but the codes hold 1.5 kbps"),
    ("encode | substitute(0.1) | schedule([(0, 5)]) | decode", r"stage 2 .*: BandwidthSchedule.schedule has 5.0 kbps, "
                                                               r"but the codes' model takes kbps in \[1.5, "),
])
def test_bad_parameters_are_refused_when_the_chain_is_parsed(text, message):
    with pytest.raises(ValueError, match="^" + message):
        parse_chain(text, default_model=tiny_model("24khz"))


def test_checking_token_stages_at_parse_time_draws_no_damage():
    chain = parse_chain("encode | packetloss(rate=0.5, concealment='repeat') | substitute(rate=0.5) | decode",
                        default_model=tiny_model("24khz"))
    assert chain[1]._drawn_seed is None and chain[2]._drawn_seed is None  # the check left no seed behind


def test_codec_stages_without_a_model_share_the_default_one(monkeypatch):
    loaded = []
    monkeypatch.setattr(spec, "load_effect_model",
                        lambda source, where, device: loaded.append((source, device)) or tiny_model("24khz"))
    chain = parse_chain("encode(bandwidth=3.0) | truncate(2) | decode | encodec(bandwidth=1.5)")
    assert loaded == [(None, None)]
    assert chain[0].model is chain[2].model is chain[3].model is tiny_model("24khz")


def test_a_failure_while_streaming_leaves_no_partial_output(tmp_path, model_dir, capsys):
    write(tmp_path / "in.wav", noise(2, 30000))
    other = tmp_path / "other"
    tiny_model("48khz").save_pretrained(other)
    spec = f"encode(bandwidth=6.0) | truncate(num_codebooks=2) | decode(model={str(other)!r})"  # not the codes' model
    assert main(["fx", str(tmp_path / "in.wav"), str(tmp_path / "out.wav"), "--chain", spec,
                 "--model", str(model_dir), "--quiet"]) == 1
    assert "made by a model with another configuration" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.wav", "other"]


def test_missing_input_is_a_one_line_error(tmp_path, capsys):
    assert main(["fx", str(tmp_path / "none.wav"), str(tmp_path / "out.wav"), "--chain", "gain(1)", "--quiet"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no audio file" in error
    assert not (tmp_path / "out.wav").exists()


def test_spec_loads_each_model_path_once(model_dir):
    chain = parse_chain(f"encode(bandwidth=3.0, model={str(model_dir)!r}) | truncate(2) | "
                        f"decode(model={str(model_dir)!r}) | mp3(vbr_quality=4) | highpass(100)")
    assert chain[0].model is chain[2].model
    assert isinstance(chain[3], pedalboard.MP3Compressor) and chain[3].vbr_quality == 4
    assert isinstance(chain[4], pedalboard.HighpassFilter) and chain[4].cutoff_frequency_hz == 100
