"""The batched path: a (batch, channels, samples) tensor coded in one call, each example its own way.

Residual quantisation is greedy, so the first k codes of an encoding with K > k codebooks are exactly the
codes of encoding with k. A batch is therefore encoded once with the most codebooks any example needs,
and every example is decoded with its own first k (the others masked as not received, so they add
nothing: `partial_decode.received_embeddings`), in one decoder call. That is what a GPU wants; on a CPU
the same work runs faster one example per model call (`examples_per_call`), so there the batch is split.
The audio equals coding each example alone at its bandwidth within float rounding (the tests check 1e-5).
Damage (`losses`, `errors`, bandwidth switching) is applied per example to the tokens in between, from
generators seeded by each example's `Draw.seed`, so an example's damage does not depend on its batch.

Audio at another rate than the model's goes through the package's resampler (`encodec_fx.resample`, on
the CPU) and back; the output has the input's shape, device and dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..channels import from_model_channels, to_model_channels
from ..effects.codes import Codes
from ..effects.layout import AudioLayout
from ..effects.protocol import check_sample_rate
from ..model import EncodecModel
from ..partial_decode import decode_received, received_embeddings
from ..resample import resample
from .bandwidths import codebooks_per_frame
from .draws import Draw
from .errors import drop_codebooks, flip_bits
from .losses import conceal, lost_packets

_DROPOUT, _BITS, _LOSS = 0, 1, 2  # one generator per kind of damage, so adding one leaves the others' numbers


def check_audio(audio: object, lengths: Sequence[int] | torch.Tensor | None) -> tuple[torch.Tensor, list[int] | None]:
    """A finite float (batch, channels, samples) tensor, and each example's length if given."""
    if isinstance(audio, (list, tuple)):
        sizes = sorted({example.shape[-1] for example in audio})
        if len(sizes) > 1:
            raise ValueError(f"samples holds examples of {len(sizes)} lengths ({sizes[0]} to {sizes[-1]} samples); "
                             "pad them to one length and pass lengths=[...] (each example's own length)")
        audio = torch.stack([torch.as_tensor(example) for example in audio]) if audio else torch.empty(0, 1, 0)
    if not isinstance(audio, torch.Tensor) or audio.ndim != 3 or not audio.is_floating_point():
        what = f"a {audio.ndim}-D {audio.dtype} tensor" if isinstance(audio, torch.Tensor) else type(audio).__name__
        raise ValueError(f"samples must be a float tensor (batch, channels, samples), got {what}")
    if audio.numel() == 0:
        raise ValueError(f"samples is empty (shape {tuple(audio.shape)}); expected at least one sample per example")
    if not bool(torch.isfinite(audio).all()):
        raise ValueError("samples contains NaN or infinite values; expected finite audio")
    if lengths is None:
        return audio, None
    values = [int(n) for n in (lengths.tolist() if isinstance(lengths, torch.Tensor) else lengths)]
    if len(values) != audio.shape[0] or not all(1 <= n <= audio.shape[-1] for n in values):
        raise ValueError(f"lengths must give each of the {audio.shape[0]} examples a length from 1 to "
                         f"{audio.shape[-1]} samples, got {lengths!r}")
    return audio, values


def examples_per_call(device: torch.device, batch: int) -> int:
    """The whole batch in one call on a GPU; one example at a time on a CPU, where a larger call only costs
    more per example (`benchmarks/augment.py`: the activations and the quantiser's distance matrices of a
    batch leave the caches; 1.5x slower per example at 4 examples, 2-6x at 32, shipped model, one thread)."""
    return batch if device.type != "cpu" else 1


def code_batch(model: EncodecModel, audio: torch.Tensor, sample_rate: int, draws: Sequence[Draw],
               lengths: Sequence[int] | torch.Tensor | None = None, per_call: int | None = None) -> torch.Tensor:
    """Each example of `audio` (batch, channels, samples) at `sample_rate` Hz coded as its `Draw` says, `per_call`
    examples per encoder and decoder call (None: `examples_per_call`). With `lengths`, each example is coded as
    padded (with zeros beyond its length, as the tensor should hold) and its output is zero beyond its length."""
    audio, sizes = check_audio(audio, lengths)
    sample_rate = check_sample_rate(sample_rate)
    config = model.config
    batch, channels, num_samples = audio.shape
    if len(draws) != batch:
        raise ValueError(f"got {len(draws)} draws for a batch of {batch} examples; expected one per example")
    for draw in draws:
        draw.check(config)
    if config.audio_channels == 2 and channels > 2:
        raise ValueError(f"samples has {channels} channels, but this stereo model codes only 1 or 2: mix down first")
    x = audio.detach()
    if sizes is not None:
        x = x * (torch.arange(num_samples, device=x.device) < torch.tensor(sizes, device=x.device)[:, None])[:, None]
    resampling = sample_rate != config.sampling_rate
    if resampling:
        at_rate = resample(x.float().cpu().numpy().reshape(batch * channels, -1), sample_rate, config.sampling_rate)
        per_example = at_rate.reshape(batch, channels, -1)
        model_input = torch.from_numpy(np.concatenate([to_model_channels(example, config) for example in per_example]))
    elif config.audio_channels == 1:
        model_input = x.float().reshape(batch * channels, 1, num_samples)
    else:
        model_input = x.float().expand(batch, 2, num_samples)
    streams = channels if config.audio_channels == 1 else 1  # coded streams per example
    if per_call is not None and (not isinstance(per_call, int) or per_call < 1):
        raise ValueError(f"per_call must be None or a positive number of examples, got {per_call!r}")
    step = per_call or examples_per_call(model.device, batch)
    model_input = model_input.to(model.device)
    with torch.no_grad():
        decoded = torch.cat([_code(model, model_input[start * streams: (start + step) * streams],
                                   draws[start: start + step], streams) for start in range(0, batch, step)])
    if resampling:
        coded = decoded.cpu().numpy().reshape(batch, streams, config.audio_channels, -1)
        back = np.stack([from_model_channels(example, channels) for example in coded])
        out = torch.from_numpy(resample(back, config.sampling_rate, sample_rate, num_samples))
    else:
        out = decoded.reshape(batch, streams, config.audio_channels, -1)
        out = out[:, :, 0] if config.audio_channels == 1 else (out[:, 0] if channels == 2 else out[:, 0].mean(1, True))
    out = out.to(device=audio.device, dtype=audio.dtype)
    if sizes is not None:
        out = out * (torch.arange(num_samples, device=out.device) < torch.tensor(sizes, device=out.device)[:, None])[
            :, None]
    return out


def _code(model: EncodecModel, model_input: torch.Tensor, draws: Sequence[Draw], streams: int) -> torch.Tensor:
    """(batch · streams, model channels, samples) at the model's rate → decoded audio of the same shape."""
    config, num_samples = model.config, model_input.shape[-1]
    encode_at = max(draw.max_bandwidth for draw in draws)
    codes, scales, pad = model.encode(model_input, bandwidth=encode_at)
    if any(draw.damaged for draw in draws):
        codes, received = _damaged(model, codes, pad, draws, streams, num_samples)
    else:  # each example keeps its first k codebooks throughout
        kept = torch.tensor([config.num_quantizers_for_bandwidth(draw.bandwidth) for draw in draws for _ in
                             range(streams)], device=codes.device)
        received = (torch.arange(codes.shape[2], device=codes.device)[:, None] < kept).T[None, :, :, None]
        received = received.expand(codes.shape)
    if config.chunk_length is None and scales[0] is None and pad == 0:  # one chunk: the fast decoder
        fast = model._inference_path()
        embeddings = received_embeddings(model, codes[0], received[0])
        audio = model.decoder(embeddings) if fast is None else fast.decode(embeddings)
        return audio[..., :num_samples]
    return decode_received(model, codes, received, scales, pad, num_samples)


def _damaged(model: EncodecModel, codes: torch.Tensor, pad: int, draws: Sequence[Draw], streams: int,
             num_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes and received mask [chunks, batch · streams, n_q, frames] after each example's damage, worked on
    the transmission timeline as the token effects do (`Codes.on_timeline`)."""
    config = model.config
    array = codes.cpu().numpy()
    timeline = Codes(audio_codes=array, received=np.ones(array.shape, dtype=bool), audio_scales=None,
                     last_frame_pad_length=pad, config=config, sample_rate=config.sampling_rate,
                     layout=AudioLayout(array.shape[1], num_samples, 2, True), model_num_samples=num_samples)
    tokens, received = timeline.on_timeline(array), timeline.on_timeline(timeline.received)
    times, levels = timeline.frame_times(), np.arange(array.shape[2])[:, None]
    for index, draw in enumerate(draws):
        rows = slice(index * streams, (index + 1) * streams)
        kept = codebooks_per_frame(config, draw.bandwidth, draw.schedule, times)
        kept = drop_codebooks(np.random.default_rng([draw.seed, _DROPOUT]), kept, draw.codebook_dropout)
        example_tokens = flip_bits(np.random.default_rng([draw.seed, _BITS]), tokens[rows], draw.bit_error_rate,
                                   config.codebook_nbits) % config.codebook_size
        frames = np.arange(times.size)
        lost = lost_packets(np.random.default_rng([draw.seed, _LOSS]), -(-times.size // draw.packet_frames),
                            draw.loss_rate, draw.burst_length)[frames // draw.packet_frames]
        tokens[rows], received[rows] = conceal(example_tokens, received[rows] & (levels < kept), lost,
                                               draw.concealment)
    damaged = timeline.with_timeline(tokens, received)
    return (torch.from_numpy(damaged.audio_codes).to(codes.device),
            torch.from_numpy(damaged.received).to(codes.device))
