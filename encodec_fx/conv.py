"""Convolutions with EnCodec's padding rules and normalisation (weight norm or time group norm).

Padding is what makes the model length-exact: a strided convolution sees its input padded so the
output has ceil(L / stride) frames, causally (all padding on the left) or centred.
"""

from __future__ import annotations

import math
from typing import TypeVar

import torch
from torch import nn
from torch.nn import functional as F

from .config import EncodecConfig


def pad1d(x: torch.Tensor, left: int, right: int, mode: str) -> torch.Tensor:
    """`F.pad` that also reflects inputs shorter than the padding (zero-extended first, then trimmed)."""
    if mode != "reflect":
        return F.pad(x, (left, right), mode)
    length = x.shape[-1]
    extra = max(left, right) - length + 1 if length <= max(left, right) else 0
    if extra:
        x = F.pad(x, (0, extra))
    padded = F.pad(x, (left, right), mode)
    return padded[..., : padded.shape[-1] - extra]


_Conv = TypeVar("_Conv", nn.Conv1d, nn.ConvTranspose1d)


def _normalised(config: EncodecConfig, conv: _Conv, out_channels: int) -> tuple[_Conv, nn.Module]:
    """The convolution and the norm that follows it: weight norm lives inside the conv (the same
    module, its weight computed from the parametrisation)."""
    if config.norm_type == "weight_norm":
        return nn.utils.parametrizations.weight_norm(conv), nn.Identity()
    return conv, nn.GroupNorm(1, out_channels)


class NormConv1d(nn.Module):
    """Conv1d padded so that L samples give ceil(L / stride) outputs, followed by its norm."""

    def __init__(self, config: EncodecConfig, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, dilation: int = 1):
        super().__init__()
        self.causal = config.use_causal_conv
        self.pad_mode = config.pad_mode
        self.stride = stride
        self.padding_total = (kernel_size - 1) * dilation + 1 - stride
        conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride, dilation=dilation)
        self.conv, self.norm = _normalised(config, conv, out_channels)

    def padding(self, length: int) -> tuple[int, int]:
        """Left and right padding for an input of `length` samples."""
        extra = -length % self.stride  # reach a whole number of strides
        if self.causal:
            return self.padding_total, extra
        right = self.padding_total // 2
        return self.padding_total - right, right + extra

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pad1d(x, *self.padding(x.shape[-1]), mode=self.pad_mode)
        x = self.norm(self.conv(x))
        return x


class NormConvTranspose1d(nn.Module):
    """ConvTranspose1d followed by its norm, trimmed so F frames give F * stride samples."""

    def __init__(self, config: EncodecConfig, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1):
        super().__init__()
        padding_total = kernel_size - stride
        if config.use_causal_conv:
            self.trim_right = math.ceil(padding_total * config.trim_right_ratio)
        else:
            self.trim_right = padding_total // 2
        self.trim_left = padding_total - self.trim_right
        conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride)
        self.conv, self.norm = _normalised(config, conv, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        return x[..., self.trim_left: x.shape[-1] - self.trim_right]
