"""The causal model's layers computed block by block, each keeping what it needs of the past.

Each takes (batch, channels, time) blocks: `push(x)` returns every output that x completes;
`finish(x)` takes the stream's last block and returns all that is left, then forgets the stream;
`output_length(n)` is how many outputs `push` has returned once n inputs are in. `StreamingLayers`
runs a SEANet layer list this way; `streaming.py` builds the encoder and decoder on it.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from .conv import NormConv1d, NormConvTranspose1d, pad1d
from .fast_path import folded
from .kernels import few_output_conv, tap_weights
from .seanet import ResidualUnit, SkipLSTM

WINDOWS_BELOW, STRIDED_WINDOWS_BELOW = 128, 512
"""How a streaming convolution computes a block, chosen per call from its stride and number of
outputs. Below these many outputs (stride 1, strided): one matrix product of the input's windows by
the weight. From there, stride 1: one product per tap over shifted columns, accumulated; strided:
`F.conv1d` (oneDNN). A layer with one input channel always takes the windows. Measured on the
24 kHz model's layers, one thread: on blocks of a few hundred samples oneDNN's convolution costs
45-130 us a call, two to three times the products; streaming the shipped model in 512-sample
stereo blocks became 19 % faster with these thresholds than with oneDNN from 16 outputs on."""


class StreamingConv1d:
    """A causal NormConv1d that keeps the input it still needs: the receptive field minus a stride.

    The buffer holds the input as the offline layer sees it, left padding included, from the
    first output not yet computed onwards. How the convolution is computed depends on the number
    of outputs (see `WINDOWS_BELOW`); a layer with few output channels (the decoder's last) is a
    channel-mixing product and shifted sums (`kernels.few_output_conv`).
    """

    def __init__(self, layer: NormConv1d, dtype: torch.dtype | None = None):
        conv = layer.conv
        with torch.no_grad():
            weight, self.bias = folded(conv, dtype)  # through weight norm: computed once, not per block
        self.out_channels, self.in_channels, self.kernel_size = weight.shape
        self.conv_weight = weight
        self.tap_matrices = weight.permute(2, 0, 1).contiguous()  # (kernel, out, in)
        self.weight = weight.permute(1, 2, 0).reshape(-1, self.out_channels).contiguous()  # (in * kernel, out)
        self.taps = tap_weights(weight) if self.out_channels * self.kernel_size <= self.in_channels else None
        self.stride, self.dilation = conv.stride[0], conv.dilation[0]
        self.left_padding = layer.padding_total
        self.pad_mode = layer.pad_mode
        if self.left_padding < self.stride - 1:
            raise ValueError(f"a convolution with stride {self.stride} and padding {self.left_padding} keeps too "
                             "little context to reflect-pad the end of the stream")
        self.reset()

    def reset(self) -> None:
        self.buffer: torch.Tensor | None = None
        self.padded = False  # whether the buffer starts with the left padding yet
        self.length = 0  # input samples received

    def push(self, x: torch.Tensor) -> torch.Tensor:
        self.length += x.shape[-1]
        self.buffer = x if self.buffer is None else torch.cat([self.buffer, x], dim=-1)
        if not self.padded:
            if self.buffer.shape[-1] <= self.left_padding:  # reflecting needs samples 1..pad
                return self._empty(self.buffer)
            self.buffer = pad1d(self.buffer, self.left_padding, 0, self.pad_mode)
            self.padded = True
        frames = (self.buffer.shape[-1] - self.left_padding) // self.stride
        if frames == 0:
            return self._empty(self.buffer)
        out = self._conv(self.buffer[..., : frames * self.stride + self.left_padding])
        self.buffer = self.buffer[..., frames * self.stride:]
        return out

    def output_length(self, input_length: int) -> int:
        return input_length // self.stride if input_length > self.left_padding else 0

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        """The rest, padded on the right up to a whole stride as the offline layer pads it."""
        out = self.push(x)
        buffer = self.buffer
        assert buffer is not None  # push keeps its input
        right_padding = -self.length % self.stride
        if self.length and not self.padded:  # too short to have started: the offline layer on all of it
            out = self._conv(pad1d(buffer, self.left_padding, right_padding, self.pad_mode))
        elif right_padding:  # one last, partial stride
            out = torch.cat([out, self._conv(pad1d(buffer, 0, right_padding, self.pad_mode))], dim=-1)
        self.reset()
        return out

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        span = (self.kernel_size - 1) * self.dilation + 1
        frames = (x.shape[-1] - span) // self.stride + 1
        if self.taps is not None and self.stride == 1:  # the last decoder layer: 1 or 2 outputs
            return few_output_conv(x, self.taps, self.bias, self.dilation)
        windows_below = WINDOWS_BELOW if self.stride == 1 else STRIDED_WINDOWS_BELOW
        if (frames < windows_below and self.kernel_size > 1) or self.in_channels == 1:
            windows = x.unfold(-1, span, self.stride)[..., :: self.dilation]  # (batch, in, frames, kernel)
            windows = windows.transpose(1, 2).flatten(2)  # (batch, frames, in * kernel)
            return torch.addmm(self.bias, windows.flatten(0, 1), self.weight) \
                .view(x.shape[0], -1, self.out_channels).transpose(1, 2)
        if self.stride > 1:
            return F.conv1d(x, self.conv_weight, self.bias, self.stride, 0, self.dilation)
        out = torch.matmul(self.tap_matrices[0], x[..., :frames]).add_(self.bias[:, None])
        for k in range(1, self.kernel_size):
            start = k * self.dilation
            out.add_(torch.matmul(self.tap_matrices[k], x[..., start: start + frames]))
        return out

    def _empty(self, buffer: torch.Tensor) -> torch.Tensor:
        return buffer.new_empty(buffer.shape[0], self.out_channels, 0)


class StreamingConvTranspose1d:
    """A causal NormConvTranspose1d that keeps the partial sums its last frames add to later outputs.

    Output samples [t * stride, (t + 1) * stride) are complete once frame t is in; what is left
    at the end of the stream is what the offline layer trims off. All frames' contributions are one
    matrix product (frames first, for speed: see StreamingConv1d); the kernel, zero-extended to
    `pieces` whole strides, gives each frame `pieces` stride-long pieces, and output stride t is
    the sum of piece j of frame t - j (the polyphase form: no col2im)."""

    def __init__(self, layer: NormConvTranspose1d, dtype: torch.dtype | None = None):
        conv = layer.conv
        with torch.no_grad():
            weight, bias = folded(conv, dtype)  # through weight norm: computed once, not per block
        in_channels, self.out_channels, kernel_size = weight.shape
        self.stride = conv.stride[0]
        self.pieces = -(-kernel_size // self.stride)
        weight = F.pad(weight, (0, self.pieces * self.stride - kernel_size))
        # (in, pieces * out * stride): piece-major, so that each piece is a contiguous slice
        self.weight = weight.view(in_channels, self.out_channels, self.pieces, self.stride) \
            .permute(0, 2, 1, 3).reshape(in_channels, -1).contiguous()
        self.bias = bias[:, None]
        self.reset()

    def reset(self) -> None:
        self.partial_sums: torch.Tensor | None = None  # (batch, pieces - 1, out, stride)

    def output_length(self, input_length: int) -> int:
        return input_length * self.stride

    def push(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, frames = x.shape
        if frames == 0:
            return x.new_empty(batch, self.out_channels, 0)
        rows = x.transpose(1, 2).reshape(batch * frames, -1)
        # as a batch of one: for a row or two, MKL's batched product skips packing the weight
        contributions = torch.bmm(rows[None], self.weight[None]) \
            .view(batch, frames, self.pieces, self.out_channels, self.stride)
        # y[:, t] = sum over j of piece j of frame t - j, for t up to frames + pieces - 2
        y = x.new_zeros(batch, frames + self.pieces - 1, self.out_channels, self.stride)
        for piece in range(self.pieces):
            y[:, piece: piece + frames] += contributions[:, :, piece]
        if self.partial_sums is not None:
            y[:, : self.pieces - 1] += self.partial_sums
        self.partial_sums = y[:, frames:]
        out = y[:, :frames].permute(0, 2, 1, 3).reshape(batch, self.out_channels, frames * self.stride)
        return out.add_(self.bias)

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        out = self.push(x)
        self.reset()
        return out


class StreamingLSTM:
    """A SkipLSTM that carries each layer's (h, c) state from block to block.

    The cells are written out: `nn.LSTM` on CPU (oneDNN) reorders its weights at every call,
    which costs more than the few steps of a block."""

    def __init__(self, layer: SkipLSTM, dtype: torch.dtype | None = None):
        lstm = layer.lstm
        self.layers = []  # per layer: input weight, recurrent weight (transposed for x @ w), bias
        for index in range(lstm.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = (getattr(lstm, f"{name}_l{index}").detach().to(dtype)
                                                      for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            self.layers.append((weight_ih.t().contiguous(), weight_hh.t().contiguous(), bias_ih + bias_hh))
        self.reset()

    def reset(self) -> None:
        self.states: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def output_length(self, input_length: int) -> int:
        return input_length

    def push(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == 0:
            return x
        if self.states is None:
            zeros = x.new_zeros(x.shape[0], self.layers[0][1].shape[0])
            self.states = [(zeros, zeros)] * len(self.layers)
        time, batch, channels = x.shape[-1], x.shape[0], x.shape[1]
        y = x.permute(2, 0, 1).reshape(time * batch, channels)  # time-major rows
        hidden = channels
        for index, (weight_ih, weight_hh, bias) in enumerate(self.layers):
            inputs = torch.addmm(bias, y, weight_ih).view(time, batch, 4 * hidden)  # the input's share, all steps
            h, c = self.states[index]
            y = x.new_empty(time, batch, hidden)
            for step in range(time):
                gates = torch.addmm(inputs[step], h, weight_hh)
                activated = torch.sigmoid(gates)  # the cell gate's sigmoid is not used: tanh below
                in_gate, forget_gate, _, out_gate = activated.chunk(4, dim=1)
                c = torch.addcmul(forget_gate * c, in_gate, torch.tanh(gates[:, 2 * hidden: 3 * hidden]))
                h = torch.mul(out_gate, torch.tanh(c), out=y[step])
            self.states[index] = (h, c)
            y = y.view(time * batch, hidden)
        return y.view(time, batch, hidden).permute(1, 2, 0) + x

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        out = self.push(x)
        self.reset()
        return out


class StreamingPointwise:
    """A layer that acts on each sample alone (the ELU): nothing to keep."""

    def __init__(self, layer: nn.Module):
        self.layer = layer

    def reset(self) -> None:
        pass

    def output_length(self, input_length: int) -> int:
        return input_length

    def push(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class StreamingResidualUnit:
    """A ResidualUnit: the block's convolution starts late (it waits for its left padding), so the
    inputs wait for their block outputs before the shortcut adds them. The block's closing 1x1
    convolution and the shortcut keep no state: both products accumulate into one tensor, with
    both biases, as a block's few hundred samples make each separate step cost more in calls than
    in arithmetic."""

    def __init__(self, unit: ResidualUnit, dtype: torch.dtype | None = None):
        elu, conv, inner_elu, projection = unit.parts()
        self.alpha, self.inner_alpha = elu.alpha, inner_elu.alpha
        self.conv = StreamingConv1d(conv, dtype)
        with torch.no_grad():  # through weight norm: computed once, not per block
            projection_weight, bias = folded(projection.conv, dtype)
            self.projection = projection_weight.squeeze(-1)
            self.shortcut = None
            if isinstance(unit.shortcut, NormConv1d):
                shortcut_weight, shortcut_bias = folded(unit.shortcut.conv, dtype)
                self.shortcut = shortcut_weight.squeeze(-1)
                bias = bias + shortcut_bias
        self.bias = bias[:, None]
        self.reset()

    def reset(self) -> None:
        self.conv.reset()
        self.waiting: torch.Tensor | None = None  # inputs whose block output is not out yet

    def output_length(self, input_length: int) -> int:
        return self.conv.output_length(input_length)

    def push(self, x: torch.Tensor) -> torch.Tensor:
        self._wait(x)
        return self._sum(self.conv.push(F.elu(x, self.alpha)))

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        self._wait(x)
        out = self._sum(self.conv.finish(F.elu(x, self.alpha)))
        self.reset()
        return out

    def _sum(self, hidden: torch.Tensor) -> torch.Tensor:
        """shortcut(inputs) + projection(ELU(hidden)), for as many inputs as `hidden` has samples."""
        inputs = self._take(hidden.shape[-1])
        hidden = F.elu(hidden, self.inner_alpha, inplace=True)
        batch = hidden.shape[0]
        out = torch.baddbmm(self.bias, self.projection.expand(batch, -1, -1), hidden)
        if self.shortcut is None:
            return out.add_(inputs)
        return out.baddbmm_(self.shortcut.expand(batch, -1, -1), inputs)

    def _wait(self, x: torch.Tensor) -> None:
        self.waiting = x if self.waiting is None else torch.cat([self.waiting, x], dim=-1)

    def _take(self, length: int) -> torch.Tensor:
        waiting = self.waiting
        assert waiting is not None  # _wait came first
        taken, self.waiting = waiting[..., :length], waiting[..., length:]
        return taken


StreamingLayer = StreamingConv1d | StreamingConvTranspose1d | StreamingLSTM | StreamingPointwise | StreamingResidualUnit


def streaming_layer(layer: nn.Module, dtype: torch.dtype | None = None) -> StreamingLayer:
    """The streaming counterpart of one SEANet layer, sharing its weights (copies in `dtype` if given)."""
    if isinstance(layer, NormConv1d):
        return StreamingConv1d(layer, dtype)
    if isinstance(layer, NormConvTranspose1d):
        return StreamingConvTranspose1d(layer, dtype)
    if isinstance(layer, SkipLSTM):
        return StreamingLSTM(layer, dtype)
    if isinstance(layer, ResidualUnit):
        return StreamingResidualUnit(layer, dtype)
    if isinstance(layer, nn.ELU):
        return StreamingPointwise(layer)
    raise TypeError(f"no streaming version of layer {type(layer).__name__}")


class StreamingLayers:
    """A layer list run block by block: each layer passes on what it completes; with `dtype`, weights and
    activations in that dtype (the decoder at a lower precision)."""

    def __init__(self, layers: Iterable[nn.Module], dtype: torch.dtype | None = None):
        self.layers = [streaming_layer(layer, dtype) for layer in layers]

    def reset(self) -> None:
        for layer in self.layers:
            layer.reset()

    def output_length(self, input_length: int) -> int:
        for layer in self.layers:
            input_length = layer.output_length(input_length)
        return input_length

    def push(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer.push(x)
        return x

    def push_in_passes(self, x: torch.Tensor, pass_length: int) -> torch.Tensor:
        """`push`, `pass_length` steps of x at a time: the same stream, with fewer intermediates alive."""
        return torch.cat([self.push(piece) for piece in x.split(pass_length, dim=-1)], dim=-1)

    def finish(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer.finish(x)
        return x
