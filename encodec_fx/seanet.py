"""SEANet encoder and decoder: the convolutional halves of EnCodec.

Layers sit in one `nn.ModuleList` at the same indices as in the transformers port, so state dict
keys (`encoder.layers.N.…`) match its checkpoints without renaming.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import EncodecConfig
from .conv import NormConv1d, NormConvTranspose1d


class ResidualUnit(nn.Module):
    """ELU, dilated conv (dim → dim/compress), ELU, 1x1 conv back to dim; plus a shortcut."""

    def __init__(self, config: EncodecConfig, dim: int, dilation: int):
        super().__init__()
        hidden = dim // config.compress
        self.block = nn.ModuleList([
            nn.ELU(),
            NormConv1d(config, dim, hidden, config.residual_kernel_size, dilation=dilation),
            nn.ELU(),
            NormConv1d(config, hidden, dim, 1),
        ])
        self.shortcut = NormConv1d(config, dim, dim, 1) if config.use_conv_shortcut else nn.Identity()

    def parts(self) -> tuple[nn.ELU, NormConv1d, nn.ELU, NormConv1d]:
        """The block's layers, typed (to mypy a ModuleList holds plain Modules)."""
        elu, conv, inner_elu, projection = self.block
        assert isinstance(elu, nn.ELU) and isinstance(conv, NormConv1d)
        assert isinstance(inner_elu, nn.ELU) and isinstance(projection, NormConv1d)
        return elu, conv, inner_elu, projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut(x)
        for layer in self.block:
            x = layer(x)
        return residual + x


class SkipLSTM(nn.Module):
    """LSTM over time on (batch, channels, time) tensors, with a residual connection."""

    def __init__(self, config: EncodecConfig, dim: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, config.num_lstm_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(2, 0, 1)
        x = self.lstm(x)[0] + x
        return x.permute(1, 2, 0)


class SequentialLayers(nn.Module):
    layers: nn.ModuleList

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class Encoder(SequentialLayers):
    """Audio (B, C, L) → embeddings (B, hidden_size, ceil(L / hop_length))."""

    def __init__(self, config: EncodecConfig):
        super().__init__()
        dim = config.num_filters
        layers: list[nn.Module] = [NormConv1d(config, config.audio_channels, dim, config.kernel_size)]
        for ratio in reversed(config.upsampling_ratios):
            layers += [ResidualUnit(config, dim, config.dilation_growth_rate**j)
                       for j in range(config.num_residual_layers)]
            layers += [nn.ELU(), NormConv1d(config, dim, dim * 2, kernel_size=2 * ratio, stride=ratio)]
            dim *= 2
        layers += [SkipLSTM(config, dim), nn.ELU(),
                   NormConv1d(config, dim, config.hidden_size, config.last_kernel_size)]
        self.layers = nn.ModuleList(layers)


class Decoder(SequentialLayers):
    """Embeddings (B, hidden_size, F) → audio (B, C, F * hop_length)."""

    def __init__(self, config: EncodecConfig):
        super().__init__()
        dim = config.num_filters * 2 ** len(config.upsampling_ratios)
        layers: list[nn.Module] = [NormConv1d(config, config.hidden_size, dim, config.kernel_size),
                                   SkipLSTM(config, dim)]
        for ratio in config.upsampling_ratios:
            layers += [nn.ELU(), NormConvTranspose1d(config, dim, dim // 2, kernel_size=2 * ratio, stride=ratio)]
            dim //= 2
            layers += [ResidualUnit(config, dim, config.dilation_growth_rate**j)
                       for j in range(config.num_residual_layers)]
        layers += [nn.ELU(), NormConv1d(config, dim, config.audio_channels, config.last_kernel_size)]
        self.layers = nn.ModuleList(layers)
