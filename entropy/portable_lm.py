"""The entropy LM's coding arithmetic, bit-identical on every CPU.

A range decoder recovers the encoder's symbols only from bit-identical probabilities. Float
inference does not give that across machines: BLAS and vectorised kernels add in orders that
depend on the instruction set (AVX2, AVX-512, NEON), the library build and the thread count, and
one differing ulp desynchronises the decoder (measured: an archive coded with torch's AVX-512
kernels fails to decode under ATEN_CPU_CAPABILITY=avx2). `PortableLM` runs the same network with
arithmetic whose every result IEEE 754 defines exactly:

- matrix products multiply 7-bit integers (weights rounded per output row, activations per row),
  in int8 kernels or in float32, where every partial sum stays under 2^24: either way any
  summation order gives the exact product; the row scales multiply afterwards;
- attention multiplies rounded queries and keys, then integer softmax weights and fixed-point
  values, in float32 with every partial sum at most 2^24: exact again;
- other sums (LayerNorm statistics, softmax totals) add integers, exact in float64 or int64;
- exp and erf come from tables computed once with Python's `decimal` (software arithmetic, the same
  everywhere), sine and cosine from a polynomial of + and ×;
- everything else is elementwise +, −, ×, ÷, √ or rounding, each exactly defined by IEEE 754;
  an `intra_frame` LM's embeddings of the frame's coarser codes are added to the head input one
  codebook after the other, in codebook order.

It takes the float `EntropyLM`'s weights as they are, without retraining: on the shipped LM and
real codes the rounding changes the cross-entropy by about 0.1 % or less (measured −0.11 % at
1.5 kbps, −0.03 % at 6 kbps; tests/test_portable_lm.py holds it under 0.1 % at 6 kbps), and a step
costs 1.5–1.8 times a float step (`benchmarks/entropy_coding.py`). `EntropyLM.step` stays the
reference for parity with the original LM and for training.
"""
from __future__ import annotations

import functools
import math
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from entropy.lm import EntropyLM, LMState

EXACT_FLOAT32 = 1 << 24  # integers up to this magnitude are exact in float32
EXACT_FLOAT64 = 1 << 53
# Weights rounded to integers in [-63, 63] per output row, activations likewise per row: 7 bits keep
# int8 kernels exact on AVX2 too (their 16-bit pair sums saturate with wider operands).
WEIGHT_LEVELS = 63
ACTIVATION_LEVELS = 63
NORM_LEVELS = 1 << 20  # LayerNorm inputs rounded to this many steps of their row's largest entry
ATTENTION_BITS = 12  # attention weights are integers summing to at most 2^12 ...
VALUE_STEP_BITS, VALUE_LIMIT_BITS = 7, 12  # ... values integer steps of 2^-7 up to ±2^12 (±32)
STEPS_PER_NAT = 64  # softmax inputs rounded to 1/64 nat before the exp table
EXP_BITS = 24  # the exp table's largest entry is 2^24 (constriction's precision)
PHI_STEPS, PHI_RANGE = 128, 6  # GELU's normal CDF computed at steps of 1/128 on [-6, 6] ...
PHI_UPSAMPLE = 8  # ... and interpolated linearly to steps of 1/1024, read at the nearest step
_TINY = 1e-30  # a scale's floor, so that an all-zero row divides safely
_DIGITS = 40  # decimal precision of the tables
_PI = Decimal("3.14159265358979323846264338327950288419716939937510")
_SINE_SERIES = [(-1) ** k / math.factorial(2 * k + 1) for k in range(10)]  # of r, r^3, ... r^19
_COSINE_SERIES = [(-1) ** k / math.factorial(2 * k) for k in range(10)]  # of 1, r^2, ... r^18


@functools.cache
def exp_table(bits: int) -> Tensor:
    """round(2^bits · exp(-d / STEPS_PER_NAT)) for d = 0, 1, ... while it is at least 1 (int64)."""
    with localcontext() as context:
        context.prec = _DIGITS
        one = Decimal(1 << bits)
        values: list[int] = []
        while True:
            value = int((one * (Decimal(-len(values)) / STEPS_PER_NAT).exp()).to_integral_value(ROUND_HALF_EVEN))
            if value < 1:
                return torch.tensor(values, dtype=torch.int64)
            values.append(value)


@functools.cache
def normal_cdf_table() -> Tensor:
    """Φ at steps of 1/(PHI_STEPS·PHI_UPSAMPLE) on [-PHI_RANGE, PHI_RANGE] (float32): the series
    erf(z) = 2/√π Σ (-1)^n z^(2n+1) / (n! (2n+1)) at every PHI_UPSAMPLE-th point, linear between."""
    with localcontext() as context:
        context.prec = _DIGITS
        two_over_sqrt_pi, sqrt_two = 2 / _PI.sqrt(), Decimal(2).sqrt()
        upper = []
        for i in range(PHI_STEPS * PHI_RANGE + 1):
            z = Decimal(i) / PHI_STEPS / sqrt_two
            term, total, n = z, z, 0
            while abs(term) > Decimal(10) ** -(_DIGITS - 5):
                n += 1
                term = -term * z * z / n
                total += term / (2 * n + 1)
            upper.append((1 + two_over_sqrt_pi * total) / 2)
    coarse = torch.tensor([float(1 - value) for value in reversed(upper[1:])] + [float(v) for v in upper],
                          dtype=torch.float64)
    fraction = torch.arange(PHI_UPSAMPLE, dtype=torch.float64) / PHI_UPSAMPLE
    fine = coarse[:-1, None] + (coarse[1:] - coarse[:-1])[:, None] * fraction
    return torch.cat([fine.flatten(), coarse[-1:]]).float()


def sin_cos(phase: Tensor) -> tuple[Tensor, Tensor]:
    """Sine and cosine of float64 phases from + and × alone (Taylor series after reducing to
    [-π/4, π/4]), so that every platform gets the same bits; accurate to ~1e-15 for |phase| < 1e4."""
    quadrant = torch.round(phase * (2 / math.pi))
    r = (phase - quadrant * 1.5707963267948966) - quadrant * 6.123233995736766e-17
    r2 = r * r
    sin_r, cos_r = torch.full_like(r, _SINE_SERIES[-1]), torch.full_like(r, _COSINE_SERIES[-1])
    for sine_term, cosine_term in zip(_SINE_SERIES[-2::-1], _COSINE_SERIES[-2::-1]):
        sin_r, cos_r = sin_r * r2 + sine_term, cos_r * r2 + cosine_term
    sin_r = sin_r * r
    turn = quadrant.long() % 4
    sine = torch.where(turn == 0, sin_r, torch.where(turn == 1, cos_r, torch.where(turn == 2, -sin_r, -cos_r)))
    cosine = torch.where(turn == 0, cos_r, torch.where(turn == 1, -sin_r, torch.where(turn == 2, -cos_r, sin_r)))
    return sine, cosine


def _row_scale(x: Tensor, levels: int) -> Tensor:
    """Per-row step that maps the row's largest magnitude to `levels`."""
    return x.abs().amax(-1, keepdim=True).clamp_min(_TINY) / levels


@functools.cache
def int8_products_are_exact() -> bool:
    """Whether `torch._int_mm` multiplies integers within ±63 exactly on this machine. Its int8
    kernels should (the AVX2 ones add pairs of products in saturating 16-bit lanes, which overflow
    only for wider operands: measured with ONEDNN_MAX_CPU_ISA=AVX2), but this is checked once on
    extreme and random values of several shapes rather than trusted."""
    if not hasattr(torch, "_int_mm"):
        return False
    generator = torch.Generator().manual_seed(0)
    for rows, width, columns in ((1, 200, 1024), (5, 800, 200), (16, 200, 600), (40, 64, 72)):
        extreme = torch.tensor([63, -63] * 32).repeat(-(-width // 64))[:width]
        activations = torch.stack([extreme.abs(), -extreme.abs(), extreme, *torch.randint(
            -63, 64, (rows, width), generator=generator)])[:rows].to(torch.int8)
        weights = torch.stack([extreme.abs(), -extreme.abs(), -extreme, *torch.randint(
            -63, 64, (columns, width), generator=generator)])[:columns].T.to(torch.int8)
        try:
            product = torch._int_mm(activations, weights)
        except RuntimeError:
            return False
        if not torch.equal(product.double(), activations.double() @ weights.double()):
            return False
    return True


class IntegerLinear:
    """A linear layer whose product is exact: weights and activations rounded to 7-bit integers (each
    row to its own step) are multiplied by `torch._int_mm` where `int8_products_are_exact`, else in
    float32, whose sums of such products stay exact too; both give the same results."""

    def __init__(self, weight: Tensor, bias: Tensor, int8: bool | None = None):
        weight = weight.detach().float().cpu()
        if WEIGHT_LEVELS * ACTIVATION_LEVELS * weight.shape[1] >= EXACT_FLOAT32:
            raise ValueError(f"input width {weight.shape[1]} is too large for exact products")
        self.int8 = int8_products_are_exact() if int8 is None else int8
        self.scale = _row_scale(weight, WEIGHT_LEVELS).squeeze(-1)
        integers = torch.round(weight / self.scale.unsqueeze(-1)).T  # [in, out]
        self.weight = integers.to(torch.int8) if self.int8 else integers.contiguous()
        self.bias = bias.detach().float().cpu()

    def __call__(self, x: Tensor) -> Tensor:
        """x [..., in] float32 → [..., out]."""
        step = _row_scale(x, ACTIVATION_LEVELS)
        rows = (x / step).round_().flatten(0, -2)
        if self.int8:
            product = torch._int_mm(rows.to(torch.int8), self.weight).float()
        else:
            product = rows @ self.weight
        return product.view(*x.shape[:-1], -1).mul_(step).mul_(self.scale).add_(self.bias)


class IntegerLayerNorm:
    """LayerNorm whose mean and variance are sums of integers (exact in float64)."""

    def __init__(self, norm: torch.nn.LayerNorm):
        self.weight = norm.weight.detach().double().cpu()
        self.bias = norm.bias.detach().double().cpu()
        self.eps = norm.eps
        if self.weight.shape[0] * NORM_LEVELS ** 2 >= EXACT_FLOAT64:
            raise ValueError(f"width {self.weight.shape[0]} is too large for exact LayerNorm sums")

    def __call__(self, x: Tensor) -> Tensor:
        width = x.shape[-1]
        step = _row_scale(x, NORM_LEVELS).double()
        q = (x.double() / step).round_()
        mean = q.sum(-1, keepdim=True) / width
        variance = (q * q).sum(-1, keepdim=True) / width - mean * mean
        normalised = (q - mean) / (variance + self.eps / (step * step)).sqrt_()
        return normalised.mul_(self.weight).add_(self.bias).float()


@contextmanager
def ieee_products() -> Iterator[None]:
    """oneDNN's float32 matrix products in IEEE float32 within the block: "bf16", which also
    `torch.set_float32_matmul_precision("medium")` selects, rounds their operands, and exactness
    need not survive that. Restores the caller's setting after."""
    matmul = torch.backends.mkldnn.matmul  # type: ignore[attr-defined]  # torch's hints for the module omit it
    previous = matmul.fp32_precision
    matmul.fp32_precision = "ieee"
    try:
        yield
    finally:
        matmul.fp32_precision = previous


class NextFrame:
    """One frame's prediction, read codebook by codebook in order: `probabilities(k)` is codebook
    k's distribution; an `intra_frame` LM needs codebook k-1's codes `observe`d before it. Head k's
    input is the transformer's output plus, in that order, the embeddings of codebooks 0..k-1."""

    def __init__(self, lm: PortableLM, hidden: Tensor, n_codebooks: int):
        self.lm, self.head_input, self.n_codebooks, self.observed = lm, hidden, n_codebooks, 0

    @torch.no_grad()
    def probabilities(self, k: int) -> np.ndarray:
        """[B, card] float32, C-contiguous."""
        return self.lm._probabilities(self.logit_steps(k))

    @torch.no_grad()
    def logit_steps(self, k: int) -> Tensor:
        """Codebook k's distribution as integers [B, card] (int64): how far each entry's logit lies below
        the row's largest, in steps of 1/STEPS_PER_NAT nat; exp_table(EXP_BITS) at them gives the
        integer weights behind `probabilities(k)`. What an adaptive model mixes with (entropy.adaptive)."""
        if not 0 <= k < self.n_codebooks:
            raise ValueError(f"codebook {k} is not one of this frame's 0..{self.n_codebooks - 1}")
        if self.lm.config.intra_frame and k != self.observed:
            raise ValueError(f"codebook {k}'s distribution needs the codes of codebooks 0..{k - 1} "
                             f"observed first; {self.observed} are")
        with ieee_products():
            return self.lm._logit_steps(self.lm.heads[k](self.head_input))

    def observe(self, k: int, codes: np.ndarray) -> None:
        """Codebook k's codes [B] in this frame (used only by an `intra_frame` LM)."""
        if not self.lm.config.intra_frame:
            return
        if k != self.observed:
            raise ValueError(f"codebooks are observed in order: expected {self.observed}, got {k}")
        self.lm._check_codes(codes)
        if k + 1 < self.n_codebooks:
            indices = torch.from_numpy(np.asarray(codes, dtype=np.int64))
            self.head_input = self.head_input + self.lm.intra[k].index_select(0, indices)
        self.observed += 1


@dataclass
class _Layer:
    in_proj: IntegerLinear
    out_proj: IntegerLinear
    linear1: IntegerLinear
    linear2: IntegerLinear
    norm1: IntegerLayerNorm
    norm2: IntegerLayerNorm


@dataclass
class PortableState(LMState):
    """`LMState` whose keys are integers (in float32) with a step per key (`key_steps`, [B,
    heads, capacity, 1] per layer) and whose values are integers in steps of 2^-VALUE_STEP_BITS."""

    key_steps: tuple[Tensor, ...] = ()

    def append_with_steps(self, layer: int, keys: Tensor, values: Tensor, key_steps: Tensor) -> None:
        """`append`, with the keys' steps."""
        self.append(layer, keys, values)
        self.key_steps[layer][:, :, self.end:self.end + 1] = key_steps

    def buffers(self) -> tuple[Tensor, ...]:
        return super().buffers() + self.key_steps


class PortableLM:
    """`EntropyLM.step` in platform-independent arithmetic: the probabilities a range coder uses.
    It runs on the CPU, wherever the `EntropyLM` it is built from lives."""

    def __init__(self, lm: EntropyLM):
        self.config = c = lm.config
        self.num_heads = c.num_heads
        head_dim = c.dim // c.num_heads
        # Queries and keys get equal levels, as many as keep a head_dim-long dot product exact.
        self.qk_levels = math.isqrt(EXACT_FLOAT32 // head_dim)
        if self.qk_levels < 15:
            raise ValueError(f"head width {head_dim} is too large for exact attention scores")
        self.score_scale = 1 / math.sqrt(head_dim)
        self.embeddings = [emb.weight.detach().float().cpu() for emb in lm.embeddings()]
        self.norm_in = IntegerLayerNorm(lm.norm_in())
        self.layers = [_Layer(IntegerLinear(layer.self_attn.in_proj_weight, layer.self_attn.in_proj_bias),
                              IntegerLinear(layer.self_attn.out_proj.weight, layer.self_attn.out_proj.bias),
                              IntegerLinear(layer.linear1.weight, layer.linear1.bias),
                              IntegerLinear(layer.linear2.weight, layer.linear2.bias),
                              IntegerLayerNorm(layer.norm1), IntegerLayerNorm(layer.norm2))
                       for layer in lm.encoder_layers()]
        self.heads = [IntegerLinear(linear.weight, linear.bias) for linear in lm.head_linears()]
        self.intra = [emb.weight.detach().float().cpu() for emb in lm.intra_embeddings()] if c.intra_frame else []
        self._positions = torch.empty(0, c.dim)

    def initial_state(self, batch_size: int = 1, n_codebooks: int | None = None) -> PortableState:
        """As `EntropyLM.initial_state`: every layer's cache starts with the all-zero frame's entry."""
        n_codebooks = self.config.n_q if n_codebooks is None else n_codebooks
        if not 1 <= n_codebooks <= self.config.n_q:
            raise ValueError(f"n_codebooks must be in 1..{self.config.n_q}, got {n_codebooks}")
        zero_frame = torch.zeros(batch_size, 1, self.config.dim)
        capacity = 2 * self.config.past_context + 1
        shape = (batch_size, self.num_heads, capacity, self.config.dim // self.num_heads)
        keys = tuple(torch.zeros(shape) for _ in self.layers)
        values = tuple(torch.zeros(shape) for _ in self.layers)
        key_steps = tuple(torch.zeros(*shape[:3], 1) for _ in self.layers)
        state = PortableState(keys, values, 0, 0, 0, n_codebooks, key_steps)
        for index, layer in enumerate(self.layers):
            state.append_with_steps(index, *self._keys_values(layer.in_proj(zero_frame)))
        state.end = 1
        return state

    def step(self, previous_codes: np.ndarray | None, state: PortableState,
             codes: np.ndarray | None = None) -> np.ndarray:
        """Probabilities [B, K, card] (float32, C-contiguous) of the next frame given the raw codes
        [B, K] of the frame before (None for the first); updates `state` in place. An `intra_frame`
        LM also needs the frame's own `codes` [B, K], as `EntropyLM.step` does; a decoder, which
        learns them one codebook at a time, goes through `next_frame` instead."""
        shape = (state.keys[0].shape[0], state.n_codebooks)
        if self.config.intra_frame and (codes is None or codes.shape != shape):
            raise ValueError(f"an intra_frame LM needs the frame's codes [{shape[0]}, {shape[1]}]")
        frame = self.next_frame(previous_codes, state)
        rows = []
        for k in range(state.n_codebooks):
            rows.append(frame.probabilities(k))
            if self.config.intra_frame and codes is not None:  # not None: checked above
                frame.observe(k, codes[:, k])
        return np.ascontiguousarray(np.stack(rows, axis=1))

    @torch.no_grad()
    def next_frame(self, previous_codes: np.ndarray | None, state: PortableState) -> NextFrame:
        """Runs the transformer one frame on, given the raw codes [B, K] of the frame before (None
        for the first), and returns the frame's prediction, to be read codebook by codebook;
        updates `state` in place."""
        batch, n_codebooks = state.keys[0].shape[0], state.n_codebooks
        if previous_codes is None:
            indices = torch.zeros(batch, n_codebooks, dtype=torch.long)
        else:
            if previous_codes.shape != (batch, n_codebooks):
                raise ValueError(f"previous_codes must have shape [{batch}, {n_codebooks}], "
                                 f"got {tuple(previous_codes.shape)}")
            self._check_codes(previous_codes)
            indices = torch.from_numpy(np.asarray(previous_codes, dtype=np.int64)) + 1
        state.make_room()
        with ieee_products():
            x = self.embeddings[0].index_select(0, indices[:, 0])
            for k in range(1, n_codebooks):
                x = x + self.embeddings[k].index_select(0, indices[:, k])
            x = (self.norm_in(x) + self._position(state.offset)).unsqueeze(1)
            for index, layer in enumerate(self.layers):
                x = self._layer_step(layer, x, state, index)
        state.advance(self.config.past_context)
        return NextFrame(self, x.squeeze(1), n_codebooks)

    def _check_codes(self, codes: np.ndarray) -> None:
        if codes.size and (codes.min() < 0 or codes.max() >= self.config.card):
            raise ValueError(f"codes must lie in 0..{self.config.card - 1}")

    def _layer_step(self, layer: _Layer, x: Tensor, state: PortableState, index: int) -> Tensor:
        """One frame x [B, 1, dim] through a post-norm layer, attending to the cache and itself."""
        projected = layer.in_proj(x)
        queries = self._split_heads(projected[..., :self.config.dim])
        query_steps = _row_scale(queries, self.qk_levels)
        state.append_with_steps(index, *self._keys_values(projected))
        window = slice(state.start, state.end + 1)
        keys, values = state.keys[index][:, :, window], state.values[index][:, :, window]
        dots = torch.matmul((queries / query_steps).round_(), keys.transpose(-1, -2))
        key_steps = state.key_steps[index][:, :, window].transpose(-1, -2)
        scores = dots.mul_(query_steps).mul_(key_steps).mul_(self.score_scale)  # nats
        weights = self._softmax_weights(scores)
        weights = torch.div(weights << ATTENTION_BITS, weights.sum(-1, keepdim=True), rounding_mode="floor")
        attended = torch.matmul(weights.float(), values).div_(weights.sum(-1, keepdim=True).float())
        attended = attended.mul_(2.0 ** -VALUE_STEP_BITS).transpose(1, 2).flatten(2)
        x = layer.norm1(x + layer.out_proj(attended))
        return layer.norm2(x + layer.linear2(self._gelu(layer.linear1(x))))

    def _keys_values(self, projected: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Keys and values as integers (in float32), and the keys' steps, of in_proj's output [B, 1, 3·dim]."""
        keys, values = self._split_heads(projected[..., self.config.dim:]).chunk(2, dim=-1)
        key_steps = _row_scale(keys, self.qk_levels)
        limit = float(1 << VALUE_LIMIT_BITS)
        fixed_values = (values * float(1 << VALUE_STEP_BITS)).round_().clamp_(-limit, limit)
        return (keys / key_steps).round_(), fixed_values, key_steps

    def _split_heads(self, x: Tensor) -> Tensor:
        """[B, T, n·heads·head_dim] → [B, heads, T, n·head_dim], each head's n parts side by side."""
        return x.unflatten(-1, (-1, self.num_heads, self.config.dim // self.num_heads)
                           ).permute(0, 3, 1, 2, 4).flatten(3)

    @staticmethod
    def _logit_steps(logits: Tensor) -> Tensor:
        """How far each logit lies below its row's largest, in steps of 1/STEPS_PER_NAT nat (int64),
        clamped to the last entry of exp_table(EXP_BITS)."""
        steps = (logits * STEPS_PER_NAT).round_().clamp_(-2.0 ** 40, 2.0 ** 40).long()
        return (steps.amax(-1, keepdim=True) - steps).clamp_(max=len(exp_table(EXP_BITS)) - 1)

    @classmethod
    def _softmax_weights(cls, logits: Tensor) -> Tensor:
        """Integer weights (int64) proportional to softmax(logits) over the last dim, at most 2^EXP_BITS."""
        below_max = cls._logit_steps(logits)
        return exp_table(EXP_BITS).index_select(0, below_max.flatten()).view(below_max.shape)

    @staticmethod
    def _probabilities(below_max: Tensor) -> np.ndarray:
        """Float32 probabilities [..., card] of logit steps (`_logit_steps`), C-contiguous."""
        weights = exp_table(EXP_BITS).index_select(0, below_max.flatten()).view(below_max.shape)
        probabilities = weights.double() / weights.sum(-1, keepdim=True).double()
        return np.ascontiguousarray(probabilities.float().numpy())

    @staticmethod
    def _gelu(x: Tensor) -> Tensor:
        """x·Φ(x), Φ read from its table at the nearest step."""
        steps = PHI_STEPS * PHI_UPSAMPLE
        middle = steps * PHI_RANGE
        index = (x * steps).round_().clamp_(-middle, middle).long().add_(middle)
        return x * normal_cdf_table().index_select(0, index.flatten()).view(x.shape)

    def _position(self, offset: int) -> Tensor:
        """Sinusoidal embedding [dim] of position `offset`, from a table grown by doubling."""
        if offset >= len(self._positions):
            self._positions = self._position_table(max(2 * len(self._positions), offset + 1, 1024))
        return self._positions[offset]

    def _position_table(self, length: int) -> Tensor:
        half = self.config.dim // 2
        with localcontext() as context:
            context.prec = _DIGITS
            log_period = Decimal(self.config.max_period).ln()
            frequencies = [float((-log_period * i / (half - 1)).exp()) for i in range(half)]
        phase = torch.arange(length, dtype=torch.float64).unsqueeze(1) * torch.tensor(frequencies,
                                                                                     dtype=torch.float64)
        sine, cosine = sin_cos(phase)
        return torch.cat([cosine, sine], dim=-1).float()
