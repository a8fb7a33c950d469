"""Both official checkpoint layouts load to identical models; save_pretrained round-trips; the hub
path works offline on files in the hub cache layout; problems are reported by name."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import sys

import pytest
import torch
from safetensors.torch import save_file

from encodec_fx import DEFAULT_MODEL, EncodecConfig, EncodecModel, checkpoints
from encodec_fx.checkpoints import to_hub_keys

from conftest import PRESETS, original_model, randomize


@pytest.fixture(scope="module", params=sorted(PRESETS))
def model(request) -> EncodecModel:
    return randomize(EncodecModel(PRESETS[request.param]()), seed=5)


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_save_pretrained_round_trip(model, tmp_path):
    model.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"config.json", "preprocessor_config.json", "model.safetensors"}
    loaded = EncodecModel.from_pretrained(tmp_path)
    assert loaded.config == model.config
    assert_same_weights(loaded, model)


def test_a_failed_save_leaves_the_saved_model_whole(model, tmp_path, monkeypatch):
    model.save_pretrained(tmp_path)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}

    def disk_full(state, path, metadata):
        open(path, "wb").write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_file", disk_full)
    other = randomize(EncodecModel(EncodecConfig(num_filters=4)), seed=6)
    with pytest.raises(OSError, match=f"^no space left on device writing {tmp_path}$"):
        other.save_pretrained(tmp_path)
    # config.json used to be the new model's already, beside the old weights: the directory did not load
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before  # no temporaries left
    assert_same_weights(EncodecModel.from_pretrained(tmp_path), model)


def test_saved_files_get_a_new_files_usual_permissions(model, tmp_path):
    model.save_pretrained(tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    assert {stat.S_IMODE(path.stat().st_mode) for path in tmp_path.iterdir()} == {0o666 & ~umask}


def test_save_pretrained_onto_a_file_says_a_directory_is_written(model, tmp_path):
    (tmp_path / "model").write_text("")
    with pytest.raises(NotADirectoryError, match="model is a file; save_pretrained writes a directory"):
        model.save_pretrained(tmp_path / "model")


@pytest.mark.parametrize("directory", ["", None])
def test_save_pretrained_needs_a_directory(model, tmp_path, monkeypatch, directory):
    monkeypatch.chdir(tmp_path)  # "" wrote into the current directory
    with pytest.raises(ValueError, match="save_pretrained needs a directory path"):
        model.save_pretrained(directory)
    assert list(tmp_path.iterdir()) == []


def test_saved_directory_loads_in_transformers(model, tmp_path):
    import transformers
    model.save_pretrained(tmp_path)
    theirs = transformers.EncodecModel.from_pretrained(tmp_path).eval()
    x = 0.1 * torch.randn(1, model.config.audio_channels, 5_000)
    bandwidth = model.config.target_bandwidths[-1]
    with torch.no_grad():
        assert torch.equal(model.encode(x, bandwidth=bandwidth).audio_codes,
                           theirs.encode(x, bandwidth=bandwidth).audio_codes)


@pytest.mark.parametrize("weight_norm_keys", ["weight_g", "parametrizations"])
@pytest.mark.parametrize("file_name", ["model.safetensors", "pytorch_model.bin"])
def test_hub_layouts_load_identically(model, tmp_path, weight_norm_keys, file_name):
    state = model.state_dict() if weight_norm_keys == "parametrizations" else to_hub_keys(model.state_dict())
    state = {key: value.contiguous() for key, value in state.items()}
    if model.config.norm_type == "weight_norm":
        assert any(key.endswith(f".{weight_norm_keys.split('_')[0]}") or weight_norm_keys in key for key in state)
    model.config.save_pretrained(tmp_path)
    if file_name.endswith(".safetensors"):
        save_file(state, tmp_path / file_name)
    else:
        torch.save(state, tmp_path / file_name)
    assert_same_weights(EncodecModel.from_pretrained(tmp_path), model)


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("wrapped", [False, True])
def test_original_checkpoint_infers_config(preset, wrapped, tmp_path):
    original = original_model(preset, seed=3)
    state = original.state_dict()
    path = tmp_path / f"encodec_{preset}.th"
    torch.save({"best_state": state, "epoch": 3} if wrapped else state, path)
    ours = EncodecModel.from_pretrained(path)
    assert ours.config == PRESETS[preset]()
    hub_dir = tmp_path / "hub"
    ours.save_pretrained(hub_dir)
    assert_same_weights(EncodecModel.from_pretrained(hub_dir), ours)
    # the same weights reached through the two layouts give the same model
    mine = list(ours.state_dict().values())  # once: the model does not change in the loop
    for key, value in state.items():
        assert any(torch.equal(value, weight) for weight in mine), key


def test_original_checkpoint_with_explicit_config(tmp_path):
    path = tmp_path / "weights.th"
    torch.save(original_model("24khz").state_dict(), path)
    config = EncodecConfig.encodec_24khz()
    assert EncodecModel.from_pretrained(path, config=config).config is config


def test_hub_id_resolves_offline_from_hub_cache(model, tmp_path, monkeypatch):
    """The hub code path, on local files laid out as huggingface_hub's cache."""
    pytest.importorskip("huggingface_hub")  # the `hub` extra; installed with the test extra
    revision = "0" * 40
    repo = tmp_path / "models--facebook--encodec_test"
    snapshot = repo / "snapshots" / revision
    model.save_pretrained(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = EncodecModel.from_pretrained("facebook/encodec_test", cache_dir=tmp_path)
    assert_same_weights(loaded, model)
    with pytest.raises(FileNotFoundError, match=r"could not fetch 'facebook/encodec_missing'.*"
                                                r"download config.json and model.safetensors from "
                                                r"https://huggingface.co/facebook/encodec_missing"):
        EncodecModel.from_pretrained("facebook/encodec_missing", cache_dir=tmp_path)


def test_hub_repository_with_only_the_older_weights_file_loads(model, tmp_path, monkeypatch):
    revision = "0" * 40
    repo = tmp_path / "models--facebook--encodec_bin"
    snapshot = repo / "snapshots" / revision
    model.save_pretrained(snapshot)
    torch.save(to_hub_keys(model.state_dict()), snapshot / "pytorch_model.bin")
    (snapshot / "model.safetensors").unlink()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert_same_weights(EncodecModel.from_pretrained("facebook/encodec_bin", cache_dir=tmp_path), model)


def test_a_path_inside_a_local_folder_is_never_looked_up_on_the_hub(model, tmp_path, monkeypatch):
    """`run1/modl` (a typo for run1/model) went to the hub: 25 s of retries, then no word of the folder."""
    monkeypatch.chdir(tmp_path)
    model.save_pretrained(tmp_path / "run1" / "model")
    monkeypatch.setattr("encodec_fx.checkpoints._download", lambda *a, **k: pytest.fail("looked up on the hub"))
    with pytest.raises(FileNotFoundError, match=r"^no model at run1/modl: expected a directory"):
        EncodecModel.from_pretrained("run1/modl")
    with pytest.raises(FileNotFoundError, match=r"run1 holds no model.safetensors .* \(did you mean run1/model\?\)"):
        EncodecModel.from_pretrained("run1")


def test_a_training_export_loads_with_the_config_it_carries(model, tmp_path):
    from encodec_fx.train.export import export_generator
    export_generator(model, tmp_path / "generator-fp16.safetensors")
    loaded = EncodecModel.from_pretrained(tmp_path / "generator-fp16.safetensors")
    assert loaded.config == model.config


@pytest.mark.parametrize("source, message", [
    ("", r"^no model source given: pass a model directory"),  # was the current directory, silently
    (None, r"^no model source given"),
    (3, r"^the model source must be a path or a name, got int 3"),
])
def test_a_source_that_names_nothing_is_refused(source, message):
    with pytest.raises(ValueError, match=message):
        EncodecModel.from_pretrained(source)


def test_hub_id_without_hub_extra_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(FileNotFoundError,
                       match=r"pip install encodec-fx\[hub\].*huggingface.co/facebook/encodec_24khz"):
        EncodecModel.from_pretrained("facebook/encodec_24khz")


def test_missing_and_unexpected_keys_are_named(model, tmp_path):
    state = to_hub_keys(model.state_dict())
    del state["decoder.layers.0.conv.bias"]
    state["decoder.layers.99.conv.bias"] = torch.zeros(1)
    model.config.save_pretrained(tmp_path)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=r"missing keys decoder\.layers\.0\.conv\.bias; "
                                         r"unexpected keys decoder\.layers\.99\.conv\.bias"):
        EncodecModel.from_pretrained(tmp_path)


def test_wrong_shapes_are_named(model, tmp_path):
    other = EncodecModel(dataclasses.replace(model.config, num_filters=8))
    other.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(model.config.to_json_string())
    with pytest.raises(ValueError, match="shape"):
        EncodecModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_by_name(model, tmp_path, bad):
    state = to_hub_keys(model.state_dict())
    state["decoder.layers.0.conv.bias"] = state["decoder.layers.0.conv.bias"].clone()
    state["decoder.layers.0.conv.bias"][0] = bad
    model.config.save_pretrained(tmp_path)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=r"NaN or infinite weights in decoder\.layers\.0\.conv\.bias:"):
        EncodecModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("content, reason", [
    (b"not a checkpoint", "not a readable checkpoint .*: it is not a file of tensors$"),  # torch's 10 lines
    (b"", "not a readable checkpoint .*: the file is empty or cut short$"),  # ended in ": "
    (None, "does not hold a state dict of tensors"),  # was "no config.json beside"
])
def test_unreadable_checkpoints_give_one_line_reasons(tmp_path, content, reason):
    path = tmp_path / "junk.th"
    if content is None:
        torch.save({}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=reason):
        EncodecModel.from_pretrained(path)


def test_checkpoint_files_are_told_apart_by_content(model, tmp_path):
    save_file({key: value.contiguous() for key, value in to_hub_keys(model.state_dict()).items()},
              tmp_path / "pytorch_model.bin")  # safetensors under a pickle's name
    model.config.save_pretrained(tmp_path)
    assert_same_weights(EncodecModel.from_pretrained(tmp_path / "pytorch_model.bin"), model)
    (tmp_path / "cut.safetensors").write_bytes((tmp_path / "pytorch_model.bin").read_bytes()[:1000])
    with pytest.raises(ValueError,
                       match="cut.safetensors is not a readable safetensors file: it is damaged or cut short"):
        EncodecModel.from_pretrained(tmp_path / "cut.safetensors", config=model.config)


def test_hub_options_for_a_local_model_are_refused_not_ignored():
    with pytest.raises(ValueError, match=f"revison: options for hub downloads, but {DEFAULT_MODEL} is local"):
        EncodecModel.from_pretrained(DEFAULT_MODEL, revison="main")


def test_config_must_be_a_config_and_loads_by_shipped_name():
    with pytest.raises(ValueError, match="config must be an EncodecConfig .*, got dict"):
        EncodecModel.from_pretrained(DEFAULT_MODEL, config={"num_filters": 16})
    assert EncodecConfig.from_pretrained(DEFAULT_MODEL) == EncodecModel.from_pretrained(DEFAULT_MODEL).config


def test_missing_sources_say_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no model.safetensors or pytorch_model.bin"):
        EncodecModel.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no model at .*nothing.th"):
        EncodecModel.from_pretrained(tmp_path / "nothing.th")
    weights_only = tmp_path / "alone" / "model.safetensors"
    EncodecModel(EncodecConfig()).save_pretrained(weights_only.parent)
    (weights_only.parent / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="no config.json beside"):
        EncodecModel.from_pretrained(weights_only)


def test_config_json_tolerates_unknown_keys_and_matches_transformers(tmp_path):
    import transformers
    for preset in PRESETS.values():
        ours = preset()
        theirs = transformers.EncodecConfig(**ours.to_dict())
        theirs.save_pretrained(tmp_path)
        values = json.loads((tmp_path / "config.json").read_text())
        assert "transformers_version" in values  # keys we do not use are tolerated
        assert EncodecConfig.from_pretrained(tmp_path) == ours
        for name in ("frame_rate", "hop_length", "num_quantizers", "chunk_length", "chunk_stride", "codebook_nbits"):
            assert getattr(ours, name) == getattr(theirs, name), name
