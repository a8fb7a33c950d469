"""Effects and chains survive pickle, so they reach DataLoader workers and Ray tasks; named models travel
as their names, pedalboard's native plugins as their parameters."""

from __future__ import annotations

import pickle

import numpy as np
import pedalboard
import pytest
import torch

from encodec_fx.effects import Chain, CodebookTruncation, EncodecCompressor, EncodecDecoder, EncodecEncoder, PacketLoss
from encodec_fx.effects.spec import parse_chain

RATE = 24_000


def audio(seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal((1, RATE // 2))).astype(np.float32)


def effects() -> dict[str, object]:
    return {
        "compressor": EncodecCompressor(bandwidth=1.5),
        "chain": Chain([pedalboard.HighpassFilter(80), EncodecEncoder(bandwidth=6.0), CodebookTruncation(4),
                        PacketLoss(rate=0.2, seed=1), EncodecDecoder(), pedalboard.Reverb(room_size=0.3),
                        pedalboard.Gain(3)]),
        "spec": parse_chain("highpass(80) | encodec(bandwidth=3) | compressor(threshold_db=-20, ratio=4)"),
    }


@pytest.mark.parametrize("name", ["compressor", "chain", "spec"])
def test_a_pickled_effect_gives_the_same_audio_and_carries_no_weights(name):
    effect = effects()[name]
    data = pickle.dumps(effect)
    assert len(data) < 5_000  # the shipped model travels as its name, not 16 MB of weights
    copy = pickle.loads(data)
    np.testing.assert_array_equal(copy(audio(), RATE), effect(audio(), RATE))


def test_a_model_built_in_python_travels_whole():
    from encodec_fx import EncodecConfig, EncodecModel
    model = EncodecModel(EncodecConfig(num_filters=4, upsampling_ratios=[4, 4], hidden_size=8, codebook_size=16,
                                       target_bandwidths=[2.0], num_lstm_layers=1, sampling_rate=8_000))
    effect = EncodecCompressor(bandwidth=2.0, model=model)
    copy = pickle.loads(pickle.dumps(effect))
    assert copy.model is not model and all(torch.equal(a, b) for a, b in
                                           zip(copy.model.state_dict().values(), model.state_dict().values()))


def test_native_plugins_that_cannot_travel_are_refused_by_name():
    ir = pedalboard.Convolution(np.full((1, 64), 0.01, np.float32), sample_rate=RATE)
    with pytest.raises(TypeError, match="Convolution built from an array cannot be pickled"):
        pickle.dumps(Chain([ir]))


class Degraded(torch.utils.data.Dataset):
    def __init__(self, effect):
        self.effect = effect

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> np.ndarray:
        return self.effect(audio(index), RATE)


def on_one_thread(effect, count: int) -> list[np.ndarray]:
    """What workers with one torch thread each compute: the same sums in the same order, the same bits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [effect(audio(i), RATE) for i in range(count)]
    finally:
        torch.set_num_threads(threads)


def test_a_chain_runs_in_dataloader_workers():
    chain = effects()["chain"]
    expected = on_one_thread(chain, 4)
    loader = torch.utils.data.DataLoader(Degraded(chain), batch_size=None, num_workers=2,
                                         multiprocessing_context="spawn")
    for got, want in zip(loader, expected):
        np.testing.assert_array_equal(np.asarray(got), want)


def test_a_chain_runs_in_ray_tasks(ray_turn):
    ray = pytest.importorskip("ray", reason="Ray is in the test extras; this runs where they are installed")
    chain = effects()["spec"]
    expected = on_one_thread(chain, 2)  # Ray gives each task one thread
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)  # a real local cluster, stopped below; one
    # CPU: one worker process to start (it runs the two tasks in turn)
    try:
        degrade = ray.remote(lambda effect, signal: effect(signal, RATE))
        results = ray.get([degrade.remote(chain, audio(i)) for i in range(2)])
    finally:
        ray.shutdown()
    for result, want in zip(results, expected):
        np.testing.assert_array_equal(result, want)
