"""Codec training: losses, discriminator, balancer, EMA quantiser, steps, checkpoints, export and CLI."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from pedalboard.io import AudioFile

from encodec_fx import EncodecConfig, EncodecModel
from encodec_fx.cli import main
from encodec_fx.train import (
    Balancer,
    CodecTrainer,
    MultiScaleMelLoss,
    MultiScaleSTFTDiscriminator,
    TrainingConfig,
    export_generator,
    load_checkpoint,
    load_exported,
    quantize_for_training,
    save_checkpoint,
    untrained_model,
)
from encodec_fx.train.command import train_loop, training_batch
from encodec_fx.train.data import centre_segments, random_segments
from encodec_fx.train.discriminator import discriminator_hinge_loss, feature_matching_loss, generator_hinge_loss
from encodec_fx.train.losses import TimeLoss, mel_filterbank, si_snr
from encodec_fx.train.quantizer import CodebookTraining, initialise_codebook, update_codebook
from encodec_fx.train.settings import PAPER_WEIGHTS
from encodec_fx.train.signals import LEVELS_DBFS, PEAK, synthetic_segments

SAMPLE_RATE = 24_000


def tiny_config() -> EncodecConfig:
    """hop 64 → 375 frames/s; 64-entry codebooks (6 bits): bandwidths 2.25/4.5/9 kbps use 1/2/4 codebooks."""
    return EncodecConfig(num_filters=4, upsampling_ratios=[4, 4, 4], hidden_size=16, codebook_size=64,
                         target_bandwidths=[2.25, 4.5, 9.0], num_lstm_layers=1)


def tiny_trainer(seed: int = 0) -> CodecTrainer:
    torch.manual_seed(seed)
    config = TrainingConfig(batch_size=2, segment_seconds=0.2, discriminator_filters=4, seed=seed)
    return CodecTrainer(untrained_model(tiny_config()), config)


def tones(seconds: float = 1.0) -> list[np.ndarray]:
    """Harmonic tones over a little noise: pure sines leave most mel bands empty, where the log-mel
    term rewards nothing but matching leakage."""
    rng = np.random.default_rng(0)
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    clips = []
    for f in (220, 330, 440):
        harmonics = sum(0.3 / k * np.sin(2 * np.pi * f * k * t) for k in range(1, 6))
        clips.append((harmonics + 0.02 * rng.standard_normal(t.shape)).astype(np.float32)[None])
    return clips


def train(trainer: CodecTrainer, clips: list[np.ndarray], steps: int) -> list[dict[str, float]]:
    return [trainer.train_step(random_segments(clips, trainer.config.batch_size, trainer.segment_length, trainer.rng))
            for _ in range(steps)]


# --- losses -----------------------------------------------------------------------------------


def test_mel_loss_is_zero_for_identical_audio_and_positive_otherwise():
    loss = MultiScaleMelLoss(SAMPLE_RATE)
    assert len(loss.spectrograms) == 7  # windows 32 … 2048
    audio = torch.randn(2, 1, 4800)
    assert loss(audio, audio).item() == 0.0
    assert loss(audio * 0.5, audio).item() > 0.0
    assert loss(torch.randn(2, 1, 4800), audio).item() > loss(audio * 0.9, audio).item()


def test_mel_filterbank_covers_the_spectrum_with_triangles():
    bank = mel_filterbank(SAMPLE_RATE, 2048, 64)
    assert bank.shape == (1025, 64)
    assert bank.min() >= 0 and bank.max() <= 1
    assert (bank.sum(0) > 0).all()  # at this resolution no filter is empty
    assert bank.argmax(0).diff().ge(0).all()  # centres rise with the filter index


def test_si_snr_is_scale_invariant_and_drops_with_noise():
    reference = torch.randn(2, 1, 1000)
    assert si_snr(3 * reference, reference).min() > 60
    assert si_snr(reference + torch.randn_like(reference), reference).mean() < 3


def test_the_time_loss_sees_the_whole_band_or_only_the_band_below_its_cutoff():
    l1 = torch.nn.functional.l1_loss
    time = torch.arange(SAMPLE_RATE, dtype=torch.float64) / SAMPLE_RATE  # float32 phases would add broadband noise
    reference = torch.randn(2, 1, SAMPLE_RATE)
    low, high = (0.1 * torch.sin(2 * torch.pi * frequency * time).float().expand(2, 1, -1) for frequency in (300, 3000))
    assert TimeLoss(SAMPLE_RATE)(reference + high, reference) == l1(reference + high, reference)
    below_1k = TimeLoss(SAMPLE_RATE, cutoff_hz=1000)
    # An error at 300 Hz counts in full, one at 3 kHz not at all (the stopband is below −74 dB, 2e-4 of
    # the amplitude), except in the 127 samples at each end where the filter meets the zero padding.
    edges = 2 * 127 / SAMPLE_RATE
    assert 1 - edges < below_1k(reference + low, reference) / l1(reference + low, reference) < 1 + 1e-4
    assert below_1k(reference + high, reference) < edges * l1(reference + high, reference)
    assert below_1k.low_pass(high)[..., 127:-127].abs().max() < 2e-4 * 0.1


@pytest.mark.parametrize("cutoff", [12000.0, 12000.0001, 517.0, 1e-9])
def test_a_time_loss_cutoff_the_filter_cannot_make_is_refused(cutoff):
    with pytest.raises(ValueError, match="time_loss_cutoff must be 0 \\(the whole band\\) or from 518 Hz \\(what the "
                                         "low-pass resolves at 24000 Hz\\) to below the Nyquist frequency "
                                         f"\\(12000 Hz\\), got {cutoff!r}"):
        CodecTrainer(untrained_model(tiny_config()), TrainingConfig(segment_seconds=0.2, time_loss_cutoff=cutoff))


def test_synthetic_signals_are_seeded_within_their_levels_and_alike_on_every_channel():
    signals = synthetic_segments(64, 4800, SAMPLE_RATE, 2, np.random.default_rng(5))
    assert signals.shape == (64, 2, 4800) and signals.dtype == torch.float32
    assert torch.equal(signals, synthetic_segments(64, 4800, SAMPLE_RATE, 2, np.random.default_rng(5)))
    assert torch.equal(signals[:, 0], signals[:, 1])
    levels = 10 * torch.log10(signals.double().pow(2).mean(dim=(1, 2)))
    assert levels.max() <= LEVELS_DBFS[1] + 1e-6 and levels.min() >= LEVELS_DBFS[0] - 1e-6  # lower when peaks cap
    assert signals.abs().max() <= PEAK + 1e-6
    # every octave from 62.5 Hz to 8 kHz holds the strongest part of some signal, and some of every signal:
    # the pink noise under each, 20-40 dB down over 8 octaves, keeps each octave within 60 dB of the whole
    spectra = torch.fft.rfft(signals[:, 0].double()).abs().pow(2)
    frequencies = torch.fft.rfftfreq(4800, 1 / SAMPLE_RATE)
    octaves = [(frequencies >= low) & (frequencies < 2 * low) for low in 62.5 * 2.0 ** np.arange(7)]
    assert all(octave[spectra.argmax(-1)].any() for octave in octaves)
    shares = torch.stack([spectra[:, octave].sum(-1) for octave in octaves], -1) / spectra.sum(-1, keepdim=True)
    assert shares.min() > 1e-6


@pytest.mark.parametrize("share, synthetic", [(0.0, 0), (0.25, 1), (0.5, 2), (1.0, 4)])
def test_a_batch_holds_its_synthetic_share(share, synthetic):
    torch.manual_seed(0)
    trainer = CodecTrainer(untrained_model(tiny_config()), TrainingConfig(batch_size=4, segment_seconds=0.2,
                                                                          discriminator_filters=4,
                                                                          synthetic_share=share))
    silence = [np.zeros((1, SAMPLE_RATE), np.float32)]
    batch = training_batch(trainer, silence)
    assert batch.shape == (4, 1, trainer.segment_length)
    assert [bool(item.abs().max() > 0) for item in batch] == [False] * (4 - synthetic) + [True] * synthetic
    assert np.isfinite(trainer.train_step(batch)["total"])


# --- discriminator ----------------------------------------------------------------------------


def test_discriminator_has_five_scales_with_their_shapes():
    discriminator = MultiScaleSTFTDiscriminator(filters=8)
    logits, features = discriminator(torch.randn(2, 1, 4800))
    assert len(logits) == len(features) == 5
    for window, scale_logits, scale_features in zip((2048, 1024, 512, 256, 128), logits, features):
        frames, freqs = (4800 - window) // (window // 4) + 1, window // 2 + 1
        assert scale_logits.shape == (2, 1, frames, -(-freqs // 8))  # three convs stride 2 in frequency
        assert len(scale_features) == 5
        assert all(f.shape[:3] == (2, 8, frames) for f in scale_features)


def test_hinge_and_feature_matching_losses():
    ones = [torch.ones(2, 1, 3, 4)]
    assert discriminator_hinge_loss([1 + x for x in ones], [-1 - x for x in ones]).item() == 0.0
    assert discriminator_hinge_loss([0 * x for x in ones], [0 * x for x in ones]).item() == 2.0
    assert generator_hinge_loss([-x for x in ones]).item() == 2.0
    real = [[torch.full((2, 3), 2.0), torch.full((2, 3), -4.0)]]
    assert feature_matching_loss(real, real).item() == 0.0
    fake = [[torch.full((2, 3), 3.0), torch.full((2, 3), -2.0)]]
    assert feature_matching_loss(real, fake).item() == pytest.approx((1 / 2 + 2 / 4) / 2)


# --- balancer ---------------------------------------------------------------------------------


def test_balancer_gives_each_loss_its_share_of_the_gradient_norm():
    leaf = torch.randn(4, 1, 100, requires_grad=True)
    output = leaf * 1.0
    losses = {"mel": 1000 * output.pow(2).sum(), "time": output.abs().mean()}  # very different scales
    balancer = Balancer({"mel": 1.0, "time": 0.1})
    shares = balancer.gradients(losses, output)
    norms = {name: g.flatten(1).norm(dim=1).mean().item() for name, g in shares.items()}
    assert norms["mel"] == pytest.approx(1 / 1.1, rel=1e-5)
    assert norms["time"] == pytest.approx(0.1 / 1.1, rel=1e-5)
    extra = leaf.sum()
    balancer.backward(losses, output, unbalanced_loss=extra)
    expected = sum(balancer.gradients(losses, output).values()) + 1
    torch.testing.assert_close(leaf.grad, expected)  # norms were steady, so shares did not move


def test_balancer_norm_average_moves_slowly_and_round_trips():
    output = torch.ones(2, 3, requires_grad=True)
    balancer = Balancer({"a": 1.0, "b": 1.0})
    balancer.gradients({"a": output.sum(), "b": output.sum()}, output)
    louder = balancer.gradients({"a": 10 * output.sum(), "b": output.sum()}, output)
    # ⟨norm⟩ ≈ (0.999·1 + 10)/1.999 ≈ 5.5, so the louder loss briefly takes more than its share
    assert louder["a"].norm() > 1.5 * louder["b"].norm()
    copy = Balancer({"a": 1.0, "b": 1.0})
    copy.load_state_dict(balancer.state_dict())
    assert copy.state_dict() == balancer.state_dict()


# --- quantiser --------------------------------------------------------------------------------


def test_training_quantizer_fills_the_inference_buffers():
    model = untrained_model(tiny_config()).train()
    embeddings = torch.randn(2, 16, 50, requires_grad=True)
    result = quantize_for_training(model.quantizer, embeddings, 2, generator=torch.Generator().manual_seed(0))
    layers = [layer.codebook for layer in model.quantizer.layers]
    assert [c.inited.item() for c in layers] == [1, 1, 0, 0]  # only the codebooks this batch used
    assert all(c.embed.abs().sum() > 0 and c.cluster_size.sum() > 0 and c.embed_avg.abs().sum() > 0 for c in layers[:2])
    assert all(c.embed.abs().sum() == 0 for c in layers[2:])
    assert result.codes.shape == (2, 2, 50) and result.quantized.shape == embeddings.shape
    (result.quantized.sum() + result.commitment_loss).backward()
    assert embeddings.grad is not None and embeddings.grad.abs().sum() > 0
    model.eval()  # no update: the same codes as inference, and the decode of those codes
    frozen = quantize_for_training(model.quantizer, embeddings.detach(), 2)
    torch.testing.assert_close(frozen.codes, model.quantizer.encode(embeddings.detach(), 2))
    torch.testing.assert_close(frozen.quantized, model.quantizer.decode(frozen.codes))


def test_straight_through_gradient_is_the_identity():
    model = untrained_model(tiny_config()).train()
    embeddings = torch.randn(1, 16, 20, requires_grad=True)
    quantize_for_training(model.quantizer, embeddings, 4).quantized.sum().backward()
    torch.testing.assert_close(embeddings.grad, torch.ones_like(embeddings))


def test_dead_codes_move_to_batch_vectors_and_stay_there():
    codebook = untrained_model(tiny_config()).quantizer.layers[0].codebook
    vectors = torch.randn(200, 16)
    codebook.embed.copy_(vectors[:64])
    codebook.embed[5] = 100.0  # far from everything: never chosen, so dead
    codebook.cluster_size.fill_(3.0)
    codebook.cluster_size[5] = 0.0
    codebook.embed_avg.copy_(codebook.embed * 3.0)
    settings = CodebookTraining()
    update_codebook(codebook, vectors, codebook.encode(vectors), settings, torch.Generator().manual_seed(0))
    assert (codebook.embed[5] - vectors).abs().sum(1).min() == 0  # now one of the batch vectors
    # the running sum agrees with the new vector, so the next EMA normalisation keeps it
    total = codebook.cluster_size.sum()
    smoothed = (codebook.cluster_size + settings.epsilon) / (total + 64 * settings.epsilon) * total
    torch.testing.assert_close(codebook.embed_avg / smoothed[:, None], codebook.embed)


@pytest.mark.parametrize("vectors_per_step", [16, 640])  # fewer than the codes (our batch of 8), and many more
def test_a_batch_smaller_than_the_codebook_keeps_its_codes_alive(vectors_per_step):
    """Codes used as often as an average code must not be declared dead, whatever the batch size. An
    absolute threshold of 2 vectors a step (the reference's, for 4800 vectors over 1024 codes) made every
    code dead at every step with fewer vectors than codes, which turned the codec into a low-pass."""
    codebook = untrained_model(tiny_config()).quantizer.layers[0].codebook
    generator, settings = torch.Generator().manual_seed(0), CodebookTraining()
    centres = torch.randn(codebook.embed.shape[0], 16, generator=generator) * 4  # one cluster per code
    initialise_codebook(codebook, centres, settings, generator)

    def batch() -> torch.Tensor:
        picks = torch.randint(0, len(centres), (vectors_per_step,), generator=generator)
        return centres[picks] + 0.1 * torch.randn(vectors_per_step, 16, generator=generator)

    for _ in range(300):  # three EMA time constants
        vectors = batch()
        update_codebook(codebook, vectors, codebook.encode(vectors), settings, generator)
    before = codebook.embed.clone()
    vectors = batch()
    update_codebook(codebook, vectors, codebook.encode(vectors), settings, generator)
    replaced = (codebook.embed - before).abs().amax(dim=1) > 1.0  # EMA steps move a code by ~0.01
    assert replaced.float().mean() < 0.1, f"{int(replaced.sum())} of {len(replaced)} codes replaced in one step"


# --- training ---------------------------------------------------------------------------------


def test_training_reduces_the_losses():
    trainer = tiny_trainer(seed=2)
    validation = centre_segments(tones(), trainer.segment_length)
    before = trainer.evaluate(validation)
    history = train(trainer, tones(), 30)
    after = trainer.evaluate(validation)
    assert trainer.step == 30
    assert {h["bandwidth"] for h in history} == {2.25, 4.5, 9.0}  # quantizer dropout
    assert any("discriminator" in h for h in history) and not all("discriminator" in h for h in history)
    for name, ratio in (("mel", 0.85), ("total", 0.9)):  # seeds 0–5 give 0.58–0.84 and 0.75–0.92
        first, last = np.mean([h[name] for h in history[:5]]), np.mean([h[name] for h in history[-5:]])
        assert last < ratio * first, (name, first, last)
    assert set(after) == {"si_snr@2.25", "mel@2.25", "si_snr@9", "mel@9"}
    assert after["mel@9"] < 0.8 * before["mel@9"] and after["si_snr@9"] > before["si_snr@9"]


def test_trained_model_saves_and_loads_with_from_pretrained(tmp_path):
    trainer = tiny_trainer()
    train(trainer, tones(), 3)
    trainer.model.save_pretrained(tmp_path)
    loaded = EncodecModel.from_pretrained(tmp_path)
    trained = trainer.model.eval().state_dict()
    assert all(torch.equal(value, trained[key]) for key, value in loaded.state_dict().items())
    assert any(key.endswith("embed_avg") for key in trained)
    audio = centre_segments(tones(), 4800)
    codes = loaded.encode(audio, bandwidth=9.0).audio_codes
    assert codes.shape == (1, 3, 4, 75)
    torch.testing.assert_close(codes, trainer.model.encode(audio, bandwidth=9.0).audio_codes)


def test_resume_continues_exactly(tmp_path):
    clips = tones()
    straight = tiny_trainer()
    train(straight, clips, 4)
    first = tiny_trainer()
    train(first, clips, 2)
    save_checkpoint(first, tmp_path, {"note": "test"})
    model, state = load_checkpoint(tmp_path)
    assert state["step"] == 2 and state["settings"] == {"note": "test"}
    resumed = CodecTrainer(model, first.config)
    resumed.load_state_dict(state)
    assert resumed.step == 2
    assert_same_state(resumed.generator_optimizer.state_dict(), first.generator_optimizer.state_dict())
    assert_same_state(resumed.discriminator_optimizer.state_dict(), first.discriminator_optimizer.state_dict())
    train(resumed, clips, 2)
    assert resumed.step == 4
    assert_same_state(resumed.model.state_dict(), straight.model.state_dict())
    assert_same_state(resumed.discriminator.state_dict(), straight.discriminator.state_dict())
    assert_same_state(resumed.generator_optimizer.state_dict(), straight.generator_optimizer.state_dict())
    assert resumed.balancer.state_dict() == straight.balancer.state_dict()


def assert_same_state(actual, expected):
    """Nested state dicts equal exactly, tensors bit for bit."""
    if isinstance(expected, torch.Tensor):
        assert torch.equal(actual, expected)
    elif isinstance(expected, dict):
        assert actual.keys() == expected.keys()
        for key in expected:
            assert_same_state(actual[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_same_state(a, e)
    else:
        assert actual == expected


def test_fp16_export_is_compact_and_decodes_like_the_model(tmp_path):
    trainer = tiny_trainer()
    train(trainer, tones(), 3)
    model = trainer.model.eval()
    model.save_pretrained(tmp_path / "full")
    export_generator(model, tmp_path / "codec.safetensors")
    assert ((tmp_path / "codec.safetensors").stat().st_size
            < 0.6 * (tmp_path / "full" / "model.safetensors").stat().st_size)
    shipped = load_exported(tmp_path / "codec.safetensors")
    assert shipped.config == model.config
    audio = centre_segments(tones(), 4800)
    codes = model.encode(audio, bandwidth=9.0).audio_codes
    with torch.no_grad():
        reference = model.decode(codes).audio_values
        decoded = shipped.decode(codes).audio_values
    assert si_snr(decoded, reference).min() > 30


# --- command line -----------------------------------------------------------------------------


@pytest.fixture
def audio_dir(tmp_path):
    """Stereo tones at 16 kHz: read back mono at 24 kHz."""
    directory = tmp_path / "audio"
    directory.mkdir()
    t = np.arange(16_000) / 16_000
    for index, frequency in enumerate((110, 220, 330, 440, 550)):
        tone = (0.3 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
        with AudioFile(str(directory / f"tone{index}.wav"), "w", samplerate=16_000, num_channels=2) as file:
            file.write(np.stack([tone, tone]))
    return directory


def test_train_codec_command_trains_resumes_and_exports(audio_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    arguments = ["train-codec", str(audio_dir), str(run_dir), "--num-filters", "4", "--batch-size", "2",
                 "--segment-seconds", "0.2", "--discriminator-filters", "4", "--eval-every", "1",
                 "--held-out-percent", "30"]
    assert main(arguments + ["--steps", "2", "--adversarial-start", "7"]) == 0
    printed = capsys.readouterr().out
    assert "step 2/2" in printed and "si_snr@1.5" in printed and "si_snr@24" in printed
    model = EncodecModel.from_pretrained(run_dir / "model")
    assert model.config.num_filters == 4
    assert load_exported(run_dir / "generator-fp16.safetensors").config == model.config
    assert main(arguments + ["--steps", "3"]) == 1
    assert "pass --resume" in capsys.readouterr().err
    assert main(arguments + ["--steps", "3", "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "from step 2" in printed and "resuming with steps 3 (the run had 2)" in printed
    state = load_checkpoint(run_dir)[1]
    assert state["step"] == 3 and state["settings"]["adversarial_start"] == 7  # not the default 0
    assert main(arguments + ["--steps", "4", "--resume", "--adversarial-start", "0"]) == 0
    assert "resuming with adversarial_start 0 (the run had 7)" in capsys.readouterr().out
    assert load_checkpoint(run_dir)[1]["settings"]["adversarial_start"] == 0
    # a time budget ends the run with a checkpoint, far short of --steps
    assert main(arguments + ["--steps", "100000", "--resume", "--minutes", "0.0001"]) == 0
    assert "stopped at step 5 after 0.0001 minutes" in capsys.readouterr().out
    assert load_checkpoint(run_dir)[1]["step"] == 5
    assert main(arguments + ["--resume", "--minutes", "0"]) == 1
    assert "--minutes must be a positive number" in capsys.readouterr().err
    assert main(arguments + ["--steps", "6", "--resume", "--loss-weight", "time=0"]) == 0
    assert load_checkpoint(run_dir)[1]["settings"]["loss_weights"] == {**PAPER_WEIGHTS, "time": 0.0}
    assert main(arguments + ["--steps", "7", "--resume", "--loss-weight", "pitch=1"]) == 1
    assert "--loss-weight takes NAME=WEIGHT with NAME one of time, mel" in capsys.readouterr().err


def test_the_discriminator_width_changes_on_resume_only_before_it_has_trained(audio_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    arguments = ["train-codec", str(audio_dir), str(run_dir), "--num-filters", "4", "--batch-size", "2",
                 "--segment-seconds", "0.2", "--eval-every", "1", "--held-out-percent", "30"]
    # saved at step 1 = adversarial_start: the discriminator would train from this step on, and has not yet
    assert main(arguments + ["--steps", "1", "--discriminator-filters", "4", "--adversarial-start", "1"]) == 0
    state = load_checkpoint(run_dir)[1]
    assert state["discriminator_updates"] == 0
    optimiser = state["generator_optimizer"]
    assert main(arguments + ["--steps", "2", "--resume", "--discriminator-filters", "8",
                             "--adversarial-start", "5"]) == 0
    assert "resuming with discriminator_filters 8 (the run had 4)" in capsys.readouterr().out
    state = load_checkpoint(run_dir)[1]
    widths = {tuple(weight.shape) for weight in state["discriminator"].values() if weight.dim() == 4}
    assert state["settings"]["discriminator_filters"] == 8 and (8, 8, 3, 9) in widths and (4, 4, 3, 9) not in widths
    assert state["generator_optimizer"]["state"][0]["step"] == optimiser["state"][0]["step"] + 1  # continued
    assert main(arguments + ["--steps", "7", "--resume", "--adversarial-start", "2"]) == 0  # it trains from 2
    assert load_checkpoint(run_dir)[1]["discriminator_updates"] > 0
    capsys.readouterr()
    for later_start in ([], ["--adversarial-start", "100"]):  # a start moved past the steps it trained in too
        assert main(arguments + ["--steps", "8", "--resume", "--discriminator-filters", "4", *later_start]) == 1
        assert "discriminator_filters cannot change on --resume (the run has 8)" in one_line_error(capsys)
    # a trained discriminator is replaced, at a new width, only when asked; the generator continues
    before = load_checkpoint(run_dir)[1]
    assert main(arguments + ["--steps", "8", "--resume", "--new-discriminator", "--discriminator-filters", "4",
                             "--adversarial-start", "100"]) == 0
    state = load_checkpoint(run_dir)[1]
    widths = {tuple(weight.shape) for weight in state["discriminator"].values() if weight.dim() == 4}
    assert state["settings"]["discriminator_filters"] == 4 and (4, 4, 3, 9) in widths and (8, 8, 3, 9) not in widths
    assert state["discriminator_updates"] == 0 and state["step"] == 8  # fresh, and untrained past step 100
    assert state["generator_optimizer"]["state"][0]["step"] == before["generator_optimizer"]["state"][0]["step"] + 1
    capsys.readouterr()
    # a new discriminator whose warm-up is behind the run joins at once, and a hold with no warm-up holds nothing
    assert main(arguments + ["--steps", "9", "--resume", "--new-discriminator", "--adversarial-start", "2",
                             "--warmup-generator", "hold"]) == 0
    out = capsys.readouterr().out
    assert "note: the new discriminator trains beside the generator from step 8 on: its warm-up " in out
    assert "ended at step 2; to warm it first, pass --adversarial-start 8 --discriminator-warmup N" in out
    assert "note: --warmup-generator hold holds the generator during --discriminator-warmup N steps" in out
    assert main(["train-codec", str(audio_dir), str(tmp_path / "new"), "--new-discriminator"]) == 1
    assert "--new-discriminator replaces a resumed run's discriminator: use it with --resume" in one_line_error(capsys)


def test_warm_up_trains_reconstruction_only_then_the_discriminator_joins():
    torch.manual_seed(0)
    config = TrainingConfig(batch_size=2, segment_seconds=0.2, discriminator_filters=4,
                            discriminator_update_probability=1.0, adversarial_start=2)
    trainer = CodecTrainer(untrained_model(tiny_config()), config)
    before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    warm_up = train(trainer, tones(), 2)
    assert all(set(h) >= {"time", "mel"} and "adversarial" not in h and "discriminator" not in h for h in warm_up)
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.discriminator.parameters()))
    joined = train(trainer, tones(), 1)[0]
    assert {"adversarial", "feature", "discriminator"} <= set(joined)
    assert not all(torch.equal(a, b) for a, b in zip(before, trainer.discriminator.parameters()))


def test_adversarial_every_k_brings_the_discriminator_in_on_every_kth_step_only():
    config = TrainingConfig(batch_size=2, segment_seconds=0.2, discriminator_filters=4,
                            discriminator_update_probability=1.0, adversarial_start=1, adversarial_every=3)
    history = train(CodecTrainer(untrained_model(tiny_config()), config), tones(), 8)
    adversarial = [step for step, losses in enumerate(history) if "adversarial" in losses]
    assert adversarial == [1, 4, 7]
    assert all("discriminator" in history[step] for step in adversarial)


def test_a_discriminator_warmup_trains_the_discriminator_alone_then_the_gan_joins():
    config = TrainingConfig(batch_size=2, segment_seconds=0.2, discriminator_filters=4, adversarial_start=1,
                            discriminator_warmup=2, discriminator_update_probability=1.0)
    trainer = CodecTrainer(untrained_model(tiny_config()), config)
    before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    history = train(trainer, tones(), 4)
    assert ["discriminator" in losses for losses in history] == [False, True, True, True]
    assert ["adversarial" in losses for losses in history] == [False, False, False, True]
    assert not all(torch.equal(a, b) for a, b in zip(before, trainer.discriminator.parameters()))


def test_a_warmup_that_holds_the_generator_changes_only_the_discriminator():
    """`warmup_generator="hold"`: while the discriminator warms, the generator's weights and codebooks stay as
    they are (a generator already trained adversarially is not pulled back by reconstruction-only steps), the
    losses are logged as on any step; then the generator trains again."""
    config = TrainingConfig(batch_size=2, segment_seconds=0.2, discriminator_filters=4, adversarial_start=1,
                            discriminator_warmup=2, discriminator_update_probability=1.0, warmup_generator="hold")
    trainer = CodecTrainer(untrained_model(tiny_config()), config)
    history = train(trainer, tones(), 1)  # a reconstruction step: the codebooks are initialised
    generator = {name: value.detach().clone() for name, value in trainer.model.state_dict().items()}
    discriminator = [p.detach().clone() for p in trainer.discriminator.parameters()]
    history += train(trainer, tones(), 2)
    assert all(torch.equal(value, trainer.model.state_dict()[name]) for name, value in generator.items())
    assert not all(torch.equal(a, b) for a, b in zip(discriminator, trainer.discriminator.parameters()))
    assert all(set(losses) == {"bandwidth", "discriminator", "time", "mel", "commitment", "total"}
               and np.isfinite(list(losses.values())).all() for losses in history[1:])
    history += train(trainer, tones(), 1)
    assert "adversarial" in history[-1]
    assert not all(torch.equal(value, trainer.model.state_dict()[name]) for name, value in generator.items())
    assert trainer.step == 4


def test_a_bfloat16_discriminator_gives_float32_losses_close_to_float32():
    torch.manual_seed(0)
    trainer = CodecTrainer(untrained_model(tiny_config()),
                           TrainingConfig(segment_seconds=0.2, discriminator_filters=4))
    audio = torch.from_numpy(np.stack(tones(0.2))[:2]).float()
    logits, features = trainer.discriminate(audio)
    trainer.config = replace(trainer.config, discriminator_precision="bfloat16")
    logits_bf16, features_bf16 = trainer.discriminate(audio)
    assert all(x.dtype == torch.float32 for x in logits_bf16 + [f for scale in features_bf16 for f in scale])
    # autocast rounds each layer's inputs and weights to bfloat16 (relative error up to 2**-9 each): over
    # the 6 layers of a scale about 6 * 2 * 2**-9 = 2.3 % of the output's scale at worst, measured 0.5-0.7 %
    for exact, rounded in zip(logits, logits_bf16):
        assert (rounded - exact).abs().max() <= 0.05 * exact.abs().max() + 1e-3
    history = train(CodecTrainer(untrained_model(tiny_config()),
                                 replace(trainer.config, batch_size=2, discriminator_update_probability=1.0)),
                    tones(), 2)
    assert all(np.isfinite(list(losses.values())).all() and "adversarial" in losses for losses in history)


@pytest.mark.parametrize("native", [True, False])
def test_an_emulated_bfloat16_discriminator_is_pointed_out(audio_dir, tmp_path, capsys, monkeypatch, native):
    # whether this CPU has AVX-512-BF16 is the machine's; what the command says about either answer is ours
    monkeypatch.setattr("encodec_fx.train.command.native_bfloat16", lambda device_type: native)
    arguments = ["train-codec", str(audio_dir), str(tmp_path / "run"), "--num-filters", "4", "--batch-size", "2",
                 "--segment-seconds", "0.2", "--discriminator-filters", "4", "--steps", "1",
                 "--discriminator-precision", "bfloat16"]
    assert main(arguments) == 0
    note = "bfloat16 is emulated, slower than float32: pass --discriminator-precision float32"
    assert (note in capsys.readouterr().out) != native
    assert main(arguments[:-1] + ["float32", "--steps", "2", "--resume"]) == 0
    assert note not in capsys.readouterr().out


def test_train_codec_command_validates_on_a_separate_folder(audio_dir, tmp_path, capsys):
    arguments = ["train-codec", str(audio_dir), str(tmp_path / "run"), "--validation-dir", str(audio_dir),
                 "--num-filters", "4", "--batch-size", "2", "--segment-seconds", "0.2", "--discriminator-filters",
                 "4", "--eval-every", "1", "--steps", "1", "--held-out-percent", "100"]
    assert main(arguments) == 0
    files = len(list(audio_dir.iterdir()))
    assert f"training on {files} files" in capsys.readouterr().out


def test_an_interrupted_save_resumes_from_one_whole_checkpoint(tmp_path, monkeypatch):
    """Interrupted at each point of a save, the run directory gives the old checkpoint or the new one,
    never the new weights with the old step and optimiser state."""
    run = tmp_path / "run"
    trainer = tiny_trainer()
    train(trainer, tones(), 1)
    save_checkpoint(trainer, run, {})
    shutil.copytree(run / "model", tmp_path / "old model")
    old_weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    train(trainer, tones(), 1)

    def loads(step, weights):
        model, state = load_checkpoint(run)
        return state["step"] == step and all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())

    def replace_but_the_state(source, destination, replace=os.replace):
        if Path(destination).name == "training_state.pt":
            raise KeyboardInterrupt
        replace(source, destination)
    with monkeypatch.context() as patch:  # the new model is in place, the old state not yet replaced
        patch.setattr("entropy.atomic.os.replace", replace_but_the_state)
        with pytest.raises(KeyboardInterrupt):
            save_checkpoint(trainer, run, {})
        assert (run / "model").is_dir() and (run / ".model.previous").is_dir()
        assert loads(1, old_weights)
        train(trainer, tones(), 1)  # resumed from it, trained on and interrupted at the same point again:
        with pytest.raises(KeyboardInterrupt):  # the save must set aside the folder that matches, not the stray
            save_checkpoint(trainer, run, {})
    assert loads(1, old_weights)
    shutil.rmtree(run / "model")  # as if between moving the old model aside and the new one in
    assert loads(1, old_weights)

    save_checkpoint(trainer, run, {})
    assert not (run / ".model.previous").exists() and loads(3, trainer.model.state_dict())
    shutil.copytree(tmp_path / "old model", run / ".model.previous")  # as if before it was removed
    assert loads(3, trainer.model.state_dict())

    shutil.rmtree(run / "model")
    with pytest.raises(ValueError, match=r"damaged: no model folder holds the weights that "
                                         r"training_state.pt \(step 3\) was saved with"):
        load_checkpoint(run)


def test_compact_checkpoint_packs_small_and_resumes_training(tmp_path):
    from training import compact
    trainer = tiny_trainer()
    train(trainer, tones(), 3)
    save_checkpoint(trainer, tmp_path / "run", {**trainer.config.__dict__})
    size = compact.pack(tmp_path / "run", tmp_path / "resume.pt")
    full = sum(p.stat().st_size for p in (tmp_path / "run").rglob("*") if p.is_file())
    assert size < 0.5 * full
    assert compact.unpack(tmp_path / "resume.pt", tmp_path / "again") == 3
    model, state = load_checkpoint(tmp_path / "again")
    fp16 = torch.finfo(torch.float16)
    for key, value in trainer.model.state_dict().items():  # fp16 storage; embed_avg rebuilt from embed
        # fp16 keeps 11 significant bits (rtol 2**-11, doubled for embed_avg's rebuild), and below its
        # smallest normal number only multiples of its smallest subnormal
        atol = max(2e-3 * value.abs().max().item(), fp16.smallest_normal * fp16.eps)
        torch.testing.assert_close(model.state_dict()[key], value.float(), rtol=2e-3, atol=atol)
    resumed = CodecTrainer(model, trainer.config)
    resumed.load_state_dict(state)
    assert resumed.rng.bit_generator.state == trainer.rng.bit_generator.state and resumed.step == 3
    assert resumed.discriminator_updates == trainer.discriminator_updates > 0
    assert train(resumed, tones(), 1)[0]["mel"] > 0 and resumed.step == 4
    with pytest.raises(FileExistsError):
        compact.unpack(tmp_path / "resume.pt", tmp_path / "again")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert compact.main(["unpack", str(tmp_path / "junk.pt"), str(tmp_path / "new")]) == 1


def test_fresh_models_encode_the_input_not_their_biases():
    torch.manual_seed(0)
    audio = torch.randn(2, 1, 4800) * 0.05
    for model, lively in ((EncodecModel(tiny_config()), False), (untrained_model(tiny_config()), True)):
        with torch.no_grad():
            embeddings = model.encoder(audio)
        over_time, over_channels = embeddings.std(-1).mean(), embeddings.std(1).mean()
        assert (over_time > 0.3 * over_channels) == lively, (over_time, over_channels)
    assert all(conv.bias.abs().max() == 0 for conv in untrained_model(tiny_config()).modules()
               if isinstance(conv, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)))


@pytest.mark.parametrize("setting, value, message", [
    ("steps", 0, "steps must be positive, got 0"),
    ("segment_seconds", 0.0, "segment_seconds must be positive, got 0.0"),
    ("discriminator_update_probability", 1.5, "discriminator_update_probability must be from 0 to 1, got 1.5"),
    ("adversarial_start", -1, "adversarial_start must be at least 0, got -1"),
    ("learning_rate", float("inf"), "learning_rate must be a finite number, got inf"),  # trained to NaN
    ("discriminator_learning_rate_factor", 0.0, "discriminator_learning_rate_factor must be positive, got 0.0"),
    ("commitment_weight", float("nan"), "commitment_weight must be a finite number, got nan"),
    ("seed", 10**400, "seed must be below 2\\*\\*64"),  # math.isfinite(10**400) overflowed
    ("adversarial_every", 0, "adversarial_every must be positive, got 0"),
    ("discriminator_warmup", -1, "discriminator_warmup must be at least 0, got -1"),
    ("learning_rate_decay_steps", -2, "learning_rate_decay_steps must be at least 0, got -2"),
    ("time_loss_cutoff", -1.0, "time_loss_cutoff must be at least 0, got -1.0"),
    ("synthetic_share", 1.5, "synthetic_share must be from 0 to 1, got 1.5"),
    ("discriminator_precision", "float16", "discriminator_precision must be one of float32, bfloat16"),
    ("warmup_generator", "freeze", "warmup_generator must be one of reconstruct, hold"),
])
def test_training_settings_out_of_range_are_refused(setting, value, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**{setting: value})


@pytest.mark.parametrize("seed", [0, 2**64 - 1])
def test_seeds_that_numpy_and_torch_take_are_accepted(seed):
    CodecTrainer(untrained_model(tiny_config()), TrainingConfig(segment_seconds=0.2, seed=seed))


def test_the_shortest_segment_allowed_trains():
    config = TrainingConfig(batch_size=2, segment_seconds=0.0854, discriminator_filters=4)
    trainer = CodecTrainer(untrained_model(tiny_config()), config)
    assert trainer.segment_length == 2050  # the longest loss and discriminator window is 2048
    assert np.isfinite(train(trainer, tones(), 1)[0]["total"])


def test_learning_rate_given_on_resume_takes_effect(tmp_path):
    trainer = tiny_trainer()
    train(trainer, tones(), 1)
    save_checkpoint(trainer, tmp_path, asdict(trainer.config))
    model, state = load_checkpoint(tmp_path)
    resumed = CodecTrainer(model, replace(trainer.config, learning_rate=1e-5))
    resumed.load_state_dict(state)
    for optimizer in (resumed.generator_optimizer, resumed.discriminator_optimizer):
        assert [group["lr"] for group in optimizer.param_groups] == [1e-5]
    fresh = CodecTrainer(untrained_model(tiny_config()), replace(trainer.config, discriminator_learning_rate_factor=4))
    assert fresh.discriminator_optimizer.param_groups[0]["lr"] == pytest.approx(4 * trainer.config.learning_rate)
    faster = CodecTrainer(model, replace(trainer.config, learning_rate=1e-5, discriminator_learning_rate_factor=4))
    faster.load_state_dict(state)  # the factor given on resume, like the rate
    assert [group["lr"] for group in faster.generator_optimizer.param_groups] == [1e-5]
    assert [group["lr"] for group in faster.discriminator_optimizer.param_groups] == [pytest.approx(4e-5)]


def test_the_learning_rates_fall_linearly_over_the_last_steps_and_resume_on_schedule():
    trainer = replace_config(tiny_trainer(), steps=4, learning_rate_decay_steps=3, discriminator_learning_rate_factor=2)
    rates = []
    for _ in range(4):
        train(trainer, tones(), 1)  # each step sets its own rates before it updates
        rates.append([optimizer.param_groups[0]["lr"]
                      for optimizer in (trainer.generator_optimizer, trainer.discriminator_optimizer)])
    base = trainer.config.learning_rate
    expected = [[base * scale, 2 * base * scale] for scale in (1, 1, 2 / 3, 1 / 3)]
    assert np.allclose(rates, expected, rtol=1e-12, atol=0)
    resumed = replace_config(tiny_trainer(), steps=4, learning_rate_decay_steps=3, discriminator_learning_rate_factor=2)
    resumed.load_state_dict({**trainer.state_dict(), "step": 2})
    assert resumed.generator_optimizer.param_groups[0]["lr"] == pytest.approx(base * 2 / 3)


def test_a_diverged_run_stops_without_replacing_the_last_checkpoint(tmp_path):
    trainer = replace_config(tiny_trainer(), steps=3, checkpoint_every=1, eval_every=100)
    train_step = trainer.train_step

    def diverging_step(batch):  # from the second step on, the decoder outputs NaN, as a diverged GAN does
        if trainer.step == 1:
            with torch.no_grad():
                trainer.model.decoder.layers[-1].conv.bias.fill_(float("nan"))
        return train_step(batch)
    trainer.train_step = diverging_step
    validation = centre_segments(tones(), trainer.segment_length)
    with pytest.raises(ValueError, match=r"training diverged at step 2 \(loss .*nan.*\): stopped without saving; "
                                         r"the last checkpoint in .* \(step 1\) is kept"):
        train_loop(trainer, tones(), validation, tmp_path, log=lambda line: None)
    model, state = load_checkpoint(tmp_path)  # still loads: its weights are finite
    assert state["step"] == 1


def replace_config(trainer: CodecTrainer, **settings) -> CodecTrainer:
    trainer.config = replace(trainer.config, **settings)
    return trainer


# --- bad input: one line, before any audio is loaded ----------------------------------------------

NO_AUDIO = "no-such-audio-folder"  # the checks below come before the audio is read, so none is needed


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A run directory at step 1 (tiny model, 4 discriminator filters that have trained, seed 0); copy it
    before changing it."""
    run = tmp_path_factory.mktemp("saved") / "run"
    trainer = tiny_trainer()
    trainer.config = replace(trainer.config, discriminator_update_probability=1.0)
    train(trainer, tones(), 1)
    save_checkpoint(trainer, run, asdict(replace(trainer.config, steps=10)))
    return run


@pytest.fixture
def run_copy(saved_run, tmp_path):
    return Path(shutil.copytree(saved_run, tmp_path / "run"))


def one_line_error(capsys) -> str:
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    return error


def damage(state_file: Path, how: str) -> None:
    state = torch.load(state_file, weights_only=True)
    if how == "cut short":
        state_file.write_bytes(state_file.read_bytes()[:5000])
    elif how == "garbage":
        state_file.write_bytes(b"not a checkpoint")
    elif how == "empty":
        state_file.write_bytes(b"")
    elif how == "a list":
        torch.save([1, 2], state_file)
    elif how == "a missing entry":
        torch.save({key: value for key, value in state.items() if key != "generator_optimizer"}, state_file)
    elif how == "an unknown setting":
        torch.save(state | {"settings": state["settings"] | {"fancy_option": 1}}, state_file)
    elif how == "a bad optimiser state":
        torch.save(state | {"discriminator_optimizer": {"state": {}}}, state_file)


@pytest.mark.parametrize("how, reason", [
    ("cut short", "the file is cut short or damaged"), ("garbage", "it is not a file of tensors"),
    ("empty", "the file is empty or cut short"), ("a list", "it holds a list, not a dict"),
    ("a missing entry", "it lacks generator_optimizer"),
    ("an unknown setting", "settings unknown to this version: fancy_option"),
    ("a bad optimiser state", "no entry 'param_groups'"),
])
def test_a_damaged_training_state_is_refused_in_one_line(run_copy, tmp_path, capsys, how, reason):
    from training import compact
    damage(run_copy / "training_state.pt", how)
    message = f"run/training_state.pt is damaged or not a train-codec state: {reason}"
    assert main(["train-codec", NO_AUDIO, str(run_copy), "--resume"]) == 1
    assert message in one_line_error(capsys)
    if how not in ("an unknown setting", "a bad optimiser state"):  # pack copies those entries unread
        assert compact.main(["pack", str(run_copy), str(tmp_path / "packed.pt")]) == 1
        assert message in one_line_error(capsys)
        assert not (tmp_path / "packed.pt").exists()


@pytest.mark.parametrize("option, value, message", [
    ("--discriminator-filters", "8", "discriminator_filters cannot change on --resume (the run has 4)"),
    ("--seed", "5", "seed cannot change on --resume (the run has 0)"),
    ("--num-filters", "8", "num_filters cannot change on --resume (the run has 4)"),
])
def test_settings_that_cannot_change_on_resume_are_refused_first(run_copy, capsys, option, value, message):
    state_before = (run_copy / "training_state.pt").read_bytes()
    assert main(["train-codec", NO_AUDIO, str(run_copy), "--resume", option, value]) == 1
    assert message in one_line_error(capsys)
    assert (run_copy / "training_state.pt").read_bytes() == state_before


def test_resuming_a_run_already_at_its_steps_says_so_and_writes_nothing(run_copy, capsys):
    files = {path: path.stat().st_mtime_ns for path in run_copy.rglob("*")}
    assert main(["train-codec", NO_AUDIO, str(run_copy), "--resume", "--steps", "1"]) == 0
    assert "already at step 1 ≥ --steps 1: nothing to train, nothing written" in capsys.readouterr().out
    assert {path: path.stat().st_mtime_ns for path in run_copy.rglob("*")} == files


@pytest.mark.parametrize("options, message", [
    (["--num-filters", "0"], "--num-filters must be a positive number of filters (e.g. 32), got 0"),
    (["--num-filters", "-4"], "--num-filters must be a positive number of filters (e.g. 32), got -4"),
    (["--seed", str(2**64)], f"seed must be below 2**64 = {2**64}, got {2**64}"),
    (["--seed", str(10**20)], f"seed must be below 2**64 = {2**64}, got {10**20}"),
    (["--segment-seconds", "1e-9"], "segment_seconds must be at least 0.0854 (2048 samples at 24000 Hz"),
    (["--segment-seconds", "0.0001"], "segment_seconds must be at least 0.0854 (2048 samples at 24000 Hz"),
])
def test_bad_train_codec_options_are_refused_before_loading_audio(tmp_path, capsys, options, message):
    assert main(["train-codec", NO_AUDIO, str(tmp_path / "run"), "--num-filters", "2", *options]) == 1
    assert message in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_a_run_folder_that_cannot_be_made_is_refused_before_loading_audio(tmp_path, capsys):
    (tmp_path / "file.txt").write_text("")
    assert main(["train-codec", NO_AUDIO, str(tmp_path / "file.txt"), "--num-filters", "2"]) == 1
    assert "the run folder" in one_line_error(capsys)
    assert main(["train-codec", NO_AUDIO, str(tmp_path / "file.txt" / "run"), "--num-filters", "2"]) == 1
    assert "cannot create the run folder" in one_line_error(capsys)


def test_compact_pack_refuses_a_folder_as_destination_and_leaves_nothing(saved_run, tmp_path, capsys):
    from training import compact
    (tmp_path / "folder").mkdir()
    assert compact.main(["pack", str(saved_run), str(tmp_path / "folder")]) == 1
    assert "is a folder: give the path of the file to write" in one_line_error(capsys)
    assert sorted(path.name for path in tmp_path.rglob("*")) == ["folder"]
    assert compact.main(["pack", str(saved_run), str(tmp_path / "none" / "resume.pt")]) == 1
    assert "no folder" in one_line_error(capsys)


@pytest.mark.parametrize("change, reason", [
    (lambda packed: packed.pop("codec"), "it lacks codec"),
    (lambda packed: packed.update(format="another format"), "its format is 'another format'"),
    (lambda packed: packed["config"].update(num_filters=8), "does not match the model's shapes: "),  # the codec
    (lambda packed: packed["settings"].update(discriminator_filters=8), "does not match the model's shapes: "),
    (lambda packed: packed["settings"].update(fancy_option=1), "settings unknown to this version: fancy_option"),
])
def test_compact_unpack_refuses_crafted_files_in_one_line(saved_run, tmp_path, change, reason):
    from training import compact
    compact.pack(saved_run, tmp_path / "resume.pt")
    packed = torch.load(tmp_path / "resume.pt", weights_only=True)
    change(packed)
    torch.save(packed, tmp_path / "crafted.pt")
    with pytest.raises(ValueError, match="crafted.pt is damaged or not a compact resume checkpoint") as error:
        compact.unpack(tmp_path / "crafted.pt", tmp_path / "again")
    message = str(error.value).replace(str(tmp_path), "")
    assert reason in message and "\n" not in message and len(message) < 500  # not torch's list of every tensor
    assert not (tmp_path / "again").exists()
