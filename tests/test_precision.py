"""Decoding precision (`encodec_fx.precision`): every mode within its documented distance of the exact path on
a real recording, for both presets, through `decode`, the stream decoder and the effects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from encodec_fx import EncodecConfig, EncodecModel
from encodec_fx.audio_io import read_audio
from encodec_fx.effects import EncodecCompressor
from encodec_fx.precision import MIN_SNR_DB, PRECISIONS, effect_precision, native_bfloat16

from conftest import randomize

RECORDING = Path(__file__).parent / "data" / "speech-nl-fillets.flac"


def snr_db(reference: torch.Tensor | np.ndarray, other: torch.Tensor | np.ndarray) -> float:
    reference, other = torch.as_tensor(reference, dtype=torch.float64), torch.as_tensor(other, dtype=torch.float64)
    return float(10 * torch.log10(reference.pow(2).sum() / (reference - other).pow(2).sum()))


def model_for(preset: str) -> EncodecModel:
    """The shipped model for 24 kHz; for 48 kHz (none shipped) the official layout at half width, random weights."""
    if preset == "24khz":
        return EncodecModel.from_pretrained("encodec-fx-24khz")
    torch.manual_seed(0)
    return randomize(EncodecModel(EncodecConfig.encodec_48khz(num_filters=16)))


def recording(model: EncodecModel) -> torch.Tensor:
    audio = read_audio(RECORDING, model.config.sampling_rate).mean(axis=0)
    return torch.from_numpy(np.stack([audio] * model.config.audio_channels)[None]).float()


@pytest.fixture(scope="module", params=["24khz", "48khz"])
def coded(request: pytest.FixtureRequest) -> tuple[EncodecModel, object, torch.Tensor]:
    model = model_for(request.param)
    with torch.inference_mode():
        encoded = model.encode(recording(model), bandwidth=6.0)
        exact = model.decode(encoded.audio_codes, encoded.audio_scales).audio_values
    return model, encoded, exact


@pytest.mark.parametrize("precision", PRECISIONS)
def test_decode_is_within_the_documented_distance_of_exact(coded, precision):
    model, encoded, exact = coded
    with torch.inference_mode():
        audio = model.decode(encoded.audio_codes, encoded.audio_scales, precision=precision).audio_values
    assert audio.dtype == exact.dtype and audio.shape == exact.shape
    distance = snr_db(exact, audio)
    assert distance >= MIN_SNR_DB[precision]
    if precision != "exact":  # the mode is really taken, not the exact path under another name
        assert distance < MIN_SNR_DB["exact"]


def test_stream_decoder_at_bfloat16_is_within_its_distance_of_exact(coded):
    model, encoded, exact = coded
    with torch.inference_mode():
        encoder = model.stream_encoder(6.0)
        blocks = [encoder.push(block) for block in recording(model).split(4000, dim=-1)] + [encoder.flush()]
        decoders = {precision: model.stream_decoder(precision) for precision in PRECISIONS}
        streamed = {precision: torch.cat([decoder.push(block) for block in blocks] + [decoder.flush()], dim=-1)
                    for precision, decoder in decoders.items()}
    length = min(audio.shape[-1] for audio in streamed.values())
    assert snr_db(streamed["exact"][..., :length], streamed["bfloat16"][..., :length]) >= MIN_SNR_DB["bfloat16"]


def test_effects_default_to_the_fastest_mode_within_35_db(monkeypatch):
    monkeypatch.setattr("encodec_fx.precision.EFFECT_DEFAULT", None)  # conftest makes the other tests' effects exact
    model = model_for("24khz")
    assert MIN_SNR_DB[effect_precision(torch.device("cpu"))] >= 35
    assert effect_precision(torch.device("cpu")) == ("bfloat16" if native_bfloat16("cpu") else "exact")
    audio = read_audio(RECORDING, 44100)[:, : 44100 * 2]
    effect, exact = EncodecCompressor(6.0, model=model), EncodecCompressor(6.0, model=model, precision="exact")
    assert effect.precision is None and effect.decoding_precision == effect_precision(torch.device("cpu"))
    whole = effect(audio, 44100)
    assert snr_db(exact(audio, 44100), whole) >= MIN_SNR_DB[effect.decoding_precision]
    streamed = np.concatenate([effect(audio[:, start: start + 512], 44100, reset=False)
                               for start in range(0, audio.shape[-1], 512)], axis=-1)
    exact_streamed = np.concatenate([exact(audio[:, start: start + 512], 44100, reset=False)
                                     for start in range(0, audio.shape[-1], 512)], axis=-1)
    assert snr_db(exact_streamed, streamed) >= MIN_SNR_DB[effect.decoding_precision]


def test_an_unknown_precision_is_refused_naming_the_argument():
    model = model_for("24khz")
    codes = torch.zeros(1, 1, 2, 10, dtype=torch.long)
    with pytest.raises(ValueError, match="precision must be one of 'exact', 'bfloat16', got 'int4'"):
        model.decode(codes, precision="int4")
    with pytest.raises(ValueError, match="precision must be one of"):
        model.stream_decoder("float16")
    with pytest.raises(ValueError, match="precision must be one of"):
        EncodecCompressor(6.0, model=model, precision="fast")
