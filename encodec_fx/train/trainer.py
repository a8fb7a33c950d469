"""One training step of the EnCodec recipe: generator and discriminator updates, and validation.

Generator: encoder → training RVQ (a bandwidth drawn per batch from `target_bandwidths`: quantizer
dropout) → decoder; time L1, multi-scale mel, adversarial hinge and relative feature-matching losses
go through the balancer, the commitment loss beside it. The discriminator is updated first, on the
detached reconstruction, with probability `discriminator_update_probability` (the paper: 2/3 at
24 kHz, so that it does not overpower the generator). With `adversarial_start` > 0 the first steps train
on the reconstruction losses alone (a warm-up for small compute budgets; 0 is the paper's recipe).
Two departures for CPU budgets, off by default: `adversarial_every` k > 1 brings the discriminator and
the adversarial and feature losses in on every k-th step only (the balancer then shares the other
steps' gradient between the reconstruction losses), and `discriminator_precision` "bfloat16" runs the
discriminator under autocast (its losses are taken in float32). `discriminator_warmup` N > 0 spends the
first N steps of the adversarial phase training the discriminator alone (every step, on the generator's
reconstructions, which keep to the reconstruction losses, or with `warmup_generator` "hold" stay as they
are): a fresh discriminator cannot tell real from decoded audio (its output barely depends on its input at
first), and its losses would only add noise to the generator's gradient. "hold" is for a new discriminator
beside a generator already trained adversarially: reconstruction-only steps pull such a generator back
towards the low-pass that the reconstruction losses favour (training/LOG.md).
Adam, lr 3e-4, betas (0.5, 0.9) for both; `discriminator_learning_rate_factor` > 1 gives the discriminator
a higher rate than the generator's (two time-scale updates), for a discriminator that stays at chance.
`learning_rate_decay_steps` N > 0 anneals both rates linearly to 0 over the run's last N steps, so that a
generator that swings from one checkpoint to the next settles instead of stopping wherever it was.

All randomness (segments, bandwidths, discriminator coin, codebook sampling) comes from generators
the trainer owns and checkpoints, so a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ..config import EncodecConfig
from ..model import EncodecModel
from .balancer import Balancer
from .discriminator import (
    MultiScaleSTFTDiscriminator,
    discriminator_hinge_loss,
    feature_matching_loss,
    generator_hinge_loss,
)
from .losses import MultiScaleMelLoss, TimeLoss, si_snr
from .quantizer import CodebookTraining, TrainingQuantization, quantize_for_training, reset_codebooks
from .settings import TrainingConfig

ADAM_BETAS = (0.5, 0.9)


def untrained_model(config: EncodecConfig) -> EncodecModel:
    """A fresh model whose codebooks will start from the data (the inference default marks them trained),
    its convolutions initialised to keep the signal's scale (`preserve_scale`)."""
    if config.normalize or config.chunk_length_s is not None:
        raise ValueError("training supports unnormalised, unchunked models (the 24 kHz layout) only")
    model = EncodecModel(config)
    preserve_scale(model)
    reset_codebooks(model.quantizer)
    return model


@torch.no_grad()
def preserve_scale(model: nn.Module) -> None:
    """Draw every convolution's weight from N(0, 1/fan_in) and zero its bias.

    PyTorch's default initialisation shrinks the signal about 0.6× per layer, so a fresh SEANet
    encoder's output is nearly its biases: over time it varies 30× less than across channels and the
    codes carry almost nothing. A first CPU run from that start collapsed (the decoder learnt one
    average sound, SI-SNR -44 dB after 750 steps); from this start, 300 steps reach -10 dB.
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.ConvTranspose1d)):
            out_in_kernel = module.weight.shape
            if isinstance(module, nn.ConvTranspose1d):  # each output sums in/stride · kernel products
                fan_in = out_in_kernel[0] * out_in_kernel[2] / module.stride[0]
            else:
                fan_in = out_in_kernel[1] * out_in_kernel[2]
            weight = torch.randn_like(module.weight) / math.sqrt(fan_in)
            if parametrize.is_parametrized(module, "weight"):
                module.weight = weight  # weight norm splits it into g and v
            else:
                module.weight.copy_(weight)
            assert module.bias is not None  # SEANet's convolutions all have one
            module.bias.zero_()


def check_segment_length(length: int, sampling_rate: int, seconds: float, windowed: tuple[nn.Module, ...]) -> None:
    """Refuse segments shorter than the longest window of the losses and the discriminator (2048
    samples): the model runs on anything down to one sample, but a shorter segment is mostly the zero
    padding of those windows, and an empty one fails deep inside a convolution."""
    longest = max(cast(torch.Tensor, module.window).shape[-1] for module in windowed)
    if length < longest:
        shortest = math.ceil(longest / sampling_rate * 1e4) / 1e4
        raise ValueError(f"segment_seconds must be at least {shortest:g} ({longest} samples at {sampling_rate} Hz, "
                         f"the longest window of the losses and the discriminator), got {seconds:g}")


class CodecTrainer:
    """Owns the model, discriminator, optimisers, balancer and random generators of one run."""

    def __init__(self, model: EncodecModel, config: TrainingConfig, device: str | torch.device = "cpu",
                 codebooks: CodebookTraining = CodebookTraining()):
        self.device = torch.device(device)
        self.model = model.to(self.device).train()
        self.config = config
        self.codebooks = codebooks
        sampling_rate = model.config.sampling_rate
        self.segment_length = round(config.segment_seconds * sampling_rate)
        self.discriminator = MultiScaleSTFTDiscriminator(model.config.audio_channels,
                                                         config.discriminator_filters).to(self.device)
        self.mel_loss = MultiScaleMelLoss(sampling_rate).to(self.device)
        lowest, cutoff = TimeLoss.lowest_cutoff(sampling_rate), config.time_loss_cutoff
        if cutoff and not lowest <= cutoff < sampling_rate / 2:
            raise ValueError(f"time_loss_cutoff must be 0 (the whole band) or from {lowest:g} Hz (what the "
                             f"low-pass resolves at {sampling_rate} Hz) to below the Nyquist frequency "
                             f"({sampling_rate / 2:g} Hz), got {cutoff!r}")
        self.time_loss = TimeLoss(sampling_rate, config.time_loss_cutoff).to(self.device)
        check_segment_length(self.segment_length, sampling_rate, config.segment_seconds,
                             (*self.mel_loss.spectrograms, *self.discriminator.scales))
        self.balancer = Balancer(config.loss_weights)
        self.generator_optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, betas=ADAM_BETAS)
        self.discriminator_optimizer = torch.optim.Adam(self.discriminator.parameters(),
                                                        lr=self.discriminator_learning_rate, betas=ADAM_BETAS)
        self.rng = np.random.default_rng(config.seed)
        self.torch_generator = torch.Generator().manual_seed(config.seed)
        self.step = 0
        # the discriminator's updates so far: while 0 its width may still change on resume; None where a
        # checkpoint from before they were counted leaves it unknown
        self.discriminator_updates: int | None = 0

    def reconstruct(self, audio: torch.Tensor, n_q: int, update_codebooks: bool | None = None
                    ) -> tuple[torch.Tensor, TrainingQuantization]:
        """Audio → (decoded audio of the same length, quantisation); updates codebooks in train mode unless
        `update_codebooks` is False."""
        embeddings = self.model.encoder(audio)
        quantization = quantize_for_training(self.model.quantizer, embeddings, n_q, self.codebooks,
                                             update=update_codebooks, generator=self.torch_generator)
        return self.model.decoder(quantization.quantized)[..., : audio.shape[-1]], quantization

    def train_step(self, audio: torch.Tensor) -> dict[str, float]:
        """One update on a (batch, channels, samples) batch; returns the losses as floats."""
        self.model.train()
        self._set_learning_rates()
        audio = audio.to(self.device)
        bandwidth = float(self.rng.choice(self.model.config.target_bandwidths))
        n_q = self.model.config.num_quantizers_for_bandwidth(bandwidth)
        if self.in_discriminator_warmup() and self.config.warmup_generator == "hold":
            return self._discriminator_warmup_step(audio, bandwidth, n_q)
        reconstruction, quantization = self.reconstruct(audio, n_q)
        logged = {"bandwidth": bandwidth}
        losses = {"time": self.time_loss(reconstruction, audio), "mel": self.mel_loss(reconstruction, audio)}
        if self.in_discriminator_warmup():  # the discriminator learns; the generator keeps to reconstruction
            logged["discriminator"] = self._discriminator_step(audio, reconstruction.detach())
        elif self.is_adversarial_step():
            if self.rng.random() < self.config.discriminator_update_probability:
                logged["discriminator"] = self._discriminator_step(audio, reconstruction.detach())
            fake_logits, fake_features = self.discriminate(reconstruction)
            with torch.no_grad():
                _, real_features = self.discriminate(audio)
            losses |= {"adversarial": generator_hinge_loss(fake_logits),
                       "feature": feature_matching_loss(real_features, fake_features)}
        commitment = self.config.commitment_weight * quantization.commitment_loss
        self.generator_optimizer.zero_grad(set_to_none=True)
        self.balancer.backward(losses, reconstruction, unbalanced_loss=commitment)
        self.generator_optimizer.step()
        self.step += 1
        logged |= {name: loss.item() for name, loss in losses.items()}
        logged["commitment"] = quantization.commitment_loss.item()
        logged["total"] = sum(self.config.loss_weights[name] * logged[name] for name in losses) + commitment.item()
        return logged

    def _discriminator_warmup_step(self, audio: torch.Tensor, bandwidth: float, n_q: int) -> dict[str, float]:
        """A warm-up step that holds the generator: the discriminator learns from its reconstruction, which is
        made without gradients and without updating the codebooks; the losses are logged as on any step."""
        with torch.no_grad():
            reconstruction, quantization = self.reconstruct(audio, n_q, update_codebooks=False)
            losses = {"time": self.time_loss(reconstruction, audio).item(),
                      "mel": self.mel_loss(reconstruction, audio).item()}
        logged = {"bandwidth": bandwidth, "discriminator": self._discriminator_step(audio, reconstruction)}
        self.step += 1
        commitment = self.config.commitment_weight * quantization.commitment_loss.item()
        return logged | losses | {"commitment": quantization.commitment_loss.item(),
                                  "total": sum(self.config.loss_weights[name] * losses[name] for name in losses)
                                  + commitment}

    def in_discriminator_warmup(self) -> bool:
        steps_in = self.step - self.config.adversarial_start
        return 0 <= steps_in < self.config.discriminator_warmup

    def is_adversarial_step(self) -> bool:
        steps_in = self.step - self.config.adversarial_start - self.config.discriminator_warmup
        return steps_in >= 0 and steps_in % self.config.adversarial_every == 0

    def discriminate(self, audio: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        """The discriminator's logits and feature maps in float32, whatever precision it runs in."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16,
                            enabled=self.config.discriminator_precision == "bfloat16"):
            logits, features = self.discriminator(audio)
        return [x.float() for x in logits], [[x.float() for x in scale] for scale in features]

    def _discriminator_step(self, audio: torch.Tensor, reconstruction: torch.Tensor) -> float:
        real_logits, _ = self.discriminate(audio)
        fake_logits, _ = self.discriminate(reconstruction)
        loss = discriminator_hinge_loss(real_logits, fake_logits)
        self.discriminator_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.discriminator_optimizer.step()
        if self.discriminator_updates is not None:
            self.discriminator_updates += 1
        return loss.item()

    @torch.no_grad()
    def evaluate(self, audio: torch.Tensor) -> dict[str, float]:
        """SI-SNR (dB) and multi-scale mel distance of the model's own encode/decode at its smallest and
        largest bandwidths, over (items, channels, samples) audio taken `batch_size` items at a time."""
        self.model.eval()
        metrics = {}
        for bandwidth in sorted({self.model.config.target_bandwidths[0], self.model.config.target_bandwidths[-1]}):
            snrs, mels = [], []
            for batch in audio.split(self.config.batch_size):
                batch = batch.to(self.device)
                decoded = self.model(batch, bandwidth=bandwidth).audio_values
                snrs.append(si_snr(decoded, batch))
                mels.append(self.mel_loss(decoded, batch) * len(batch))
            metrics[f"si_snr@{bandwidth:g}"] = torch.cat(snrs).mean().item()
            metrics[f"mel@{bandwidth:g}"] = (sum(mels) / len(audio)).item()
        self.model.train()
        return metrics

    def state_dict(self) -> dict:
        """Everything but the model weights needed to continue exactly (the model saves on its own)."""
        return {"step": self.step,
                "generator_optimizer": self.generator_optimizer.state_dict(),
                "discriminator": self.discriminator.state_dict(),
                "discriminator_optimizer": self.discriminator_optimizer.state_dict(),
                "balancer": self.balancer.state_dict(),
                "discriminator_updates": self.discriminator_updates,
                "rng": self.rng.bit_generator.state,
                "torch_generator": self.torch_generator.get_state()}

    @property
    def discriminator_learning_rate(self) -> float:
        return self.config.learning_rate * self.config.discriminator_learning_rate_factor

    def learning_rate_scale(self) -> float:
        """The share of the configured rates this step trains at: 1, then falling linearly over the last
        `learning_rate_decay_steps` to 1 / N on the final step (a function of the step: nothing to checkpoint)."""
        decay_steps = self.config.learning_rate_decay_steps
        if not decay_steps:
            return 1.0
        return min(1.0, (self.config.steps - self.step) / decay_steps)

    def _set_learning_rates(self) -> None:
        scale = self.learning_rate_scale()
        for optimizer, rate in ((self.generator_optimizer, self.config.learning_rate),
                                (self.discriminator_optimizer, self.discriminator_learning_rate)):
            for group in optimizer.param_groups:
                group["lr"] = rate * scale

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state` (with a fresh discriminator where it holds none), at this trainer's learning
        rates: the optimisers' saved groups carry the rate the run had, which would silently override
        --learning-rate given on --resume (the schedule is a function of the step: nothing to restore)."""
        self.step = state["step"]
        self.generator_optimizer.load_state_dict(state["generator_optimizer"])
        if "discriminator" in state:  # absent: a run resumed with a new discriminator before it trained
            self.discriminator.load_state_dict(state["discriminator"])
            self.discriminator_optimizer.load_state_dict(state["discriminator_optimizer"])
        self._set_learning_rates()
        self.balancer.load_state_dict(state["balancer"])
        self.discriminator_updates = state.get("discriminator_updates")
        self.rng.bit_generator.state = state["rng"]
        self.torch_generator.set_state(state["torch_generator"])
