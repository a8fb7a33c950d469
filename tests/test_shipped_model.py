"""The model shipped in the package itself (not a stand-in): it loads by name with no network and
codes a real recording it never saw with a sane quality (the acceptance test of the shipping step,
docs/training.md)."""

from __future__ import annotations

from pathlib import Path

import torch

from encodec_fx import DEFAULT_MODEL, EncodecModel, pretrained
from encodec_fx.audio_io import read_audio
from encodec_fx.train.losses import si_snr

RECORDING = Path(__file__).resolve().parents[1] / "tests" / "data" / "speech-nl-fillets.flac"  # tests/data/README.md
MAX_WEIGHTS_BYTES = 20_000_000
SI_SNR_FLOOR_DB = {1.5: 0.0, 6.0: 3.0}  # the paper's full-size model: 6.67 dB at 6 kbps on its test set


def test_shipped_model_loads_offline_and_round_trips_a_real_recording(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the shipped model was looked up on the hub")
    monkeypatch.setattr("encodec_fx.checkpoints._download", refuse)
    model = EncodecModel.from_pretrained(DEFAULT_MODEL)
    assert (pretrained.ROOT / DEFAULT_MODEL / pretrained.WEIGHTS_FILE).stat().st_size <= MAX_WEIGHTS_BYTES
    assert (model.config.sampling_rate, model.config.audio_channels) == (24_000, 1)
    assert list(model.config.target_bandwidths) == [1.5, 3.0, 6.0, 12.0, 24.0]
    assert all(p.dtype == torch.float32 for p in model.parameters())

    audio = torch.from_numpy(read_audio(RECORDING, 24_000))[None]  # (1, 1, samples), 4 s of speech
    snr = {}
    with torch.inference_mode():
        for bandwidth in SI_SNR_FLOOR_DB:
            decoded = model(audio, bandwidth=bandwidth).audio_values[..., : audio.shape[-1]]
            assert decoded.shape == audio.shape and torch.isfinite(decoded).all()
            snr[bandwidth] = si_snr(decoded, audio).item()
    for bandwidth, floor in SI_SNR_FLOOR_DB.items():
        assert snr[bandwidth] >= floor, f"SI-SNR at {bandwidth} kbps is {snr[bandwidth]:.2f} dB, below {floor} dB"
    assert snr[6.0] > snr[1.5] + 2, snr  # more codebooks must buy fidelity
