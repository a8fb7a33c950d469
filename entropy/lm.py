"""Entropy-coding language model over EnCodec codebook tokens (paper §3.3).

At frame t the model sees the codes of frame t-1, one embedding per codebook summed
into a single vector, and predicts a distribution over the `card` entries of every
codebook at frame t. With `intra_frame` (our addition, off for the original's
checkpoints) codebook k's head also sees the codes of codebooks 0..k-1 at frame t: an
embedding of each is added to the transformer's output before head k. Residual
quantisation makes a code depend strongly on the coarser codes of its own frame
(measured on the shipped codec: knowing codebook 1's code at frame t saves 0.86 bits of
codebook 2's, twice what its own previous code saves; a trained LM, which infers much of
it from earlier frames, still codes 1.2-3 % fewer bits with it), and a decoder has them,
as it decodes a frame's codebooks in order.

`EntropyLM.step` predicts one frame at a time with a cache of attention state, in float
arithmetic (the reference, equal to the original's within 1e-6); range coding runs the
same network as a `PortableLM` (entropy/portable_lm.py), whose probabilities are
bit-identical on every machine. `EntropyLM.forward` runs whole sequences for training.

Parameter names follow the original `encodec.model.LMModel`, so its checkpoints load
as they are (`load_original_lm`); our own weights travel as safetensors with the
config in the file's metadata (`save_lm`, `load_lm`). Shipped LMs are found by name in
`encodec_fx` (`encodec_fx.load_lm`), which this package never imports.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, TypeVar

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from entropy.atomic import replacing


@dataclass(frozen=True)
class LMConfig:
    """Sizes of an `EntropyLM`; `dataclasses.asdict` makes it JSON-serialisable."""

    n_q: int = 32  # codebooks the model can take and predict
    card: int = 1024  # entries per codebook
    dim: int = 200
    num_heads: int = 8
    num_layers: int = 5
    hidden_scale: float = 4.0  # feed-forward width = int(dim * hidden_scale)
    past_context: int = 262  # earlier frames that attention may see
    max_period: float = 10000.0  # longest period of the sinusoidal positions
    intra_frame: bool = False  # heads also see the frame's coarser codes (see the module docstring)

    def __post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise ValueError(f"dim {self.dim} is not divisible by num_heads {self.num_heads}")
        if self.dim % 2 or self.dim < 4:
            raise ValueError(f"dim {self.dim} must be even and at least 4 (cosine + sine halves)")
        if self.past_context < 1:
            raise ValueError(f"past_context must be at least 1, got {self.past_context}")

    @property
    def hidden_dim(self) -> int:
        return int(self.dim * self.hidden_scale)


# past_context = int(3.5 * frame_rate): 75 frames/s at 24 kHz, 150 frames/s at 48 kHz.
LM_24KHZ = LMConfig(n_q=32, past_context=262)
LM_48KHZ = LMConfig(n_q=16, past_context=525)


@dataclass
class LMState:
    """What `EntropyLM.step` carries from one frame to the next; `step` updates it in place.

    keys, values: per layer, buffers [B, heads, capacity, head_dim] whose slots start..end hold the
    attention keys and values of the latest frames (at most past_context), so that a step projects
    only its own frame. The buffers have room for about twice the window: the window slides along
    them and moves back to the front only once every ~past_context steps.
    offset: frames consumed so far, i.e. the position of the next frame.
    n_codebooks: codebooks fed in and predicted (a bandwidth may use fewer than n_q).
    """

    keys: tuple[Tensor, ...]
    values: tuple[Tensor, ...]
    start: int
    end: int
    offset: int
    n_codebooks: int

    def window(self, layer: int) -> tuple[Tensor, Tensor]:
        return self.keys[layer][:, :, self.start:self.end], self.values[layer][:, :, self.start:self.end]

    def append(self, layer: int, keys: Tensor, values: Tensor) -> None:
        """Write one frame's keys/values [B, heads, 1, head_dim] after the window."""
        self.keys[layer][:, :, self.end:self.end + 1] = keys
        self.values[layer][:, :, self.end:self.end + 1] = values

    def make_room(self) -> None:
        """Move the window to the front of the buffers when no slot is left after it."""
        if self.end < self.keys[0].shape[2]:
            return
        length = self.end - self.start
        for buffer in self.buffers():
            buffer[:, :, :length] = buffer[:, :, self.start:self.end].clone()
        self.start, self.end = 0, length

    def buffers(self) -> tuple[Tensor, ...]:
        """Every per-layer buffer whose slots follow the window (what `make_room` moves)."""
        return self.keys + self.values

    def advance(self, past_context: int) -> None:
        """After a step has appended its frame: the window takes it in and keeps the latest
        past_context frames."""
        self.end += 1
        self.start = max(self.start, self.end - past_context)
        self.offset += 1


def sinusoidal_positions(start: int, length: int, dim: int, max_period: float,
                         device: torch.device | None = None) -> Tensor:
    """[length, dim] embedding of positions start..: cosines in the first half, then sines."""
    half = dim // 2
    positions = torch.arange(start, start + length, device=device).unsqueeze(1).float()
    periods = max_period ** (torch.arange(half, device=device).float() / (half - 1))
    phase = positions / periods
    return torch.cat([phase.cos(), phase.sin()], dim=-1)


class SelfAttention(nn.Module):
    """Multi-head attention of the current frames over [cached frames, current frames].

    Parameters are laid out as in `nn.MultiheadAttention`: in_proj_weight stacks Wq, Wk, Wv.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: Tensor, context: Tensor, mask: Tensor | None) -> Tensor:
        keys, values = self.keys_values(context)
        return self.attend(x, keys, values, mask)

    def keys_values(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of frames x [B, T, dim], each [B, heads, T, head_dim]."""
        dim = x.shape[-1]
        keys, values = F.linear(x, self.in_proj_weight[dim:], self.in_proj_bias[dim:]).chunk(2, dim=-1)
        return self._heads(keys), self._heads(values)

    def attend(self, x: Tensor, keys: Tensor, values: Tensor, mask: Tensor | None) -> Tensor:
        dim = x.shape[-1]
        queries = self._heads(F.linear(x, self.in_proj_weight[:dim], self.in_proj_bias[:dim]))
        attended = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask)
        return self.out_proj(attended.transpose(1, 2).flatten(2))

    def _heads(self, x: Tensor) -> Tensor:
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)


class EncoderLayer(nn.Module):
    """Post-norm transformer layer (as `nn.TransformerEncoderLayer`, GELU, no dropout)."""

    def __init__(self, dim: int, num_heads: int, hidden_dim: int):
        super().__init__()
        self.self_attn = SelfAttention(dim, num_heads)
        self.linear1 = nn.Linear(dim, hidden_dim)
        self.linear2 = nn.Linear(hidden_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: Tensor, past: Tensor, mask: Tensor | None) -> Tensor:
        """x attends to [past inputs, x] (training: whole sequences)."""
        return self._feed_forward(x + self.self_attn(x, torch.cat([past, x], dim=1), mask))

    def step(self, x: Tensor, state: LMState, layer: int) -> Tensor:
        """One frame x [B, 1, dim] attends to the cached keys/values and its own (appended to the
        cache in the slot after the window)."""
        state.append(layer, *self.self_attn.keys_values(x))
        keys, values = state.keys[layer], state.values[layer]
        window = slice(state.start, state.end + 1)
        attended = self.self_attn.attend(x, keys[:, :, window], values[:, :, window], None)
        return self._feed_forward(x + attended)

    def _feed_forward(self, x: Tensor) -> Tensor:
        x = self.norm1(x)
        return self.norm2(x + self.linear2(F.gelu(self.linear1(x))))


class EntropyLM(nn.Module):
    """Predicts every codebook's distribution at frame t from the codes of frame t-1."""

    def __init__(self, config: LMConfig = LM_24KHZ):
        super().__init__()
        self.config = c = config
        self.emb = nn.ModuleList(nn.Embedding(c.card + 1, c.dim) for _ in range(c.n_q))
        # A ModuleDict keeps the original's names: transformer.norm_in, transformer.layers.N.
        self.transformer = nn.ModuleDict({
            "norm_in": nn.LayerNorm(c.dim),
            "layers": nn.ModuleList(EncoderLayer(c.dim, c.num_heads, c.hidden_dim)
                                    for _ in range(c.num_layers)),
        })
        self.linears = nn.ModuleList(nn.Linear(c.dim, c.card) for _ in range(c.n_q))
        if c.intra_frame:  # one embedding per codebook whose code a finer codebook's head sees
            intra = [nn.Embedding(c.card, c.dim) for _ in range(c.n_q - 1)]
            for embedding in intra:
                nn.init.normal_(embedding.weight, std=0.02)  # small beside the LayerNormed output
            self.intra = nn.ModuleList(intra)

    def forward(self, codes: Tensor) -> Tensor:
        """Teacher-forced logits for training.

        codes: [B, K, T] raw codebook entries (0..card-1, not shifted) of the frames to
        predict, K <= n_q. Returns logits [B, K, T, card] where [:, k, t] predicts
        codes[:, k, t] from the frames before t; `log_softmax(-1)` gives log-probabilities.
        """
        if codes.dim() != 3 or codes.shape[-1] == 0:
            raise ValueError(f"codes must have shape [B, K, T>=1], got {tuple(codes.shape)}")
        batch, n_codebooks, length = codes.shape
        self._check_codes(codes)
        previous = F.pad(codes[..., :-1] + 1, (1, 0))  # index 0: no previous frame
        zero_frame = self.head_linears()[0].weight.new_zeros(batch, 1, self.config.dim)
        # Frame i sits at key position i + 1 after the initial zero frame; it may see
        # itself and the past_context positions before it.
        delta = torch.arange(1, length + 1).unsqueeze(1) - torch.arange(length + 1)
        mask = ((delta >= 0) & (delta <= self.config.past_context)).to(codes.device)
        x = self._input(previous, offset=0)
        for layer in self.encoder_layers():
            x = layer(x, zero_frame, mask)
        return self._heads(x, n_codebooks, codes)

    def initial_state(self, batch_size: int = 1, n_codebooks: int | None = None) -> LMState:
        """State before the first frame of a stream (n_codebooks defaults to n_q)."""
        n_codebooks = self.config.n_q if n_codebooks is None else n_codebooks
        if not 1 <= n_codebooks <= self.config.n_q:
            raise ValueError(f"n_codebooks must be in 1..{self.config.n_q}, got {n_codebooks}")
        # The original starts every layer's cache with one all-zero frame that the first
        # past_context frames attend to; the trained weights expect it.
        zero_frame = self.head_linears()[0].weight.new_zeros(batch_size, 1, self.config.dim)
        capacity = 2 * self.config.past_context + 1
        keys, values = [], []
        for layer in self.encoder_layers():
            key, value = layer.self_attn.keys_values(zero_frame)
            keys.append(key.new_zeros(*key.shape[:2], capacity, key.shape[-1]))
            values.append(value.new_zeros(*value.shape[:2], capacity, value.shape[-1]))
            keys[-1][:, :, :1], values[-1][:, :, :1] = key, value
        return LMState(tuple(keys), tuple(values), 0, 1, 0, n_codebooks)

    @torch.no_grad()
    def step(self, previous_codes: Tensor | None, state: LMState, codes: Tensor | None = None
             ) -> tuple[Tensor, LMState]:
        """Distributions of the next frame: probabilities [B, K, card], each row summing to 1.
        Updates `state` in place (and returns it).

        previous_codes: raw codes [B, K] of the frame before, or None for the first frame.
        codes: the raw codes [B, K] of the frame predicted, which an `intra_frame` model needs
        (row k is then the distribution of codebook k given codes[:, :k]); others ignore it.
        Work per frame is bounded by past_context, however long the stream. The float
        results depend on the batch, thread count and CPU kind: coding uses `PortableLM`.
        """
        batch, n_codebooks = state.keys[0].shape[0], state.n_codebooks
        if previous_codes is None:
            indices = torch.zeros(batch, n_codebooks, 1, dtype=torch.long,
                                  device=state.keys[0].device)
        else:
            if previous_codes.shape != (batch, n_codebooks):
                raise ValueError(f"previous_codes must have shape [{batch}, {n_codebooks}], "
                                 f"got {tuple(previous_codes.shape)}")
            self._check_codes(previous_codes)
            indices = previous_codes.unsqueeze(-1) + 1
        if self.config.intra_frame:  # checked before the state moves on
            if codes is None or codes.shape != (batch, n_codebooks):
                raise ValueError(f"an intra_frame LM needs the frame's codes [{batch}, {n_codebooks}]")
            self._check_codes(codes)
            codes = codes.unsqueeze(-1)
        state.make_room()
        x = self._input(indices, state.offset)
        for index, layer in enumerate(self.encoder_layers()):
            x = layer.step(x, state, index)
        state.advance(self.config.past_context)
        return self._heads(x, n_codebooks, codes).squeeze(2).softmax(dim=-1), state

    def load_weights(self, state: Mapping[str, Tensor]) -> None:
        """Loads a state dict in the original layout, naming any key that does not fit."""
        expected = self.state_dict()
        missing = sorted(expected.keys() - state.keys())
        unexpected = sorted(state.keys() - expected.keys())
        if missing or unexpected:
            raise ValueError(f"LM weights do not match the model: missing keys {missing}, "
                             f"unexpected keys {unexpected}")
        for key, tensor in expected.items():
            if state[key].shape != tensor.shape:
                raise ValueError(f"LM weight {key} has shape {tuple(state[key].shape)}, "
                                 f"the model expects {tuple(tensor.shape)}")
        self.load_state_dict(state)

    # Typed views of the submodules (to mypy, a ModuleDict's or ModuleList's items are plain Modules).

    def embeddings(self) -> list[nn.Embedding]:
        return _items(self.emb, nn.Embedding)

    def intra_embeddings(self) -> list[nn.Embedding]:
        return _items(self.intra, nn.Embedding)

    def norm_in(self) -> nn.LayerNorm:
        norm = self.transformer["norm_in"]
        assert isinstance(norm, nn.LayerNorm)
        return norm

    def encoder_layers(self) -> list[EncoderLayer]:
        return _items(self.transformer["layers"], EncoderLayer)

    def head_linears(self) -> list[nn.Linear]:
        return _items(self.linears, nn.Linear)

    def _check_codes(self, codes: Tensor) -> None:
        """codes: [B, K, ...] raw entries."""
        if not 1 <= codes.shape[1] <= self.config.n_q:
            raise ValueError(f"the LM takes 1..{self.config.n_q} codebooks, got {codes.shape[1]}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.config.card):
            raise ValueError(f"codes must lie in 0..{self.config.card - 1}")

    def _input(self, indices: Tensor, offset: int) -> Tensor:
        """indices [B, K, T] (0 = no previous code) → the first layer's input [B, T, dim]."""
        x = sum(self.emb[k](indices[:, k]) for k in range(indices.shape[1]))
        return self.transformer["norm_in"](x) + sinusoidal_positions(
            offset, indices.shape[-1], self.config.dim, self.config.max_period, x.device)

    def _heads(self, hidden: Tensor, n_codebooks: int, codes: Tensor | None) -> Tensor:
        """Logits [B, K, T, card] from hidden states [B, T, dim], one head per codebook; with
        `intra_frame`, head k's input adds the embeddings of codes [B, K, T] of codebooks < k."""
        logits = []
        for k in range(n_codebooks):
            logits.append(self.linears[k](hidden))
            if self.config.intra_frame and k + 1 < n_codebooks:
                assert codes is not None  # forward's input; step refuses an intra_frame step without them
                hidden = hidden + self.intra[k](codes[:, k])
        return torch.stack(logits, dim=1)


_ModuleT = TypeVar("_ModuleT", bound=nn.Module)


def _items(modules: nn.Module, kind: type[_ModuleT]) -> list[_ModuleT]:
    """A ModuleList's items, each a `kind` by construction."""
    assert isinstance(modules, nn.ModuleList)
    items = []
    for item in modules:
        assert isinstance(item, kind)
        items.append(item)
    return items


def load_original_lm(source: str | Path | Mapping[str, Tensor], *, past_context: int,
                     num_heads: int = 8, max_period: float = 10000.0) -> EntropyLM:
    """Builds an `EntropyLM` from an original `LMModel` state dict or `.th` file.

    n_q, card, dim, num_layers and the feed-forward width are read from the tensor
    shapes; num_heads, past_context and max_period are not stored in the checkpoint.
    """
    checkpoint: Mapping[str, Any] = (torch.load(source, map_location="cpu", weights_only=True)
                                     if isinstance(source, (str, Path)) else source)
    state: Mapping[str, Tensor] = checkpoint.get("best_state", checkpoint)
    for key in ("emb.0.weight", "transformer.layers.0.linear1.weight"):
        if key not in state:
            raise ValueError(f"not an LMModel state dict: missing key {key}")
    codebook_ids = {key.split(".")[1] for key in state if key.startswith("emb.")}
    layer_ids = {key.split(".")[2] for key in state if key.startswith("transformer.layers.")}
    card_plus_one, dim = state["emb.0.weight"].shape
    hidden_dim = state["transformer.layers.0.linear1.weight"].shape[0]
    config = LMConfig(n_q=len(codebook_ids), card=card_plus_one - 1, dim=dim, num_heads=num_heads,
                      num_layers=len(layer_ids), hidden_scale=hidden_dim / dim,
                      past_context=past_context, max_period=max_period)
    lm = EntropyLM(config)
    lm.load_weights(state)
    return lm.eval()


def save_lm(lm: EntropyLM, path: str | Path, metadata: Mapping | None = None, overwrite: bool = True) -> None:
    """Writes the weights as safetensors with the JSON config (and any JSON `metadata`, e.g. the
    codec it was trained for) in the file's metadata; an existing file is replaced only with `overwrite`."""
    tensors = {key: tensor.contiguous() for key, tensor in lm.state_dict().items()}
    extra = {"metadata": json.dumps(metadata)} if metadata is not None else {}
    with replacing(path, overwrite=overwrite) as (temporary,):
        save_file(tensors, str(temporary), metadata={"config": json.dumps(asdict(lm.config)), **extra})


def _file_metadata(path: str | Path, tensors: bool = False) -> tuple[dict, dict[str, Tensor]]:
    """A safetensors file's metadata (and tensors), or a one-line error on a file that is not one."""
    try:
        with safe_open(str(path), framework="pt") as file:
            return file.metadata() or {}, {key: file.get_tensor(key) for key in file.keys()} if tensors else {}
    except SafetensorError as error:
        raise ValueError(f"{path} is not a readable LM file (safetensors written by `encodec-fx train-lm`): "
                         f"{str(error).splitlines()[0]}") from None


def read_lm_metadata(path: str | Path) -> dict:
    """The `metadata` given to `save_lm` ({} if none)."""
    return json.loads(_file_metadata(path)[0].get("metadata", "{}"))


def load_lm(path: str | Path) -> EntropyLM:
    """An LM file written by `save_lm`, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no LM file at {path}: pass an LM written by `encodec-fx train-lm`")
    metadata, state = _file_metadata(path, tensors=True)
    if "config" not in metadata:
        raise ValueError(f"{path} has no LM config in its safetensors metadata: it is not an LM file")
    try:
        config = LMConfig(**json.loads(metadata["config"]))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path} holds no LM config this version can read ({error}): is it an LM written "
                         "by `encodec-fx train-lm`?") from None
    lm = EntropyLM(config)
    lm.load_weights(state)
    return lm.eval()
