"""EncodecFeatureExtractor gives what transformers' gives, for every padding mode and layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encodec_fx import EncodecConfig, EncodecFeatureExtractor, EncodecModel

from conftest import PRESETS


def extractors(preset: str):
    import transformers
    ours = EncodecFeatureExtractor.from_config(PRESETS[preset]())
    theirs = transformers.EncodecFeatureExtractor(feature_size=ours.feature_size, sampling_rate=ours.sampling_rate,
                                                  chunk_length_s=ours.chunk_length_s, overlap=ours.overlap)
    return ours, theirs


def items(preset: str, lengths: list[int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (lambda n: (n,)) if preset == "24khz" else (lambda n: (2, n))
    return [rng.standard_normal(shape(n)) * 0.1 for n in lengths]


CASES = {
    "single": dict(lengths=[50_000], kwargs={}),
    "single_unpadded": dict(lengths=[50_000], kwargs={"padding": False}),
    "batch_padded": dict(lengths=[30_000, 70_123], kwargs={}),
    "batch_longest": dict(lengths=[30_000, 70_123], kwargs={"padding": "longest"}),
    "max_length": dict(lengths=[30_000, 40_000], kwargs={"padding": "max_length", "max_length": 45_000}),
    "truncated": dict(lengths=[100_000, 120_000], kwargs={"truncation": True, "padding": False}),
    "truncated_max_length": dict(lengths=[60_000, 70_000],
                                 kwargs={"truncation": True, "padding": False, "max_length": 50_000}),
}


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("return_tensors", [None, "np", "pt"])
def test_matches_transformers(preset, case, return_tensors):
    ours, theirs = extractors(preset)
    spec = CASES[case]
    audio = items(preset, spec["lengths"])
    raw = audio[0] if len(audio) == 1 else audio
    kwargs = dict(spec["kwargs"], sampling_rate=ours.sampling_rate)
    try:
        expected = theirs(raw, return_tensors=return_tensors, **kwargs)
    except ValueError:  # e.g. truncation without max_length on the unchunked model: we refuse too
        with pytest.raises(ValueError):
            ours(raw, return_tensors=return_tensors, **kwargs)
        return
    got = ours(raw, return_tensors=return_tensors, **kwargs)
    assert sorted(got.keys()) == sorted(expected.keys())
    for key in expected.keys():
        theirs_values, ours_values = expected[key], got[key]
        if return_tensors is None:
            assert len(ours_values) == len(theirs_values)
            for a, b in zip(ours_values, theirs_values):
                assert a.dtype == np.asarray(b).dtype and a.shape == np.asarray(b).shape
                np.testing.assert_array_equal(a, b)
        else:
            assert type(ours_values) is type(theirs_values)
            assert ours_values.dtype == theirs_values.dtype, key
            np.testing.assert_array_equal(np.asarray(ours_values), np.asarray(theirs_values))


def test_output_feeds_the_model():
    extractor = EncodecFeatureExtractor.from_config(EncodecConfig())
    model = EncodecModel(EncodecConfig(num_filters=4)).eval()
    batch = extractor(items("24khz", [3_000, 4_321]), sampling_rate=24_000, return_tensors="pt")
    assert batch.input_values.shape == (2, 1, 4_321)
    with torch.no_grad():
        assert model(**batch).audio_values.shape == (2, 1, 4_321)


def test_from_pretrained_reads_transformers_file(tmp_path):
    _, theirs = extractors("48khz")
    theirs.save_pretrained(tmp_path)
    ours = EncodecFeatureExtractor.from_pretrained(tmp_path)
    assert (ours.feature_size, ours.sampling_rate, ours.chunk_length, ours.chunk_stride) == (2, 48_000, 48_000, 47_520)


def test_unpadded_48khz_input_gives_the_original_codes():
    """The documented exact path: padding=False leaves the audio as is, so the codes are those of the
    raw input; the default padding adds a chunk and changes the last real chunk's codes."""
    config = EncodecConfig.encodec_48khz(num_filters=4)
    model = EncodecModel(config).eval()
    with torch.no_grad():
        for _, buffer in model.named_buffers():
            buffer.normal_() if buffer.dim() == 2 else None
    extractor = EncodecFeatureExtractor.from_config(config)
    audio = items("48khz", [60_000])[0]
    exact = extractor(audio, padding=False, sampling_rate=48_000, return_tensors="pt")
    padded = extractor(audio, sampling_rate=48_000, return_tensors="pt")
    with torch.no_grad():
        raw_codes = model.encode(torch.from_numpy(audio[None]).float()).audio_codes
        exact_codes = model.encode(exact.input_values).audio_codes
        padded_codes = model.encode(padded.input_values, padded.padding_mask).audio_codes
    assert torch.equal(exact_codes, raw_codes)
    assert padded_codes.shape[0] == raw_codes.shape[0] + 1
