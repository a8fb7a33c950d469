"""Grad-free rewrites of layer operations that make fewer passes over memory.

Unless said otherwise, each gives the reference operation's result up to float rounding (about
1e-6), not bit for bit, so it serves the decoder only: the encoder's output feeds the codebooks'
nearest-code search, where a last-bit difference can change a code.
"""

from __future__ import annotations

import torch


def pad_into(out: torch.Tensor, x: torch.Tensor, left: int, right: int, mode: str,
             elu_alpha: float | None = None) -> torch.Tensor:
    """`pad1d(x, left, right, mode)` written into `out` (batch, channels, left + length + right),
    for "reflect" and "constant" (zero) padding; with `elu_alpha`, of ELU(x) instead.

    Without ELU this is a plain copy, exact. With it, ELU is written straight into the buffer and the
    edges are filled from the buffer itself (padding commutes with a pointwise function), saving a
    pass; but not bit-exact: ELU's vectorised and scalar code paths differ in the last bit, and the
    buffer's rows move which samples take the scalar path.
    """
    length = x.shape[-1]
    end = left + length
    if elu_alpha is None:
        out[..., left:end].copy_(x)
    else:
        torch.ops.aten.elu.out(x, elu_alpha, 1, 1, out=out[..., left:end])
    if mode == "reflect":
        out[..., :left] = out[..., left + 1: 2 * left + 1].flip(-1)
        out[..., end:] = out[..., end - 1 - right: end - 1].flip(-1)
    else:
        out[..., :left] = 0
        out[..., end:] = 0
    return out


def pads_into_buffer(length: int, left: int, right: int, mode: str) -> bool:
    """Whether `pad_into` handles this padding; else `pad1d`, which also reflects inputs shorter than
    the padding."""
    return mode == "constant" or (mode == "reflect" and length > max(left, right))


def pointwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution, weight (out, in), as a matrix product per batch item (as fast as
    `F.conv1d`), so that another product can accumulate into the result in place (`baddbmm_`)."""
    return torch.baddbmm(bias[:, None], weight.expand(x.shape[0], -1, -1), x)


def few_output_conv(x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor, dilation: int = 1) -> torch.Tensor:
    """Stride-1 convolution with few output channels (the decoder's last layer, 1 or 2 channels), on
    an already padded x. `taps` is the weight as (kernel * out, in) (see `tap_weights`).

    oneDNN is slow at a handful of output channels; instead one matrix product mixes the channels for
    every tap at once, and the taps' shifted rows are summed (the sums touch only out * kernel rows).
    """
    out_channels = bias.shape[0]
    kernel_size = taps.shape[0] // out_channels
    length = x.shape[-1] - (kernel_size - 1) * dilation
    mixed = torch.matmul(taps, x)  # (batch, kernel * out, padded length)
    y = mixed[:, :out_channels, :length] + bias[:, None]
    for k in range(1, kernel_size):
        start = k * dilation
        y += mixed[:, k * out_channels: (k + 1) * out_channels, start: start + length]
    return y


def tap_weights(weight: torch.Tensor) -> torch.Tensor:
    """Conv1d weight (out, in, kernel) → (kernel * out, in), rows grouped by tap, for `few_output_conv`."""
    out_channels, in_channels, kernel_size = weight.shape
    return weight.permute(2, 0, 1).reshape(kernel_size * out_channels, in_channels).contiguous()


def polyphase_weights(weight: torch.Tensor, bias: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """ConvTranspose1d weight (in, out, 2 * stride) → Conv1d weight (out * stride, in, 2) and bias.

    With kernel = 2 * stride, output sample t * stride + p is x[t] · w[..., p] + x[t - 1] · w[..., p + stride]:
    each phase p is a 2-tap convolution over x, so the whole layer is one ordinary convolution with
    `stride` times the output channels (over x padded by a zero frame on each side: T + 1 frames)
    whose phases are then interleaved (`interleave_phases`). PyTorch's CPU ConvTranspose1d goes
    through a slow col2im path instead.
    """
    in_channels, out_channels, kernel_size = weight.shape
    if kernel_size != 2 * stride:
        raise ValueError(f"the polyphase form needs kernel_size == 2 * stride, got {kernel_size} and {stride}")
    taps = torch.stack([weight[:, :, stride:], weight[:, :, :stride]], dim=-1)  # (in, out, stride, 2): x[t-1], x[t]
    phase_weight = taps.permute(1, 2, 0, 3).reshape(out_channels * stride, in_channels, 2).contiguous()
    return phase_weight, bias.repeat_interleave(stride)


def interleave_phases(z: torch.Tensor, stride: int) -> torch.Tensor:
    """(batch, out * stride, frames) phase-major → (batch, out, frames * stride) time order."""
    batch, channels, frames = z.shape
    return z.view(batch, channels // stride, stride, frames).transpose(2, 3).reshape(batch, -1, frames * stride)
