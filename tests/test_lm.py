"""The entropy-coding LM against the original `encodec.model.LMModel`."""
import pytest
import torch

from encodec_fx.checkpoints import weights_sha256
from entropy.lm import LM_24KHZ, EntropyLM, LMConfig, LMState, load_lm, load_original_lm, save_lm

from conftest import import_original_encodec, peaked, probability_tolerance

PAST_CONTEXT = 8  # small, so that 40 frames run well past the attention window
N_FRAMES = 40


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One frame is too little work to share: on a busy machine a second thread only waits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_original(**sizes) -> torch.nn.Module:
    """An original LMModel whose every parameter (norms and biases too) is random."""
    torch.manual_seed(1234)
    model = import_original_encodec().model.LMModel(**sizes).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


@pytest.fixture(scope="module")
def original() -> torch.nn.Module:
    return random_original(n_q=LM_24KHZ.n_q, card=1024, dim=200, num_layers=5,
                           past_context=PAST_CONTEXT)


@pytest.fixture(scope="module")
def lm(original) -> EntropyLM:
    return load_original_lm(original.state_dict(), past_context=PAST_CONTEXT)


@pytest.fixture(scope="module")
def codes() -> torch.Tensor:
    return torch.randint(0, 1024, (2, LM_24KHZ.n_q, N_FRAMES),
                         generator=torch.Generator().manual_seed(7))


def original_stepwise(original, codes: torch.Tensor) -> torch.Tensor:
    """Probabilities [B, K, T, card], fed one frame at a time as the original compressor does."""
    batch, n_codebooks, length = codes.shape
    states, offset, frames = None, 0, []
    previous = torch.zeros(batch, n_codebooks, 1, dtype=torch.long)
    with torch.no_grad():
        for t in range(length):
            probs, states, offset = original(previous, states, offset)
            frames.append(probs[..., 0].transpose(1, 2))
            previous = 1 + codes[:, :, t:t + 1]
    return torch.stack(frames, dim=2)


def our_stepwise(lm: EntropyLM, codes: torch.Tensor) -> tuple[torch.Tensor, list[int], LMState]:
    """Probabilities [B, K, T, card] from `step`, the cached window's length after every frame,
    and the final state."""
    state = lm.initial_state(codes.shape[0], codes.shape[1])
    frames, window_lengths = [], []
    for t in range(codes.shape[-1]):
        probs, state = lm.step(None if t == 0 else codes[:, :, t - 1], state, codes[:, :, t])
        frames.append(probs)
        window_lengths.append(state.end - state.start)
    return torch.stack(frames, dim=2), window_lengths, state


def tolerance(lm: EntropyLM, codes: torch.Tensor, logits: torch.Tensor | None = None) -> float:
    """The float32 distance allowed between two evaluations of `lm` on `codes` that sum in different
    orders: its longest sum is the feed-forward layer's, each transformer layer and the heads add one."""
    if logits is None:
        with torch.no_grad():
            logits = lm(codes)
    return probability_tolerance(logits, lm.config.hidden_dim, lm.config.num_layers + 1)


@pytest.mark.parametrize("n_codebooks", [LM_24KHZ.n_q, 4])
def test_step_matches_original_stepwise(original, lm, codes, n_codebooks):
    ours, _, _ = our_stepwise(lm, codes[:, :n_codebooks])
    theirs = original_stepwise(original, codes[:, :n_codebooks])
    assert ours.shape == (2, n_codebooks, N_FRAMES, 1024)
    assert (ours - theirs).abs().max() <= tolerance(lm, codes[:, :n_codebooks])


@pytest.mark.parametrize("n_codebooks", [LM_24KHZ.n_q, 4])
def test_forward_matches_step(lm, codes, n_codebooks):
    stepwise, _, _ = our_stepwise(lm, codes[:, :n_codebooks])
    with torch.no_grad():
        logits = lm(codes[:, :n_codebooks])
    assert (logits.softmax(dim=-1) - stepwise).abs().max() <= tolerance(lm, codes[:, :n_codebooks], logits)


def test_cache_stays_within_past_context(lm, codes):
    _, window_lengths, state = our_stepwise(lm, codes[:, :2])
    # The cache starts with the original's all-zero frame, then grows up to past_context.
    expected = [min(t + 2, PAST_CONTEXT) for t in range(N_FRAMES)]
    assert window_lengths == expected
    assert len({cache.shape for cache in state.keys + state.values}) == 1
    assert state.keys[0].shape[2] <= 2 * PAST_CONTEXT + 1  # bounded however long the stream
    assert state.offset == N_FRAMES


def test_safetensors_round_trip(codes, tmp_path):
    lm = load_original_lm(small_original().state_dict(), past_context=4, num_heads=4)
    path = tmp_path / "lm.safetensors"
    save_lm(lm, path)
    loaded = load_lm(path)
    assert loaded.config == lm.config
    assert weights_sha256(loaded.state_dict()) == weights_sha256(lm.state_dict())
    small_codes = codes[:1, :3] % 16
    assert torch.equal(our_stepwise(loaded, small_codes)[0], our_stepwise(lm, small_codes)[0])

    changed = dict(lm.state_dict(), **{"linears.0.bias": lm.linears[0].bias.detach() + 1e-6})
    assert weights_sha256(changed) != weights_sha256(lm.state_dict())


def small_original() -> torch.nn.Module:
    return random_original(n_q=3, card=16, dim=32, num_heads=4, num_layers=2, hidden_scale=2,
                           past_context=4)


def test_sizes_are_inferred_from_an_original_th_file(tmp_path):
    path = tmp_path / "encodec_lm.th"
    torch.save(small_original().state_dict(), path)
    lm = load_original_lm(path, past_context=4, num_heads=4)
    assert lm.config == LMConfig(n_q=3, card=16, dim=32, num_heads=4, num_layers=2,
                                 hidden_scale=2.0, past_context=4)


@pytest.mark.parametrize("key", ["transformer.layers.1.norm2.bias", "linears.2.weight"])
def test_missing_key_is_named(key):
    state = small_original().state_dict()
    del state[key]
    lm = EntropyLM(LMConfig(n_q=3, card=16, dim=32, num_heads=4, num_layers=2, hidden_scale=2))
    with pytest.raises(ValueError, match=f"missing keys.*{key}"):
        lm.load_weights(state)


def test_unexpected_key_is_named():
    state = dict(small_original().state_dict(), **{"transformer.layers.0.extra": torch.zeros(1)})
    with pytest.raises(ValueError, match="unexpected keys.*transformer.layers.0.extra"):
        load_original_lm(state, past_context=4, num_heads=4)


def test_step_rejects_codes_that_do_not_fit(lm):
    state = lm.initial_state(batch_size=1, n_codebooks=4)
    with pytest.raises(ValueError, match="shape"):
        lm.step(torch.zeros(1, 5, dtype=torch.long), state)
    with pytest.raises(ValueError, match="0..1023"):
        lm.step(torch.full((1, 4), 1024), state)


@pytest.fixture(scope="module")
def intra_lm() -> EntropyLM:
    torch.manual_seed(3)
    return peaked(EntropyLM(LMConfig(n_q=4, dim=32, num_heads=4, num_layers=2, past_context=PAST_CONTEXT,
                                     intra_frame=True)))  # intra embeddings strong enough that changes show


def test_an_intra_frame_head_sees_only_its_frames_coarser_codes(intra_lm):
    codes = torch.randint(0, 1024, (2, 4, 12), generator=torch.Generator().manual_seed(8))
    changed = codes.clone()
    changed[:, 1, 5] = (changed[:, 1, 5] + 1) % 1024
    before, after = intra_lm(codes), intra_lm(changed)
    assert torch.equal(before[:, :, :5], after[:, :, :5])  # earlier frames
    assert torch.equal(before[:, :2, 5], after[:, :2, 5])  # its own and coarser codebooks
    assert not torch.allclose(before[:, 2:, 5], after[:, 2:, 5])  # finer codebooks see it
    assert not torch.allclose(before[:, :, 6], after[:, :, 6])  # the next frame sees it as the one before


def test_intra_frame_step_matches_forward_and_needs_the_frames_codes(intra_lm):
    codes = torch.randint(0, 1024, (2, 4, 2 * PAST_CONTEXT), generator=torch.Generator().manual_seed(9))
    stepped, _, _ = our_stepwise(intra_lm, codes)
    with torch.no_grad():
        logits = intra_lm(codes)
    assert (stepped - logits.softmax(-1)).abs().max() <= tolerance(intra_lm, codes, logits)
    state = intra_lm.initial_state(2, 4)
    with pytest.raises(ValueError, match="needs the frame's codes"):
        intra_lm.step(None, state)
    assert state.offset == 0  # refused before the state moved on


def test_the_intra_frame_setting_travels_with_the_weights(intra_lm, tmp_path):
    save_lm(intra_lm, tmp_path / "lm.safetensors")
    loaded = load_lm(tmp_path / "lm.safetensors")
    assert loaded.config.intra_frame and weights_sha256(loaded.state_dict()) == weights_sha256(intra_lm.state_dict())
