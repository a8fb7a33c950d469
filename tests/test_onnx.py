"""ONNX export (`encodec_fx.onnx_export`) against the model, run by onnxruntime, for both presets on random weights:
codes equal, audio within 50 dB SNR, the step graphs streaming the whole-input graph's codes and audio."""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import torch

from encodec_fx import EncodecConfig, EncodecModel
from encodec_fx.audio_io import read_audio
from encodec_fx.cli import main

from conftest import randomize

# Found, not imported: onnx and onnxscript take over a second to import, which collection would pay in every test
# worker; the tests import them where they run (the export, `onnx_session`).
for _extra in ("onnxruntime", "onnxscript"):
    if find_spec(_extra) is None:
        pytest.skip(f"needs {_extra} (pip install 'encodec-fx[onnx]')", allow_module_level=True)
from encodec_fx.onnx_export import onnx_session  # noqa: E402  (after the skips: it needs the extra to run)

RECORDING = Path(__file__).parent / "data" / "speech-nl-fillets.flac"
PRESETS = {"24khz": EncodecConfig.encodec_24khz, "48khz": EncodecConfig.encodec_48khz}


def small_model(preset: str) -> EncodecModel:
    """Few filters, one LSTM layer and two bandwidths: the graphs of a full model, exported in seconds."""
    bandwidths = [1.5, 3.0] if preset == "24khz" else [3.0, 6.0]
    torch.manual_seed(0)
    config = PRESETS[preset](num_filters=4, num_lstm_layers=1, target_bandwidths=bandwidths)
    return randomize(EncodecModel(config))


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    reference, other = reference.astype(np.float64), other.astype(np.float64)
    return float(10 * np.log10((reference ** 2).sum() / ((reference - other) ** 2).sum()))


@pytest.fixture(scope="module", params=sorted(PRESETS))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    model = small_model(request.param)
    directory = tmp_path_factory.mktemp(f"onnx-{request.param}")
    if request.param == "24khz":  # through the command, from a model directory
        model.save_pretrained(directory / "model")
        assert main(["export-onnx", str(directory / "model"), str(directory / "graphs")]) == 0
        metadata = json.loads((directory / "graphs" / "metadata.json").read_text())
    else:  # through the library, over an earlier 24 kHz export, from a model in training mode
        (directory / "graphs").mkdir()
        (directory / "graphs" / "encoder_step.onnx").write_bytes(b"an earlier export's step graph")
        model.train()
        metadata = model.export_onnx(directory / "graphs", overwrite=True)
        assert model.training  # the export works on a copy
        model.eval()
        assert sorted(path.name for path in (directory / "graphs").iterdir()) == \
            ["decoder.onnx", "encoder.onnx", "metadata.json"]  # whole, and nothing stale beside it
    audio = read_audio(RECORDING, model.config.sampling_rate).mean(axis=0)
    audio = np.stack([audio] * model.config.audio_channels)[None].astype(np.float32)
    return model, directory / "graphs", metadata, audio


def test_metadata_states_rates_and_codebooks_per_bandwidth(exported):
    model, directory, metadata, _ = exported
    config = model.config
    assert (metadata["sampling_rate"], metadata["audio_channels"], metadata["frame_rate"], metadata["hop_length"]) \
        == (config.sampling_rate, config.audio_channels, config.frame_rate, config.hop_length)
    assert metadata["n_q_per_bandwidth"] == {f"{b:g}": model.num_quantizers_for_bandwidth(b)
                                             for b in config.target_bandwidths}
    assert (metadata["chunk_length"], metadata["chunk_stride"]) == (config.chunk_length, config.chunk_stride)
    graphs = sorted(path.name for path in directory.glob("*.onnx"))
    streams = config.chunk_length is None
    assert graphs == sorted(["encoder.onnx", "decoder.onnx"] + (["encoder_step.onnx", "decoder_step.onnx"] * streams))
    assert ("frames_per_step" in metadata) == streams
    import onnx
    stored = {entry.key: json.loads(entry.value) for entry in onnx.load(str(directory / "decoder.onnx")).metadata_props}
    assert stored == metadata


def test_encoder_graph_gives_our_codes_and_decoder_graph_our_audio(exported):
    model, directory, metadata, audio = exported
    config = model.config
    chunk = audio[..., : config.chunk_length] if config.chunk_length else audio
    encoder, decoder = onnx_session(directory / "encoder.onnx"), onnx_session(directory / "decoder.onnx")
    outputs = encoder.run(None, {"audio": chunk})
    top = config.target_bandwidths[-1]
    with torch.inference_mode():
        codes, scale = model.encode_chunk(torch.from_numpy(chunk), bandwidth=top)
    # onnxruntime's convolutions round differently: a frame may differ where two codewords nearly tie
    equal_frames = (outputs[0] == codes.numpy()).all(axis=1).mean()
    assert equal_frames >= 0.999
    if config.normalize:
        np.testing.assert_allclose(outputs[1], scale.numpy(), rtol=1e-5)
    for bandwidth in config.target_bandwidths:  # any number of codebooks, the first rows of the codes
        n_q = metadata["n_q_per_bandwidth"][f"{bandwidth:g}"]
        feeds = {"codes": codes[:, :n_q].numpy()} | ({"scale": scale.numpy()} if config.normalize else {})
        with torch.inference_mode():
            ours = model.decode_chunk(codes[:, :n_q], scale).numpy()
        assert snr_db(ours, decoder.run(None, feeds)[0]) >= 50


def run_steps(session, first_input: np.ndarray, step: int, states: dict, name: str) -> np.ndarray:
    """A stream through a step graph: zero states, `started` 0, then each call's outputs fed back."""
    state = {key: np.zeros((first_input.shape[0], *shape), np.float32) for key, shape in states.items()}
    started, out = np.zeros(1, np.float32), []
    for start in range(0, first_input.shape[-1], step):
        result = session.run(None, {name: first_input[..., start: start + step], "started": started, **state})
        out.append(result[0])
        started, state = result[1], dict(zip(state, result[2:]))
    return np.concatenate(out, axis=-1)


def test_streaming_through_the_step_graphs_is_the_whole_input_graph(exported):
    model, directory, metadata, audio = exported
    if model.config.chunk_length is not None:  # it streams by chunks: the whole-input graphs are its steps
        assert "frames_per_step" not in metadata and not (directory / "encoder_step.onnx").exists()
        return
    step, frames = metadata["step_samples"], metadata["frames_per_step"]
    usable = audio[..., : audio.shape[-1] // step * step]
    batch = np.concatenate([usable, 0.5 * usable[..., ::-1]])  # two streams at once
    whole_codes = onnx_session(directory / "encoder.onnx").run(None, {"audio": batch})[0]
    codes = run_steps(onnx_session(directory / "encoder_step.onnx"), batch, step, metadata["encoder_states"], "audio")
    np.testing.assert_array_equal(codes, whole_codes)
    whole_audio = onnx_session(directory / "decoder.onnx").run(None, {"codes": whole_codes})[0]
    audio_out = run_steps(onnx_session(directory / "decoder_step.onnx"), whole_codes, frames,
                          metadata["decoder_states"], "codes")
    assert audio_out.shape == whole_audio.shape
    # the same float32 operations on blocks: rounding alone, far below the 50 dB of the graphs against torch
    assert snr_db(whole_audio, audio_out) >= 100


def test_export_refuses_what_it_cannot_write(tmp_path):
    model = small_model("24khz")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        model.export_onnx(tmp_path / "taken")
    with pytest.raises(ValueError, match="frames_per_step must be an integer of at least 7"):
        model.export_onnx(tmp_path / "new", frames_per_step=3)
    with pytest.raises(ValueError, match="leave frames_per_step unset"):
        small_model("48khz").export_onnx(tmp_path / "new", frames_per_step=7)


def test_the_command_names_its_options_in_errors(tmp_path, capsys):
    model = small_model("24khz")
    model.save_pretrained(tmp_path / "model")
    assert main(["export-onnx", str(tmp_path / "model"), str(tmp_path / "model")]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert main(["export-onnx", str(tmp_path / "model"), str(tmp_path / "out"), "--frames-per-step", "2"]) == 1
    assert "--frames-per-step must be an integer of at least 7" in capsys.readouterr().err
