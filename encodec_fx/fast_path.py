"""The default inference path: the SEANet layers compiled once into grad-free callables.

The modules of `seanet.py` and `conv.py` stay the reference and the training path. At every call they
recompute weight norm, allocate a new tensor for each ELU, padding (even a zero-width one) and sum,
and run ConvTranspose1d through PyTorch's slow CPU col2im path. On CPU each large new tensor also
costs page faults (allocations over 32 MB come straight from mmap), often more than the pass that
fills it. Compiled here, with weights folded once:

* encoder: bit for bit the reference, because its output feeds the nearest-code search, where a
  last-bit difference can change a code. The same convolutions run on the same values; only steps
  without arithmetic change: ELUs and residual sums in place, padding copied into a reused buffer.
* decoder: within float rounding (about 1e-6) of the reference (see `kernels.py`): ELU written
  straight into the padded buffer, transposed convolutions in polyphase form, 1x1 convolutions as
  matrix products that accumulate the residual, the few-channel output layer as one product.

`FastPath.for_model` rebuilds the compiled layers whenever a parameter changed (in place, as
`load_state_dict` and optimisers do, or replaced, or moved to another device or dtype).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn
from torch.nn import functional as F

from .conv import NormConv1d, NormConvTranspose1d, pad1d
from .kernels import (
    few_output_conv,
    interleave_phases,
    pad_into,
    pads_into_buffer,
    pointwise_conv,
    polyphase_weights,
    tap_weights,
)
from .precision import dtype_of
from .seanet import ResidualUnit
from .tensor_state import TensorState

if TYPE_CHECKING:  # the model builds on this module
    from .model import EncodecModel


class Scratch:
    """One buffer for every padded input of a run, each consumed by its convolution before the next
    is made: reused memory costs no page faults."""

    def __init__(self) -> None:
        self.buffer: torch.Tensor | None = None

    def padded(self, x: torch.Tensor, left: int, right: int, mode: str,
               elu_alpha: float | None = None) -> torch.Tensor:
        """`pad1d(x)` (of ELU(x) with `elu_alpha`, see `kernels.pad_into`), valid until the next call."""
        if not pads_into_buffer(x.shape[-1], left, right, mode):
            return pad1d(x if elu_alpha is None else F.elu(x, elu_alpha), left, right, mode)
        shape = (*x.shape[:-1], left + x.shape[-1] + right)
        size = shape[0] * shape[1] * shape[2]
        if self.buffer is None or self.buffer.numel() < size or self.buffer.dtype != x.dtype \
                or self.buffer.device != x.device:
            self.buffer = x.new_empty(size)
        return pad_into(self.buffer[:size].view(shape), x, left, right, mode, elu_alpha)


class Layer(Protocol):
    def __call__(self, x: torch.Tensor, scratch: Scratch) -> torch.Tensor: ...


def folded(conv: nn.Conv1d | nn.ConvTranspose1d, dtype: torch.dtype | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """A convolution's weight (weight norm evaluated once) and bias, detached, in `dtype` if given."""
    assert conv.bias is not None  # SEANet's convolutions all have one
    return conv.weight.detach().to(dtype), conv.bias.detach().to(dtype)


# --- encoder: exact ------------------------------------------------------------------------------


class ExactConv:
    """NormConv1d as the reference computes it, on folded weights. With `activation`, the ELU
    before it runs first; `in_place` lets it overwrite the input rather than allocate."""

    def __init__(self, layer: NormConv1d, activation: nn.ELU | None = None, in_place: bool = True):
        self.layer = layer
        self.weight, self.bias = folded(layer.conv)
        self.stride, self.dilation = layer.conv.stride, layer.conv.dilation
        self.alpha = None if activation is None else activation.alpha
        self.in_place = in_place

    def __call__(self, x: torch.Tensor, scratch: Scratch) -> torch.Tensor:
        if self.alpha is not None:
            x = F.elu(x, self.alpha, inplace=self.in_place)
        left, right = self.layer.padding(x.shape[-1])
        if left or right:  # the reference copies even for no padding
            x = scratch.padded(x, left, right, self.layer.pad_mode)
        return self.layer.norm(F.conv1d(x, self.weight, self.bias, self.stride, 0, self.dilation))


class ExactResidualUnit:
    """ResidualUnit as the reference computes it; the shortcut runs first so that the block's ELU can
    overwrite the input, and the sum lands in the block's output (addition commutes exactly)."""

    def __init__(self, unit: ResidualUnit):
        elu, conv, inner_elu, projection = unit.parts()
        self.shortcut = ExactConv(unit.shortcut) if isinstance(unit.shortcut, NormConv1d) else None
        self.conv = ExactConv(conv, elu, in_place=self.shortcut is not None)  # without shortcut, x is the residual
        self.projection = ExactConv(projection, inner_elu)

    def __call__(self, x: torch.Tensor, scratch: Scratch) -> torch.Tensor:
        residual = x if self.shortcut is None else self.shortcut(x, scratch)
        return self.projection(self.conv(x, scratch), scratch).add_(residual)


# --- decoder: within rounding --------------------------------------------------------------------


class FastConv:
    """NormConv1d with the ELU before it fused into the padding; a layer with few outputs (the last)
    as a channel-mixing product and shifted sums."""

    def __init__(self, layer: NormConv1d, activation: nn.ELU | None = None, dtype: torch.dtype | None = None):
        self.layer = layer
        self.weight, self.bias = folded(layer.conv, dtype)
        self.norm = low_precision_norm(layer.norm, dtype)
        self.stride, self.dilation = layer.conv.stride[0], layer.conv.dilation[0]
        self.alpha = None if activation is None else activation.alpha
        out_channels, in_channels, kernel_size = self.weight.shape
        few_outputs = self.stride == 1 and out_channels * kernel_size <= in_channels
        self.taps = tap_weights(self.weight) if few_outputs else None

    def __call__(self, x: torch.Tensor, scratch: Scratch) -> torch.Tensor:
        x = scratch.padded(x, *self.layer.padding(x.shape[-1]), self.layer.pad_mode, self.alpha)
        if self.taps is not None:
            y = few_output_conv(x, self.taps, self.bias, self.dilation)
        else:
            y = F.conv1d(x, self.weight, self.bias, self.stride, 0, self.dilation)
        return self.norm(y)


class FastConvTranspose:
    """NormConvTranspose1d in polyphase form (see `kernels.polyphase_weights`), its ELU fused into the
    zero padding. A group norm normalises the whole untrimmed output, as the reference does: its
    statistics do not depend on the sample order, so it runs on the phase-major result, its affine
    weights repeated per phase."""

    def __init__(self, layer: NormConvTranspose1d, activation: nn.ELU | None = None,
                 dtype: torch.dtype | None = None):
        weight, bias = folded(layer.conv, dtype)
        self.stride = layer.conv.stride[0]
        self.weight, self.bias = polyphase_weights(weight, bias, self.stride)
        self.trim_left = layer.trim_left
        self.alpha = None if activation is None else activation.alpha
        self.group_norm = None
        if isinstance(layer.norm, nn.GroupNorm):
            self.group_norm = (layer.norm.weight.detach().to(dtype).repeat_interleave(self.stride),
                               layer.norm.bias.detach().to(dtype).repeat_interleave(self.stride), layer.norm.eps)

    def __call__(self, x: torch.Tensor, scratch: Scratch) -> torch.Tensor:
        frames = x.shape[-1]
        # T frames give (T + 1) * stride samples; when only the right end is trimmed, the last frame is not needed
        right = 1 if self.trim_left or self.group_norm else 0
        z = F.conv1d(scratch.padded(x, 1, right, "constant", self.alpha), self.weight, self.bias)
        if self.group_norm is not None:
            weight, bias, eps = self.group_norm
            z = F.group_norm(z, 1, weight, bias, eps)
        y = interleave_phases(z, self.stride)
        return y[..., self.trim_left: self.trim_left + frames * self.stride]


class FastResidualUnit:
    """ResidualUnit with its 1x1 convolutions as matrix products; without norms both products and
    biases accumulate into one tensor, so the residual sum costs no pass of its own."""

    def __init__(self, unit: ResidualUnit, dtype: torch.dtype | None = None):
        elu, conv, inner_elu, projection = unit.parts()
        self.conv = FastConv(conv, elu, dtype)
        self.inner_alpha = inner_elu.alpha
        self.weight, self.bias = (w.squeeze(-1) for w in folded(projection.conv, dtype))
        self.norm = low_precision_norm(projection.norm, dtype)
        self.shortcut = unit.shortcut if isinstance(unit.shortcut, NormConv1d) else None
        if self.shortcut is not None:
            self.shortcut_weight, self.shortcut_bias = (w.squeeze(-1) for w in folded(self.shortcut.conv, dtype))
            self.shortcut_norm = low_precision_norm(self.shortcut.norm, dtype)
        self.fused_sum = self.shortcut is not None and all(
            isinstance(module.norm, nn.Identity) for module in (projection, self.shortcut))

    def __call__(self, x: torch.Tensor, scratch: Scratch) -> torch.Tensor:
        h = F.elu(self.conv(x, scratch), self.inner_alpha, inplace=True)
        if self.fused_sum:
            out = pointwise_conv(x, self.shortcut_weight, self.shortcut_bias + self.bias)
            return out.baddbmm_(self.weight.expand(x.shape[0], -1, -1), h)
        residual = x if self.shortcut is None else self.shortcut_norm(
            pointwise_conv(x, self.shortcut_weight, self.shortcut_bias))
        return self.norm(pointwise_conv(h, self.weight, self.bias)).add_(residual)


class ModuleLayer:
    """A layer kept as its module (SkipLSTM: nn.LSTM has no faster form here); for another `dtype`, a
    copy in it (the LSTM has no weight norm, so it copies as it is)."""

    def __init__(self, module: nn.Module, dtype: torch.dtype | None = None):
        self.module = module if dtype is None else copy.deepcopy(module).to(dtype)

    def __call__(self, x: torch.Tensor, scratch: Scratch) -> torch.Tensor:
        return self.module(x)


def low_precision_norm(norm: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    """The norm after a convolution (identity or a group norm) for activations in `dtype`."""
    return norm if dtype is None or isinstance(norm, nn.Identity) else copy.deepcopy(norm).to(dtype)


# --- compilation ---------------------------------------------------------------------------------


def compile_layers(layers: Iterable[nn.Module], exact: bool, dtype: torch.dtype | None = None) -> list[Layer]:
    """One callable per layer, the ELUs joined to the convolution that follows each; with `dtype`
    (decoder only), weights and activations in that dtype."""
    compiled: list[Layer] = []
    activation = None
    for layer in layers:
        if isinstance(layer, nn.ELU):
            activation = layer
        else:
            compiled.append(compile_layer(layer, activation, exact, dtype))
            activation = None
    return compiled


def compile_layer(layer: nn.Module, activation: nn.ELU | None, exact: bool, dtype: torch.dtype | None = None
                  ) -> Layer:
    if isinstance(layer, NormConv1d):
        return ExactConv(layer, activation) if exact else FastConv(layer, activation, dtype)
    if isinstance(layer, NormConvTranspose1d):  # decoder only
        return FastConvTranspose(layer, activation, dtype)
    if activation is not None:
        raise TypeError(f"an ELU before {type(layer).__name__}: SEANet puts ELUs before convolutions only")
    if isinstance(layer, ResidualUnit):
        return ExactResidualUnit(layer) if exact else FastResidualUnit(layer, dtype)
    return ModuleLayer(layer, dtype)


def run(layers: Iterable[Layer], x: torch.Tensor) -> torch.Tensor:
    scratch = Scratch()
    for layer in layers:
        x = layer(x, scratch)
    return x


class FastPath:
    """The model's encoder and decoder compiled for inference, and the parameters they came from."""

    def __init__(self, model: EncodecModel):
        self.sources = parameter_state(model)
        self.decoder_layers = model.decoder.layers  # to compile lower precisions from, when first asked
        with torch.no_grad():
            self.encoder = compile_layers(model.encoder.layers, exact=True)
            self.decoder = compile_layers(model.decoder.layers, exact=False)
        self.decoders: dict[str, list[Layer]] = {"exact": self.decoder}

    @classmethod
    def for_model(cls, model: EncodecModel, cached: FastPath | None) -> FastPath:
        """`cached` if the model's parameters are still those it was compiled from, else a new one."""
        if cached is not None and cached.sources == parameter_state(model):
            return cached
        return cls(model)

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """Audio (B, C, L) → embeddings, bit for bit `model.encoder(audio)`; audio is not modified."""
        return run(self.encoder, audio)

    def decode(self, embeddings: torch.Tensor, precision: str = "exact") -> torch.Tensor:
        """Embeddings → audio, `model.decoder(embeddings)` within float rounding, or at a lower
        `precision` (see `encodec_fx.precision`), in the embeddings' dtype."""
        if precision == "exact":
            return run(self.decoder, embeddings)
        dtype = dtype_of(precision)
        if precision not in self.decoders:
            with torch.no_grad():
                self.decoders[precision] = compile_layers(self.decoder_layers, exact=False, dtype=dtype)
        return run(self.decoders[precision], embeddings.to(dtype)).to(embeddings.dtype)


def parameter_state(model: EncodecModel) -> list[TensorState]:
    modules = (model.encoder, model.decoder)
    return [TensorState(t) for module in modules for t in (*module.parameters(), *module.buffers())]
