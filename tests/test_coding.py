"""Entropy coding of code segments: bit-exact round trips, size against the ideal, integrity."""
import numpy as np
import pytest
import torch

from entropy.coding import CODING_MODES, StaticModel, decode_codes, decode_many, encode_codes, encode_many
from entropy.lm import EntropyLM, LMConfig
from entropy.portable_lm import PortableLM

from conftest import peaked, sample_codes

CARD = 1024
SMALL_LM = LMConfig(n_q=8, dim=32, num_heads=4, num_layers=2, past_context=16)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One frame is too little work to share: on a busy machine a second thread only waits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def lm() -> EntropyLM:
    """A small random LM whose heads are scaled up so that its distributions are peaked, as a
    trained LM's are (a fresh one predicts almost uniform distributions)."""
    torch.manual_seed(0)
    return peaked(EntropyLM(SMALL_LM))  # about 3 bits per code instead of 10


def uniform_codes(num_codebooks: int, num_frames: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, CARD, (num_codebooks, num_frames))


def models_for(codes: np.ndarray, lm: EntropyLM) -> dict:
    return {"lm": lm, "static": StaticModel.from_codes(codes)}


def round_trip(codes: np.ndarray, mode: str, **models) -> tuple[np.ndarray, bytes]:
    payload = encode_codes(codes, mode, **models)
    return decode_codes(payload, codes.shape[0], codes.shape[1], mode, **models), payload


@pytest.fixture(scope="module")
def skewed_codes(lm):
    """Codes [K, T] drawn from the LM's own predictions, drawn once per shape and seed for every coding mode."""
    drawn: dict[tuple[int, int, int], np.ndarray] = {}

    def codes(num_codebooks: int, num_frames: int, seed: int = 0) -> np.ndarray:
        if (num_codebooks, num_frames, seed) not in drawn:
            drawn[num_codebooks, num_frames, seed] = sample_codes(PortableLM(lm), 1, num_codebooks, num_frames,
                                                                  seed=seed)[0]
        return drawn[num_codebooks, num_frames, seed].copy()
    return codes


@pytest.mark.parametrize("mode", CODING_MODES)
@pytest.mark.parametrize("num_codebooks", [2, 8])
@pytest.mark.parametrize("num_frames", [1, 50])
@pytest.mark.parametrize("distribution", ["uniform", "skewed"])
def test_round_trip_is_bit_exact(lm, skewed_codes, mode, num_codebooks, num_frames, distribution):
    if distribution == "uniform":
        codes = uniform_codes(num_codebooks, num_frames)
    else:
        codes = skewed_codes(num_codebooks, num_frames)
    decoded, _ = round_trip(codes, mode, **models_for(codes, lm))
    assert decoded.dtype == np.int64 and np.array_equal(decoded, codes)


def test_raw_mode_uses_ten_bits_per_code_plus_crc():
    codes = uniform_codes(8, 50)
    assert len(encode_codes(codes, "raw")) == 8 * 50 * 10 // 8 + 4


def ideal_bits(probabilities: np.ndarray, codes: np.ndarray) -> float:
    """-sum log2 p(code) with probabilities [K, T, card] (normalised here in float64)."""
    p = probabilities.astype(np.float64)
    p /= p.sum(axis=-1, keepdims=True)
    return float(-np.log2(np.take_along_axis(p, codes[..., None], axis=-1)).sum())


def assert_close_to_ideal(payload: bytes, ideal: float) -> None:
    coded_bits = (len(payload) - 4) * 8  # without the CRC
    assert ideal <= coded_bits < 1.01 * ideal + 64, (coded_bits, ideal)


def test_lm_mode_size_is_close_to_ideal(lm):
    codes = sample_codes(PortableLM(lm), 1, 8, 120, seed=1)[0]
    state, previous, predictions = lm.initial_state(1, 8), None, []
    for frame in codes.T:
        probabilities, state = lm.step(previous, state)
        predictions.append(probabilities[0].numpy())
        previous = torch.from_numpy(frame)[None]
    ideal = ideal_bits(np.stack(predictions, axis=1), codes)
    assert ideal < 0.6 * codes.size * 10  # the codes are skewed enough for the check to mean something
    assert_close_to_ideal(encode_codes(codes, "lm", lm=lm), ideal)


def zipf_codes(num_codebooks: int, num_frames: int, seed: int) -> np.ndarray:
    """Codes whose entries follow a Zipf-like law, most frequent entries shuffled per codebook."""
    rng = np.random.default_rng(seed)
    zipf = 1.0 / np.arange(1, CARD + 1) ** 1.1
    return np.stack([rng.choice(rng.permutation(CARD), num_frames, p=zipf / zipf.sum())
                     for _ in range(num_codebooks)])


def test_static_mode_size_is_close_to_ideal():
    codes = zipf_codes(8, 2000, seed=2)
    static = StaticModel.from_codes(codes)
    probabilities = np.broadcast_to(static.probabilities()[:, None], (*codes.shape, CARD))
    ideal = ideal_bits(probabilities, codes)
    assert ideal < 0.8 * codes.size * 10
    assert_close_to_ideal(encode_codes(codes, "static", static=static), ideal)


def test_static_model_serialises_compactly_and_codes_unseen_entries():
    file_codes = zipf_codes(8, 750, seed=3)
    static = StaticModel.from_codes(file_codes)
    data = static.to_bytes()
    assert len(data) < 8 * CARD  # well under one byte per count for a 10 s file's histogram
    parsed = StaticModel.from_bytes(data)
    assert np.array_equal(parsed.counts, static.counts)
    assert (parsed.probabilities() > 0).all()
    unseen = uniform_codes(8, 20, seed=5)  # mostly entries the file never used
    decoded, _ = round_trip(unseen, "static", static=parsed)
    assert np.array_equal(decoded, unseen)


@pytest.mark.parametrize("data", [b"", b"\x01\x00", b"\x08\x00\x00\x04\x00\x00\x05garbage"])
def test_corrupt_static_model_bytes_raise_value_error(data):
    with pytest.raises(ValueError):
        StaticModel.from_bytes(data)


def test_lm_decoding_does_not_depend_on_the_thread_count(lm):
    codes = sample_codes(PortableLM(lm), 1, 8, 50, seed=4)[0]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        payload = encode_codes(codes, "lm", lm=lm)
        assert torch.get_num_threads() == 2  # coding restores the caller's setting
        torch.set_num_threads(1)
        assert np.array_equal(decode_codes(payload, 8, 50, "lm", lm=lm), codes)
    finally:
        torch.set_num_threads(threads)


def corruptions(payload: bytes) -> list[bytes]:
    middle = len(payload) // 2
    flipped = payload[:middle] + bytes([payload[middle] ^ 0xFF]) + payload[middle + 1:]
    bad_crc = payload[:-1] + bytes([payload[-1] ^ 0x01])
    return [flipped, bad_crc, payload[:-5] + payload[-4:], payload[:3], payload + b"\0\0\0\0"]


@pytest.mark.parametrize("mode", CODING_MODES)
def test_corrupt_payloads_raise_value_error(lm, skewed_codes, mode):
    codes = skewed_codes(8, 50, seed=6)
    models = models_for(codes, lm)
    for corrupt in corruptions(encode_codes(codes, mode, **models)):
        with pytest.raises(ValueError, match="segment payload is corrupt"):
            decode_codes(corrupt, 8, 50, mode, **models)


def test_decoding_with_another_lm_raises_value_error(lm):
    codes = sample_codes(PortableLM(lm), 1, 8, 20, seed=7)[0]
    payload = encode_codes(codes, "lm", lm=lm)
    torch.manual_seed(1)
    other = EntropyLM(SMALL_LM).eval()
    with pytest.raises(ValueError, match="segment payload is corrupt"):
        decode_codes(payload, 8, 20, "lm", lm=other)


def test_bad_arguments_raise_value_error(lm):
    codes = uniform_codes(2, 5)
    static = StaticModel.from_codes(codes)
    with pytest.raises(ValueError, match="mode"):
        encode_codes(codes, "zip")
    with pytest.raises(ValueError, match="StaticModel"):
        encode_codes(codes, "static")
    with pytest.raises(ValueError, match="EntropyLM"):
        decode_codes(b"\0" * 8, 2, 5, "lm")
    with pytest.raises(ValueError, match="codebooks"):
        encode_codes(uniform_codes(3, 5), "static", static=static)
    with pytest.raises(ValueError, match="codebooks"):
        encode_codes(uniform_codes(9, 5), "lm", lm=lm)
    with pytest.raises(ValueError, match="lie in"):
        encode_codes(codes + CARD, "raw")
    with pytest.raises(ValueError, match=r"\[K, T\]"):
        encode_codes(codes.ravel(), "raw")


def test_many_rows_round_trip_in_any_batch_and_survive_a_lost_or_corrupt_row():
    torch.manual_seed(3)
    lm = EntropyLM(LMConfig(n_q=8, dim=32, num_heads=4, num_layers=2, past_context=16)).eval()
    rng = np.random.default_rng(4)
    rows = [rng.integers(0, 1024, (4, frames)) for frames in (30, 7, 30, 1)]
    payloads = encode_many(rows, "lm", lm=lm)
    frames = [row.shape[1] for row in rows]
    for result, row in zip(decode_many(payloads, 4, frames, "lm", lm=lm), rows):
        assert np.array_equal(result, row)
    damaged = list(payloads)
    damaged[1] = None
    damaged[2] = payloads[2][:5] + bytes([payloads[2][5] ^ 0xFF]) + payloads[2][6:]
    results = decode_many(damaged, 4, frames, "lm", lm=lm)
    assert np.array_equal(results[0], rows[0]) and np.array_equal(results[3], rows[3])
    assert all(isinstance(results[i], ValueError) and "corrupt" in str(results[i]) for i in (1, 2))
    # each row's arithmetic is exact and its own, so a row decodes alone or in another batch too
    assert np.array_equal(decode_codes(payloads[2], 4, 30, "lm", lm=lm), rows[2])
    regrouped = decode_many([payloads[3], payloads[0]], 4, [1, 30], "lm", lm=lm)
    assert np.array_equal(regrouped[0], rows[3]) and np.array_equal(regrouped[1], rows[0])


@pytest.fixture(scope="module")
def intra_lm() -> EntropyLM:
    torch.manual_seed(1)
    return peaked(EntropyLM(LMConfig(n_q=8, dim=32, num_heads=4, num_layers=2, past_context=16,
                                     intra_frame=True)))


def test_an_intra_frame_lm_codes_rows_of_any_length_bit_exactly(intra_lm):
    codes = sample_codes(PortableLM(intra_lm), 3, 4, 40, seed=4)
    rows = [codes[0], codes[1, :, :25], uniform_codes(4, 1, seed=5)]
    payloads = encode_many(rows, "lm", lm=intra_lm)
    decoded = decode_many(payloads, 4, [row.shape[1] for row in rows], "lm", lm=intra_lm)
    assert all(np.array_equal(got, row) for got, row in zip(decoded, rows))
    alone = decode_many([payloads[1]], 4, [25], "lm", lm=intra_lm)[0]
    assert np.array_equal(alone, rows[1])  # rows do not depend on each other


def test_an_intra_frame_lm_uses_the_frames_coarser_codes(intra_lm):
    portable = PortableLM(intra_lm)
    codes = sample_codes(portable, 1, 8, 60, seed=6)[0]
    probabilities = np.stack([portable.step(None if t == 0 else codes[None, :, t - 1], state, codes[None, :, t])[0]
                              for state in [portable.initial_state(1, 8)] for t in range(codes.shape[1])], axis=1)
    payload = encode_codes(codes, "lm", lm=portable)
    assert_close_to_ideal(payload, ideal_bits(probabilities, codes))
    blind = EntropyLM(intra_lm.config)  # the same LM without its view of the frame's coarser codes
    blind.load_state_dict(intra_lm.state_dict())
    with torch.no_grad():
        for embedding in blind.intra:
            embedding.weight.zero_()
    assert len(payload) < 0.9 * len(encode_codes(codes, "lm", lm=blind))


def test_decode_many_takes_one_frame_count_per_payload():
    """Once: a payload without a frame count came back as None, which is neither codes nor an error (and a
    count without a payload was dropped without a word)."""
    codes = np.arange(20).reshape(2, 10) % 7
    payload = encode_codes(codes, "raw")
    with pytest.raises(ValueError, match="one frame count per payload: got 1 for 2 payloads"):
        decode_many([payload, payload], 2, [10], "raw")
    with pytest.raises(ValueError, match="one frame count per payload: got 2 for 1 payloads"):
        decode_many([payload], 2, [10, 10], "raw")
    assert all(np.array_equal(row, codes) for row in decode_many([payload, payload], 2, [10, 10], "raw"))
