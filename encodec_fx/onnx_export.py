"""ONNX export (`model.export_onnx(directory)`, `encodec-fx export-onnx MODEL OUT_DIR`): the codec outside Python.

Written to `directory`:

* `encoder.onnx`: audio (batch, channels, samples) → codes (batch, n_q, frames) with all `n_q` codebooks
  (a bandwidth's codes are the first `n_q_per_bandwidth[bandwidth]` rows: residual quantisation codes
  each codebook from the ones before it); a normalising model (48 kHz) also gives `scale` (batch, 1),
  and its graph codes one chunk (`chunk_length` samples at most: cut the input as `chunk_stride` says).
  At least `min_samples` samples (the deepest layer reflects its padding).
* `decoder.onnx`: codes (batch, n_q, frames), any n_q up to the model's (and `scale` for a normalising
  model) → audio (batch, channels, frames · hop_length).
* for a causal model (24 kHz), `encoder_step.onnx` and `decoder_step.onnx`: `frames_per_step` frames a
  call, every layer's state an explicit input and output (`state_0` … in, `next_state_0` … out; start
  with the zeros `metadata.json` gives the shapes of, batch dimension first, and `started` = 0). The
  encoder step takes `step_samples` samples; a stream whose length is a multiple of it gives the
  whole-input graph's codes, and the decoder step the whole-input graph's audio.
* `metadata.json`: rates, frame rate, hop, channels, chunking, `n_q_per_bandwidth`, the step graphs'
  state names and shapes (also stored in every graph's metadata_props).

The graphs compute what the model computes with weight norm folded, the same convolutions and the
references' nearest-code search, in float32; onnxruntime's kernels round differently, so a code can
differ where two codewords nearly tie (tests/test_onnx.py, benchmarks/onnx_runtime.py).
Needs `pip install "encodec-fx[onnx]"` (onnx, onnxscript for torch's exporter, onnxruntime to run them).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from entropy.atomic import replacing

from .conv import NormConv1d, NormConvTranspose1d
from .seanet import ResidualUnit, SkipLSTM

if TYPE_CHECKING:
    from .model import EncodecModel

OPSET = 18
STATE_INPUTS = "state_{}"
STATE_OUTPUTS = "next_state_{}"
STEP_GRAPHS = ("encoder_step.onnx", "decoder_step.onnx")  # a causal model's streaming graphs
METADATA = "metadata.json"


# --- layers with folded weights, whole input or one step ---------------------------------------------


def tensor_of(module: nn.Module, name: str) -> torch.Tensor:
    """A module's tensor attribute (a parameter, or weight norm's computed weight), detached and copied."""
    value = getattr(module, name)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{type(module).__name__}.{name} is not a tensor")
    return value.detach().clone()


def first_int(module: nn.Module, name: str) -> int:
    """A convolution's stride or dilation, stored as a one-element tuple."""
    return int(getattr(module, name)[0])


class GraphConv(nn.Module):
    """NormConv1d with weight norm folded. In a step, the left padding is the previous input's tail
    (`context`), or at the stream's start (`started` 0) the reflection the whole-input layer pads with."""

    weight: torch.Tensor
    bias: torch.Tensor

    def __init__(self, layer: nn.Module):
        super().__init__()
        if not isinstance(layer, NormConv1d):
            raise TypeError(f"expected a NormConv1d, got {type(layer).__name__}")
        conv = layer.conv
        self.register_buffer("weight", tensor_of(conv, "weight"))
        self.register_buffer("bias", tensor_of(conv, "bias"))
        self.stride, self.dilation = first_int(conv, "stride"), first_int(conv, "dilation")
        self.padding_total, self.causal, self.pad_mode = layer.padding_total, layer.causal, layer.pad_mode
        self.norm = layer.norm if isinstance(layer.norm, nn.GroupNorm) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        extra = (self.stride - x.shape[-1] % self.stride) % self.stride
        if self.causal:
            left, right = self.padding_total, extra
        else:
            right = self.padding_total // 2
            left, right = self.padding_total - right, right + extra
        if left or right:
            x = F.pad(x, (left, right), self.pad_mode)
        return self._conv(x)

    def context_shape(self, channels_in: int) -> tuple[int, int] | None:
        return None if self.padding_total == 0 else (channels_in, self.padding_total)

    def step(self, x: torch.Tensor, context: torch.Tensor | None, started: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if context is None:
            return self._conv(x), None
        pad = self.padding_total
        start = x[..., 1: pad + 1].flip(-1) if self.pad_mode == "reflect" else torch.zeros_like(context)
        full = torch.cat([torch.where(started > 0, context, start), x], dim=-1)
        return self._conv(full), full[..., full.shape[-1] - pad:]

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv1d(x, self.weight, self.bias, self.stride, 0, self.dilation)
        return y if self.norm is None else self.norm(y)


class GraphConvTranspose(nn.Module):
    """NormConvTranspose1d with weight norm folded. A step keeps the previous input frame, whose second
    half-kernel overlaps the first outputs of the next (kernel = 2 · stride, trimmed on the right)."""

    weight: torch.Tensor
    bias: torch.Tensor

    def __init__(self, layer: NormConvTranspose1d):
        super().__init__()
        conv = layer.conv
        self.register_buffer("weight", tensor_of(conv, "weight"))
        self.register_buffer("bias", tensor_of(conv, "bias"))
        self.stride = first_int(conv, "stride")
        self.trim_left, self.trim_right = layer.trim_left, layer.trim_right
        self.norm = layer.norm if isinstance(layer.norm, nn.GroupNorm) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose1d(x, self.weight, self.bias, self.stride)
        y = y if self.norm is None else self.norm(y)
        return y[..., self.trim_left: y.shape[-1] - self.trim_right]

    def step(self, x: torch.Tensor, previous: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        frames = x.shape[-1]
        y = F.conv_transpose1d(torch.cat([previous, x], dim=-1), self.weight, self.bias, self.stride)
        return y[..., self.stride: self.stride * (frames + 1)], x[..., frames - 1:]


@torch.library.custom_op("encodec_fx::lstm_layer", mutates_args=())
def lstm_layer(x: torch.Tensor, w: torch.Tensor, r: torch.Tensor, b: torch.Tensor, h0: torch.Tensor,
               c0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One LSTM layer over (time, batch, in) with its weights in ONNX's gate order (i, o, f, c): an op of its
    own, exported as ONNX's LSTM (`lstm_layer_onnx`), because torch.export unrolls `nn.LSTM` over a fixed
    number of frames."""
    hidden = r.shape[1]
    weights = [torch_gate_order(w), torch_gate_order(r), torch_gate_order(b[: 4 * hidden]),
               torch_gate_order(b[4 * hidden:])]
    y, h, c = torch._VF.lstm(x, (h0[None], c0[None]), weights, True, 1, 0.0, False, False, False)
    return y, h[0], c[0]


@lstm_layer.register_fake
def _(x: torch.Tensor, w: torch.Tensor, r: torch.Tensor, b: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor
      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return x.new_empty(x.shape[0], x.shape[1], r.shape[1]), torch.empty_like(h0), torch.empty_like(c0)


def onnx_gate_order(t: torch.Tensor) -> torch.Tensor:
    i, f, c, o = t.chunk(4, 0)
    return torch.cat([i, o, f, c])


def torch_gate_order(t: torch.Tensor) -> torch.Tensor:
    i, o, f, c = t.chunk(4, 0)
    return torch.cat([i, f, c, o])


def lstm_translation(hidden_size: int) -> Any:
    """`lstm_layer` as ONNX's LSTM op, for an exporter's custom translation table."""
    from onnxscript import opset18
    op: Any = opset18  # its stubs want typed ONNX values; the exporter passes lists of ints as constants

    def lstm_layer_onnx(x: Any, w: Any, r: Any, b: Any, h0: Any, c0: Any) -> Any:
        y, h, c = op.LSTM(x, op.Unsqueeze(w, [0]), op.Unsqueeze(r, [0]), op.Unsqueeze(b, [0]), None,
                          op.Unsqueeze(h0, [0]), op.Unsqueeze(c0, [0]), hidden_size=hidden_size)
        return op.Squeeze(y, [1]), op.Squeeze(h, [0]), op.Squeeze(c, [0])
    return lstm_layer_onnx


class GraphLSTM(nn.Module):
    """SkipLSTM, one `lstm_layer` per layer; a step carries (h, c) of every layer."""

    def __init__(self, layer: SkipLSTM):
        super().__init__()
        lstm = layer.lstm
        self.num_layers, self.hidden_size = lstm.num_layers, lstm.hidden_size
        for index in range(lstm.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = (getattr(lstm, f"{name}_l{index}").detach()
                                                      for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            self.register_buffer(f"w{index}", onnx_gate_order(weight_ih).clone())
            self.register_buffer(f"r{index}", onnx_gate_order(weight_hh).clone())
            self.register_buffer(f"b{index}", torch.cat([onnx_gate_order(bias_ih), onnx_gate_order(bias_hh)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        zeros = x.new_zeros(self.num_layers, x.shape[0], self.hidden_size)
        return self.step(x, zeros, zeros)[0]

    def step(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(batch, channels, time) and states (layers, batch, hidden) → output and states."""
        x = x.permute(2, 0, 1)
        y, hs, cs = x, [], []
        for index in range(self.num_layers):
            y, h_out, c_out = lstm_layer(y, getattr(self, f"w{index}"), getattr(self, f"r{index}"),
                                         getattr(self, f"b{index}"), h[index], c[index])
            hs.append(h_out)
            cs.append(c_out)
        return (y + x).permute(1, 2, 0), torch.stack(hs), torch.stack(cs)


class GraphResidual(nn.Module):
    def __init__(self, unit: ResidualUnit):
        super().__init__()
        elu, conv, inner_elu, projection = unit.block
        self.alpha, self.inner_alpha = float(getattr(elu, "alpha")), float(getattr(inner_elu, "alpha"))
        self.conv, self.projection = GraphConv(conv), GraphConv(projection)
        self.shortcut = GraphConv(unit.shortcut) if isinstance(unit.shortcut, NormConv1d) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.projection(F.elu(self.conv(F.elu(x, self.alpha)), self.inner_alpha))
        return (x if self.shortcut is None else self.shortcut(x)) + h

    def step(self, x: torch.Tensor, context: torch.Tensor | None, started: torch.Tensor
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        h, context = self.conv.step(F.elu(x, self.alpha), context, started)
        h = self.projection(F.elu(h, self.inner_alpha))
        return (x if self.shortcut is None else self.shortcut(x)) + h, context


def graph_layers(layers: nn.ModuleList) -> list[tuple[nn.Module, float | None]]:
    """(layer, alpha of the ELU before it) per SEANet layer."""
    out: list[tuple[nn.Module, float | None]] = []
    alpha = None
    for layer in layers:
        if isinstance(layer, nn.ELU):
            alpha = layer.alpha
            continue
        if isinstance(layer, NormConv1d):
            graph: nn.Module = GraphConv(layer)
        elif isinstance(layer, NormConvTranspose1d):
            graph = GraphConvTranspose(layer)
        elif isinstance(layer, SkipLSTM):
            graph = GraphLSTM(layer)
        elif isinstance(layer, ResidualUnit):
            graph = GraphResidual(layer)
        else:
            raise TypeError(f"no ONNX form of layer {type(layer).__name__}")
        out.append((graph, alpha))
        alpha = None
    return out


class GraphStack(nn.Module):
    """A SEANet layer list, whole input or one step with its states."""

    def __init__(self, layers: nn.ModuleList):
        super().__init__()
        pairs = graph_layers(layers)
        self.layers = nn.ModuleList(layer for layer, _ in pairs)
        self.alphas = [alpha for _, alpha in pairs]
        self.graph_layers = [layer for layer, _ in pairs]  # typed, for the loops below

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer, alpha in zip(self.layers, self.alphas):
            x = layer(x if alpha is None else F.elu(x, alpha))
        return x

    def state_shapes(self, channels: int, frames: int) -> list[tuple[int, ...]]:
        """Per state (batch left out), for an input of `channels` × `frames` samples per step."""
        shapes: list[tuple[int, ...]] = []
        for layer in self.graph_layers:
            if isinstance(layer, GraphConv):
                shape = layer.context_shape(channels)
                shapes += [] if shape is None else [shape]
                channels, frames = layer.weight.shape[0], frames // layer.stride
            elif isinstance(layer, GraphResidual):
                shape = layer.conv.context_shape(channels)
                shapes += [] if shape is None else [shape]
            elif isinstance(layer, GraphConvTranspose):
                shapes.append((channels, 1))
                channels, frames = layer.weight.shape[1], frames * layer.stride
            elif isinstance(layer, GraphLSTM):
                shapes += [(layer.num_layers, layer.hidden_size)] * 2
        return shapes

    def step(self, x: torch.Tensor, states: list[torch.Tensor], started: torch.Tensor
             ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out: list[torch.Tensor] = []
        index = 0
        for layer, alpha in zip(self.graph_layers, self.alphas):
            x = x if alpha is None else F.elu(x, alpha)
            if isinstance(layer, (GraphConv, GraphResidual)):
                conv = layer if isinstance(layer, GraphConv) else layer.conv
                context = None
                if conv.padding_total:
                    context, index = states[index], index + 1
                x, context = layer.step(x, context, started)
                out += [] if context is None else [context]
            elif isinstance(layer, GraphConvTranspose):
                x, previous = layer.step(x, states[index])
                out.append(previous)
                index += 1
            elif isinstance(layer, GraphLSTM):
                # states are batch first; the LSTM wants (layers, batch, hidden)
                x, h, c = layer.step(x, states[index].transpose(0, 1), states[index + 1].transpose(0, 1))
                out += [h.transpose(0, 1), c.transpose(0, 1)]
                index += 2
        return x, out


# --- the graphs ------------------------------------------------------------------------------------


def search_codes(embeddings: torch.Tensor, codebooks: torch.Tensor, norms: torch.Tensor) -> torch.Tensor:
    """(B, D, T) → codes (B, n_q, T): each codebook's nearest code to what the previous left, written as the
    references write the distance, so that rounding falls the same way."""
    batch, dim, frames = embeddings.shape
    residual = embeddings.transpose(1, 2).reshape(-1, dim)
    codes = []
    for k in range(codebooks.shape[0]):
        distance = -(residual.pow(2).sum(1, keepdim=True) - 2 * residual @ codebooks[k].t() + norms[k])
        indices = distance.argmax(dim=-1)
        residual = residual - codebooks[k][indices]
        codes.append(indices.view(batch, frames))
    return torch.stack(codes, dim=1)


def codebook_tensors(model: EncodecModel) -> tuple[torch.Tensor, torch.Tensor]:
    codebooks = torch.stack([tensor_of(getattr(layer, "codebook"), "embed") for layer in model.quantizer.layers])
    return codebooks.clone(), codebooks.pow(2).sum(-1)[:, None, :].clone()


class EncoderGraph(nn.Module):
    """Audio → codes with every codebook (and the chunk's scale for a normalising model)."""

    codebooks: torch.Tensor
    norms: torch.Tensor

    def __init__(self, model: EncodecModel):
        super().__init__()
        self.normalize = model.config.normalize
        self.stack = GraphStack(model.encoder.layers)
        codebooks, norms = codebook_tensors(model)
        self.register_buffer("codebooks", codebooks)
        self.register_buffer("norms", norms)

    def forward(self, audio: torch.Tensor) -> Any:
        if not self.normalize:
            return search_codes(self.stack(audio), self.codebooks, self.norms)
        mono = audio.sum(dim=1, keepdim=True) / audio.shape[1]
        scale = mono.pow(2).mean(dim=-1, keepdim=True).sqrt() + 1e-8
        return search_codes(self.stack(audio / scale), self.codebooks, self.norms), scale.view(-1, 1)


def code_embeddings(codes: torch.Tensor, flat_codebooks: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """Codes (B, n_q, T) → the sum of their codewords (B, D, T); n_q may be anything up to the model's."""
    offsets = torch.arange(codes.shape[1], device=codes.device) * codebook_size
    return flat_codebooks[codes + offsets[None, :, None]].sum(dim=1).transpose(1, 2)


class DecoderGraph(nn.Module):
    """Codes → audio (scaled back by the chunk's loudness for a normalising model)."""

    flat_codebooks: torch.Tensor

    def __init__(self, model: EncodecModel):
        super().__init__()
        self.normalize, self.codebook_size = model.config.normalize, model.config.codebook_size
        self.stack = GraphStack(model.decoder.layers)
        self.register_buffer("flat_codebooks", codebook_tensors(model)[0].flatten(0, 1).clone())

    def forward(self, codes: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        audio = self.stack(code_embeddings(codes, self.flat_codebooks, self.codebook_size))
        return audio if scale is None else audio * scale.view(-1, 1, 1)


class EncoderStepGraph(nn.Module):
    """`frames_per_step` frames of audio and the states → codes and the next states."""

    codebooks: torch.Tensor
    norms: torch.Tensor

    def __init__(self, model: EncodecModel):
        super().__init__()
        self.stack = GraphStack(model.encoder.layers)
        codebooks, norms = codebook_tensors(model)
        self.register_buffer("codebooks", codebooks)
        self.register_buffer("norms", norms)

    def forward(self, audio: torch.Tensor, started: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        embeddings, out = self.stack.step(audio, list(states), started)
        return (search_codes(embeddings, self.codebooks, self.norms), torch.ones_like(started), *out)


class DecoderStepGraph(nn.Module):
    """`frames_per_step` frames of codes and the states → audio and the next states."""

    flat_codebooks: torch.Tensor

    def __init__(self, model: EncodecModel):
        super().__init__()
        self.codebook_size = model.config.codebook_size
        self.stack = GraphStack(model.decoder.layers)
        self.register_buffer("flat_codebooks", codebook_tensors(model)[0].flatten(0, 1).clone())

    def forward(self, codes: torch.Tensor, started: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        embeddings = code_embeddings(codes, self.flat_codebooks, self.codebook_size)
        audio, out = self.stack.step(embeddings, list(states), started)
        return (audio, torch.ones_like(started), *out)


# --- export ----------------------------------------------------------------------------------------


def min_samples(model: EncodecModel) -> int:
    """The shortest input the whole-input graphs take: every layer's input longer than its reflected padding."""
    config = model.config
    return config.hop_length * (config.last_kernel_size + 1)


def step_frames_needed(model: EncodecModel) -> int:
    """The fewest frames per step for which every layer's block is longer than its left padding, so that
    the first step can reflect it as the whole-input layer does."""
    needed, samples_per_frame = 1, model.config.hop_length
    for layers in (model.encoder.layers, model.decoder.layers):
        rate = samples_per_frame if layers is model.encoder.layers else 1  # layer input samples per frame
        for layer in layers:
            conv = layer.block[1] if isinstance(layer, ResidualUnit) else layer
            if isinstance(conv, NormConv1d):
                needed = max(needed, -(-(conv.padding_total + 1) // rate))
                rate //= conv.stride
            elif isinstance(conv, NormConvTranspose1d):
                rate *= first_int(conv.conv, "stride")
    return needed


def metadata(model: EncodecModel, frames_per_step: int | None, encoder_states: list, decoder_states: list
             ) -> dict[str, Any]:
    config = model.config
    data: dict[str, Any] = {
        "format": "encodec-fx onnx 1", "sampling_rate": config.sampling_rate, "audio_channels": config.audio_channels,
        "hop_length": config.hop_length, "frame_rate": config.frame_rate, "codebook_size": config.codebook_size,
        "num_quantizers": config.num_quantizers, "target_bandwidths": list(config.target_bandwidths),
        "n_q_per_bandwidth": {f"{b:g}": config.num_quantizers_for_bandwidth(b) for b in config.target_bandwidths},
        "normalize": config.normalize, "chunk_length": config.chunk_length, "chunk_stride": config.chunk_stride,
        "min_samples": min_samples(model), "opset": OPSET,
    }
    if frames_per_step is not None:
        data |= {"frames_per_step": frames_per_step, "step_samples": frames_per_step * config.hop_length,
                 "encoder_states": {STATE_INPUTS.format(i): list(s) for i, s in enumerate(encoder_states)},
                 "decoder_states": {STATE_INPUTS.format(i): list(s) for i, s in enumerate(decoder_states)}}
    return data


def export_onnx(model: EncodecModel, directory: str | os.PathLike, frames_per_step: int | None = None,
                overwrite: bool = False) -> dict[str, Any]:
    """Write the model's ONNX graphs and metadata.json into `directory` (see the module docstring); returns the
    metadata. `frames_per_step` (causal models; default: the fewest the step graphs can start with, 7 for the
    24 kHz model) sets the step graphs' frames per call."""
    from .streaming import why_not_streamable
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()) and not overwrite:
        raise FileExistsError(f"{directory} exists and is not empty; pass overwrite=True to write into it")
    streamable = why_not_streamable(model.config) is None
    needed = step_frames_needed(model)
    if frames_per_step is not None and not streamable:
        raise ValueError("frames_per_step applies to a causal model's step graphs; this model streams by chunks "
                         "and gets none: leave frames_per_step unset")
    if frames_per_step is not None and (not isinstance(frames_per_step, int) or frames_per_step < needed):
        raise ValueError(f"frames_per_step must be an integer of at least {needed} (the step graphs reflect every "
                         f"layer's padding within their first step), got {frames_per_step!r}")
    frames_per_step = (frames_per_step or needed) if streamable else None
    _check_exporter()
    directory.mkdir(parents=True, exist_ok=True)
    names = ["encoder.onnx", "decoder.onnx", *(STEP_GRAPHS if frames_per_step is not None else ()), METADATA]
    with replacing(*(directory / name for name in names), overwrite=overwrite) as temporaries:
        written = dict(zip(names, temporaries))
        data = _export_all(copy.deepcopy(model).cpu().eval(), written, frames_per_step)
    for stale in set(STEP_GRAPHS) - set(names):  # an earlier export's step graphs, which this model has not
        (directory / stale).unlink(missing_ok=True)
    return data


def _export_all(model: EncodecModel, written: dict[str, Path], frames_per_step: int | None) -> dict[str, Any]:
    """Every graph and the metadata into the paths `written` names (temporaries, put in place together): the
    caller's model is a copy on the CPU, so the export moves nothing of the caller's."""
    config = model.config
    channels, length = config.audio_channels, 4 * min_samples(model)
    shortest = min_samples(model)
    batch, samples = torch.export.Dim("batch", min=1), torch.export.Dim("samples", min=shortest)
    frames = torch.export.Dim("frames", min=shortest // config.hop_length)
    n_q = torch.export.Dim("n_q", min=1, max=config.num_quantizers)
    audio = 0.1 * torch.randn(2, channels, length)
    codes = torch.randint(0, config.codebook_size, (2, config.num_quantizers, length // config.hop_length))
    encoder_states: list = []
    decoder_states: list = []
    with torch.no_grad():
        encoder_outputs = ["codes", "scale"] if config.normalize else ["codes"]
        _export(EncoderGraph(model), (audio,), written["encoder.onnx"], ["audio"], encoder_outputs,
                {"audio": {0: batch, 2: samples}})
        decoder_inputs = ["codes", "scale"] if config.normalize else ["codes"]
        decoder_args: tuple = (codes, torch.ones(2, 1)) if config.normalize else (codes,)
        shapes: dict[str, Any] = {"codes": {0: batch, 1: n_q, 2: frames}}
        if config.normalize:
            shapes["scale"] = {0: batch}
        _export(DecoderGraph(model), decoder_args, written["decoder.onnx"], decoder_inputs, ["audio"], shapes)
        if frames_per_step is not None:
            step = frames_per_step * config.hop_length
            encoder_step, decoder_step = EncoderStepGraph(model), DecoderStepGraph(model)
            encoder_states = encoder_step.stack.state_shapes(channels, step)
            decoder_states = decoder_step.stack.state_shapes(config.hidden_size, frames_per_step)
            _export_step(encoder_step, audio[..., :step], encoder_states, written["encoder_step.onnx"],
                         ["audio"], ["codes"], batch)
            _export_step(decoder_step, codes[..., :frames_per_step], decoder_states, written["decoder_step.onnx"],
                         ["codes"], ["audio"], batch, {1: n_q})
    data = metadata(model, frames_per_step, encoder_states, decoder_states)
    written[METADATA].write_text(json.dumps(data, indent=2) + "\n")
    _store_metadata([path for name, path in written.items() if name.endswith(".onnx")], data)
    return data


def translations(module: nn.Module) -> dict:
    sizes = {layer.hidden_size for layer in module.modules() if isinstance(layer, GraphLSTM)}
    if len(sizes) > 1:
        raise ValueError(f"LSTMs of different sizes in one graph: {sorted(sizes)}")
    return {torch.ops.encodec_fx.lstm_layer.default: lstm_translation(sizes.pop())} if sizes else {}


def _check_exporter() -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as error:
        raise ImportError(f"ONNX export needs the onnx and onnxscript packages ({error.name} is missing): "
                          "pip install 'encodec-fx[onnx]'") from None


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic: dict[str, Any]) -> None:
    _save_program(module, args, path, inputs, outputs, tuple(dynamic.get(name) for name in inputs))


def _export_step(module: nn.Module, first: torch.Tensor, state_shapes: list, path: Path, inputs: list[str],
                 outputs: list[str], batch: Any, first_dims: dict[int, Any] | None = None) -> None:
    states = tuple(torch.zeros(first.shape[0], *shape) for shape in state_shapes)
    args = (first, torch.zeros(1), *states)
    names = [*inputs, "started", *(STATE_INPUTS.format(i) for i in range(len(states)))]
    out_names = [*outputs, "next_started", *(STATE_OUTPUTS.format(i) for i in range(len(states)))]
    shapes = ({0: batch} | (first_dims or {}), None, tuple({0: batch} for _ in states))  # *states: one tuple
    _save_program(module, args, path, names, out_names, shapes)


def _save_program(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
                  shapes: tuple) -> None:
    """One graph through torch's exporter (`shapes`: the dynamic dimensions of each argument, in order)."""
    program = torch.onnx.export(module.eval(), args, dynamo=True, input_names=inputs, output_names=outputs,
                                dynamic_shapes=shapes, opset_version=OPSET, verbose=False, optimize=False,
                                custom_translation_table=translations(module))
    if program is None:
        raise RuntimeError(f"torch.onnx.export returned no program for {path.name}")
    program.save(str(path))


def _store_metadata(graphs: list[Path], data: dict[str, Any]) -> None:
    """The metadata also inside each graph (`metadata_props`), for runtimes that read only the .onnx file."""
    import onnx
    for path in graphs:
        graph = onnx.load(str(path))
        del graph.metadata_props[:]
        for key, value in data.items():
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
        onnx.save(graph, str(path))


def onnx_session(path: str | os.PathLike, threads: int = 1) -> Any:
    """An onnxruntime session on one graph with `threads` threads (the CPU provider)."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("running the graphs needs onnxruntime: pip install 'encodec-fx[onnx]'") from None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
