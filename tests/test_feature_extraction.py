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


def test_from_pretrained_resolves_a_shipped_name(tmp_path, monkeypatch):
    """A name EncodecModel.from_pretrained loads is read by the extractor too (it used to look for a
    relative folder of that name and fail)."""
    from encodec_fx import pretrained
    folder = tmp_path / "tiny-48khz"
    config = EncodecConfig.encodec_48khz()
    config.save_pretrained(folder)
    (folder / "model.safetensors").write_bytes(b"")  # only its presence is checked
    EncodecFeatureExtractor.from_config(config).save_pretrained(folder)
    monkeypatch.setattr(pretrained, "ROOT", tmp_path)
    monkeypatch.chdir(tmp_path.parent)  # the name is no relative path from here
    loaded = EncodecFeatureExtractor.from_pretrained("tiny-48khz")
    assert loaded.to_dict() == EncodecFeatureExtractor.from_config(config).to_dict()
    assert EncodecConfig.from_pretrained("tiny-48khz") == config


@pytest.mark.parametrize("content, message", [
    (b"[1, 2]", r" must hold a JSON object of feature extractor fields, got list"),
    (b"null", r" must hold a JSON object of feature extractor fields, got NoneType"),
    (b'"24000"', r" must hold a JSON object of feature extractor fields, got str"),
    (b'{"sampling_rate": "\xff"}', r" is not valid JSON: 'utf-8' codec can't decode"),
    (b'{"sampling_rate": "24000"}', r": sampling_rate must be a positive integer \(Hz\), got '24000'"),
])
def test_from_pretrained_bad_file_names_it(tmp_path, content, message):
    (tmp_path / "preprocessor_config.json").write_bytes(content)
    with pytest.raises(ValueError, match=r"preprocessor_config.json" + message):
        EncodecFeatureExtractor.from_pretrained(tmp_path)


@pytest.mark.parametrize("kwargs, message", [
    ({"sampling_rate": "24000"}, r"sampling_rate must be a positive integer \(Hz\), got '24000'"),
    ({"sampling_rate": None}, r"sampling_rate must be a positive integer \(Hz\), got None"),
    ({"sampling_rate": 24_000.0}, r"sampling_rate must be a positive integer \(Hz\), got 24000.0"),
    ({"sampling_rate": 0}, r"sampling_rate must be a positive integer"),
    ({"feature_size": True}, r"feature_size is the channel count: 1 \(mono\) or 2 \(stereo\), got True"),
    ({"padding_value": float("nan")}, r"padding_value must be a finite number, got nan"),
    ({"padding_value": "0"}, r"padding_value must be a finite number, got '0'"),
    ({"chunk_length_s": 1.0, "overlap": 1.0}, r"overlap must be None or a fraction from 0 up to \(not including\) 1"),
    ({"chunk_length_s": 1.0, "overlap": 2.0}, r"overlap must be None or a fraction"),
    ({"chunk_length_s": 1.0, "overlap": "0.01"}, r"overlap must be None or a fraction .*, got '0.01'"),
    ({"chunk_length_s": 1.0, "overlap": -0.5}, r"overlap must be None or a fraction"),
    ({"chunk_length_s": 0.0, "overlap": 0.01}, r"chunk_length_s must be None or seconds holding at least one sample"),
    ({"chunk_length_s": -1.0, "overlap": 0.01}, r"chunk_length_s must be None or seconds"),
    ({"chunk_length_s": float("nan"), "overlap": 0.01}, r"chunk_length_s must be None or seconds"),
])
def test_bad_fields_are_refused_on_construction(kwargs, message):
    """Each of these was accepted and then gave silently wrong padding, or a misleading error such as
    'audio sampled at 24000 Hz, but this model takes 24000 Hz', on every call."""
    with pytest.raises(ValueError, match=message):
        EncodecFeatureExtractor(**kwargs)


def test_fields_transformers_accepts_stay_accepted():
    """None chunking (either field, as in transformers) and numpy numbers, which are saved as plain ones."""
    assert EncodecFeatureExtractor(chunk_length_s=1.0).chunk_stride is None
    assert EncodecFeatureExtractor(overlap=0.01).chunk_length is None
    extractor = EncodecFeatureExtractor(feature_size=np.int64(2), sampling_rate=np.int64(48_000),
                                        padding_value=np.float32(0), chunk_length_s=np.float32(1), overlap=0.01)
    assert extractor.chunk_stride == 47_520
    assert '"sampling_rate": 48000' in extractor.to_json_string()


@pytest.mark.parametrize("kwargs", [
    {"truncation": True, "padding": False, "max_length": -1},  # silently dropped the last sample
    {"truncation": True, "padding": False, "max_length": 0},  # gave empty input_values
    {"padding": "max_length", "max_length": -5},  # was ignored
    {"padding": "max_length", "max_length": 10.0},  # numpy's "pad_width must be of integral type"
    {"padding": "max_length", "max_length": "10"},  # "unsupported operand"
    {"padding": "max_length", "max_length": True},
])
def test_bad_max_length(kwargs):
    with pytest.raises(ValueError, match=r"max_length must be a positive integer \(samples\), got "):
        EncodecFeatureExtractor()(np.zeros(100), sampling_rate=24_000, **kwargs)


def test_numpy_max_length_pads():
    batch = EncodecFeatureExtractor()(np.zeros(100), padding="max_length", max_length=np.int64(150))
    assert batch.input_values[0].shape == (1, 150)


def test_padding_beyond_memory_says_which_setting(monkeypatch):
    """numpy's MemoryError names only a size; ours names max_length (10**12 samples asked for TiB).
    np.pad is made to fail rather than asking the machine for TiB for real."""
    def out_of_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 3.64 TiB")
    monkeypatch.setattr(np, "pad", out_of_memory)
    with pytest.raises(MemoryError, match=r"padding 2 item\(s\) to 1000000000000 samples needs 14901.2 GiB, "
                                          r"more than this machine has: check max_length"):
        EncodecFeatureExtractor()([np.zeros(100), np.zeros(50)], padding="max_length", max_length=10**12)


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("lengths", [[30_000, 30_000], [30_000, 41_000], [50_000]])
def test_torch_tensors_read_like_numpy_arrays(preset, lengths):
    """A list of tensors was read as one 2-D array (equal lengths) or failed in numpy (unequal ones);
    now it gives what transformers gives for the same list of numpy arrays, as does a single tensor."""
    ours, theirs = extractors(preset)
    audio = items(preset, lengths)
    raw = audio[0] if len(audio) == 1 else audio
    tensors = torch.from_numpy(audio[0]) if len(audio) == 1 else [torch.from_numpy(a) for a in audio]
    expected = theirs(raw, sampling_rate=ours.sampling_rate, return_tensors="np")
    got = ours(tensors, sampling_rate=ours.sampling_rate, return_tensors="np")
    assert sorted(got.keys()) == sorted(expected.keys())
    for key in expected.keys():
        np.testing.assert_array_equal(got[key], expected[key])
    with pytest.raises(ValueError, match=r"raw_audio\[0\] has dtype torch.int16; expected floating-point"):
        ours([torch.zeros((10,) if preset == "24khz" else (2, 10), dtype=torch.int16)])


@pytest.mark.parametrize("preset", ["24khz", "48khz"])
def test_a_list_of_tensors_that_are_not_items_is_one_item_as_in_transformers(preset):
    """[left, right] for a stereo extractor, and a list of 0-d tensors for a mono one, are one item."""
    ours, theirs = extractors(preset)
    raw = list(torch.randn(2, 100)) if preset == "48khz" else list(torch.randn(50))
    expected = theirs(raw, sampling_rate=ours.sampling_rate, return_tensors="np")
    got = ours(raw, sampling_rate=ours.sampling_rate, return_tensors="np")
    for key in expected.keys():
        np.testing.assert_array_equal(got[key], expected[key])
