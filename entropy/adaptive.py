"""A model of the segment's own codes, learnt while coding and mixed into the portable LM's distribution
(coding mode "lm-adaptive"), in integer arithmetic only.

Why: the LM was trained on other audio and generalises weakly to a file it never saw; the file's own
statistics, counted as its codes go by, know what the LM does not. Both sides learn them from codes
already coded, so they cost no header bytes.

Per row (payload) and codebook, three log-probabilities of every entry, in fixed point (2^LOG_BITS per
nat):
- the LM's: minus its logit steps (`NextFrame.logit_steps`);
- order 0: (2n + 1) / (2N + 2·card), n the entry's count among the codebook's codes so far in the row
  and N their number (Krichevsky–Trofimov);
- order 1: (c + β·p0) / (C + β), c counting the entry among the codes that followed the same context
  (C of them) and p0 the order-0 probability; the context is the code of the codebook before in the
  same frame (codebook 0: its own code one frame before), which a decoder knows by then.
They are mixed geometrically, s = Σ w_i·f_i, then exponentiated with the LM's own table. The weights
start at (1, 0, 0), the LM alone, and each coded code moves them one gradient step on its log loss,
w_i += η·(f_i(code) − E_p[f_i]): the mixture drifts towards whatever predicts this segment.

Every quantity is an int64 (logarithms from a table computed once with `decimal`; sums of integers,
which no summation order changes; shifts and floor divisions), and the float32 probabilities handed to
the range coder are one IEEE division of integers, as `PortableLM`'s are: encoder and decoder get the
same bits on every CPU and thread count. Each row's state is its own, so payloads still decode alone
or in any batch.
"""
from __future__ import annotations

import functools
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import numpy as np

from entropy.portable_lm import EXP_BITS, STEPS_PER_NAT, exp_table

LOG_BITS = 10  # log-probabilities in steps of 2^-10 nat
WEIGHT_BITS = 12  # mixing weights in steps of 2^-12 (1.0 = 4096)
WEIGHT_LIMIT = 16 << WEIGHT_BITS  # |w| ≤ 16: keeps every product far inside int64
LEARNING_RATE, LEARNING_SHIFT = 41, 10  # weight step per unit of gradient: 41/1024 ≈ 0.01 per nat
SMOOTHING = 8  # β: counts an order-1 context needs before its own counts outweigh order 0
FEATURES = 3  # LM, order 0, order 1
_STEP_BITS = STEPS_PER_NAT.bit_length() - 1  # the LM's logit steps are 2^-_STEP_BITS nat
_TABLE_BITS = 12  # the log table holds 1 .. 2^12 - 1; larger integers drop low bits first
_DIGITS = 40


@functools.cache
def log_table() -> np.ndarray:
    """round(2^LOG_BITS · ln i) for i = 0 .. 2^_TABLE_BITS - 1 (entry 0 unused), int64."""
    with localcontext() as context:
        context.prec = _DIGITS
        one = Decimal(1 << LOG_BITS)
        values = [0] + [int((one * Decimal(i).ln()).to_integral_value(ROUND_HALF_EVEN))
                        for i in range(1, 1 << _TABLE_BITS)]
    return np.array(values, dtype=np.int64)


@functools.cache
def _ln2() -> int:
    with localcontext() as context:
        context.prec = _DIGITS
        return int((Decimal(1 << LOG_BITS) * Decimal(2).ln()).to_integral_value(ROUND_HALF_EVEN))


def fixed_log(values: np.ndarray) -> np.ndarray:
    """2^LOG_BITS · ln(v) of integers 1 ≤ v < 2^53 (int64): the table at v's leading 12 bits, plus
    ln 2 per bit dropped (relative error under 2^-11). float64 holds such v exactly, so frexp's
    exponent is exact too."""
    values = np.asarray(values, dtype=np.int64)
    shift = np.maximum(np.frexp(values.astype(np.float64))[1] - _TABLE_BITS, 0)
    return log_table()[values >> shift] + shift * _ln2()


class AdaptiveMixer:
    """The adaptive part of lm-adaptive coding for a batch of rows: per frame, `start_frame()`, then per
    codebook in order `probabilities(k, lm_steps)` and, once its codes are known, `observe(k, codes,
    active)` (rows not active, e.g. ended, learn nothing)."""

    def __init__(self, batch: int, n_codebooks: int, card: int):
        if 1 << _STEP_BITS != STEPS_PER_NAT or _STEP_BITS > LOG_BITS:
            raise ValueError(f"the LM's {STEPS_PER_NAT} steps per nat must be a power of 2 up to 2^{LOG_BITS}")
        self.card, self.n_codebooks = card, n_codebooks
        self.counts = np.zeros((batch, n_codebooks, card), np.int64)
        self.totals = np.zeros((batch, n_codebooks), np.int64)
        self.followers: list[dict[tuple[int, int], list[int]]] = [{} for _ in range(batch)]
        self.weights = np.zeros((batch, n_codebooks, FEATURES), np.int64)
        self.weights[..., 0] = 1 << WEIGHT_BITS
        self.previous = np.full((batch, n_codebooks), -1, np.int64)
        self.current = np.full((batch, n_codebooks), -1, np.int64)
        self._pending: tuple[int, list[np.ndarray], np.ndarray, np.ndarray] | None = None

    def start_frame(self) -> None:
        """The frame before becomes the context of codebook 0's next codes."""
        self.previous, self.current = self.current, np.full_like(self.current, -1)

    def probabilities(self, k: int, lm_steps: np.ndarray) -> np.ndarray:
        """Codebook k's mixed distribution [B, card] (float32, C-contiguous) from the LM's logit steps
        [B, card] (int64, as `NextFrame.logit_steps` gives them)."""
        features, contexts = self._features(k, np.asarray(lm_steps, dtype=np.int64))
        weights_k = self.weights[:, k]
        mixed = weights_k[:, :1] * features[0]  # 2^-(LOG_BITS+WEIGHT_BITS) nat
        for index in range(1, FEATURES):
            mixed += weights_k[:, index:index + 1] * features[index]
        shift = LOG_BITS + WEIGHT_BITS - _STEP_BITS  # back to the LM's steps, rounded
        table = exp_table(EXP_BITS).numpy()
        below = (mixed.max(-1, keepdims=True) - mixed + (1 << (shift - 1))) >> shift
        weights = table[np.minimum(below, len(table) - 1)]
        self._pending = (k, features, weights, contexts)
        totals = weights.sum(-1, keepdims=True)
        return np.ascontiguousarray((weights.astype(np.float64) / totals.astype(np.float64)).astype(np.float32))

    def observe(self, k: int, codes: np.ndarray, active: np.ndarray) -> None:
        """Codebook k's codes [B] of this frame: rows where `active` is true learn from them."""
        if self._pending is None or self._pending[0] != k:
            raise ValueError(f"codebook {k}'s codes are observed after its probabilities, once")
        _, features, weights, contexts = self._pending
        self._pending = None
        codes = np.asarray(codes, dtype=np.int64)
        rows = np.flatnonzero(np.asarray(active, dtype=bool))
        weights, totals = weights[rows], weights[rows].sum(-1)
        chosen = np.stack([feature[rows, codes[rows]] for feature in features], axis=-1)  # [n, FEATURES]
        expected = np.stack([(weights * feature[rows]).sum(-1) // totals for feature in features], axis=-1)
        step = ((chosen - expected) * LEARNING_RATE) >> LEARNING_SHIFT
        self.weights[rows, k] = np.clip(self.weights[rows, k] + step, -WEIGHT_LIMIT, WEIGHT_LIMIT)
        self.counts[rows, k, codes[rows]] += 1
        self.totals[rows, k] += 1
        self.current[rows, k] = codes[rows]
        for row in rows:
            if contexts[row] >= 0:
                self.followers[row].setdefault((k, int(contexts[row])), []).append(int(codes[row]))

    def _features(self, k: int, lm_steps: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """FEATURES log-probabilities [B, card] (2^-LOG_BITS nat) and each row's order-1 context (-1: none)."""
        batch, card = self.counts.shape[0], self.card
        contexts = self.current[:, k - 1] if k > 0 else self.previous[:, 0]
        followed = np.zeros((batch, card), np.int64)
        for row, context in enumerate(contexts):
            seen = self.followers[row].get((k, int(context))) if context >= 0 else None
            if seen:
                followed[row] = np.bincount(seen, minlength=card)
        kt = 2 * self.counts[:, k] + 1  # order 0: kt / scale
        scale = (2 * self.totals[:, k] + 2 * card)[:, None]
        order0 = fixed_log(kt) - fixed_log(scale)
        followers = followed.sum(-1, keepdims=True)
        order1 = fixed_log(scale * followed + SMOOTHING * kt) - fixed_log(scale * (followers + SMOOTHING))
        lm = -lm_steps << (LOG_BITS - _STEP_BITS)
        return [lm, order0, order1], contexts
