"""The loss balancer (paper §3.4): each loss's weight sets its share of the gradient, whatever its scale.

For losses l_i of the decoder output x̂ with gradients g_i = ∂l_i/∂x̂, the gradient sent back through
the decoder is  Σ_i R · λ_i / Σ_j λ_j · g_i / ⟨||g_i||⟩_β,  with ⟨·⟩_β an exponential moving average
(decay β = 0.999, bias-corrected) of the gradient norms and R = 1 the reference norm. Norms are taken
per batch item and averaged, as in the open re-implementation, so R does not grow with batch size.
Losses outside the balancer (the commitment loss) are back-propagated unscaled in the same pass.
"""

from __future__ import annotations

from typing import cast

import torch

from .settings import PAPER_WEIGHTS


class Balancer:
    """Turns loss weights into gradient shares; keeps the norm averages, which a resume must restore."""

    def __init__(self, weights: dict[str, float] | None = None, reference_norm: float = 1.0,
                 ema_decay: float = 0.999, epsilon: float = 1e-12):
        self.weights = dict(PAPER_WEIGHTS if weights is None else weights)
        self.reference_norm = reference_norm
        self.ema_decay = ema_decay
        self.epsilon = epsilon
        self.norm_sums: dict[str, float] = {}  # Σ β^k · norm, and Σ β^k, per loss: the bias-corrected EMA
        self.weight_sums: dict[str, float] = {}

    def gradients(self, losses: dict[str, torch.Tensor], output: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each loss's balanced share of the gradient with respect to `output` (graphs are kept)."""
        total_weight = sum(self.weights[name] for name in losses)
        balanced = {}
        for name, loss in losses.items():
            gradient, = torch.autograd.grad(loss, output, retain_graph=True)
            norm = self._average_norm(name, float(gradient.flatten(1).norm(dim=1).mean()))
            balanced[name] = gradient * (self.reference_norm * self.weights[name] / total_weight
                                         / (norm + self.epsilon))
        return balanced

    def backward(self, losses: dict[str, torch.Tensor], output: torch.Tensor,
                 unbalanced_loss: torch.Tensor | None = None) -> None:
        """Accumulate parameter gradients: the balanced losses through `output`, plus `unbalanced_loss` as is."""
        gradient = cast(torch.Tensor, sum(self.gradients(losses, output).values()))  # losses is not empty
        tensors, gradients = [output], [gradient]
        if unbalanced_loss is not None:
            tensors.append(unbalanced_loss)
            gradients.append(torch.ones_like(unbalanced_loss))
        torch.autograd.backward(tensors, gradients)

    def _average_norm(self, name: str, norm: float) -> float:
        self.norm_sums[name] = self.norm_sums.get(name, 0.0) * self.ema_decay + norm
        self.weight_sums[name] = self.weight_sums.get(name, 0.0) * self.ema_decay + 1.0
        return self.norm_sums[name] / self.weight_sums[name]

    def state_dict(self) -> dict:
        return {"norm_sums": dict(self.norm_sums), "weight_sums": dict(self.weight_sums)}

    def load_state_dict(self, state: dict) -> None:
        self.norm_sums = dict(state["norm_sums"])
        self.weight_sums = dict(state["weight_sums"])
