"""A chain written as short text, for the command line: `"highpass(80) | encodec(bandwidth=1.5) | reverb"`.

Stages are separated by `|`; each is a name, optionally called with parameters written as Python
literals (numbers, strings, lists, tuples, None, True/False). The text is parsed with `ast` and
every parameter with `ast.literal_eval`: nothing in it is ever run as code.

Names, case-insensitive: our effects by short name or class name (`encodec` or `encodeccompressor`),
and pedalboard's plugins by class name, with or without a `filter` suffix (`highpass`,
`HighpassFilter`), or by an alias such as `mp3`. Codec stages without `model=` use the default model.
The whole spec is checked before any audio runs: each stage's parameters by the effect itself (a
native plugin's also against `ranges.RANGES`, and an impulse response must be a regular audio file),
a codec stage's bandwidth against its model and a token stage's parameters against the codes the
encoder before it gives.
"""

from __future__ import annotations

import ast
import inspect
import os
from typing import Any, cast

import numpy as np
import pedalboard
import torch

from ..devices import resolve_device
from ..model import EncodecModel
from ..pretrained import shipped_names
from .chain import Chain
from .codec import EncodecCompressor, EncodecDecoder, EncodecEncoder
from .codes import Codes
from .layout import AudioLayout
from .model_source import ModelSource, load_effect_model
from .ranges import check_impulse_response, check_plugin
from .tokens import BandwidthSchedule, CodebookTruncation, PacketLoss, TokenSubstitution

OUR_EFFECTS: dict[str, type] = {
    "encodec": EncodecCompressor, "encode": EncodecEncoder, "decode": EncodecDecoder,
    "truncate": CodebookTruncation, "substitute": TokenSubstitution, "packetloss": PacketLoss,
    "schedule": BandwidthSchedule,
}
CODEC_EFFECTS = (EncodecCompressor, EncodecEncoder, EncodecDecoder)
TOKEN_EFFECTS = (BandwidthSchedule, CodebookTruncation, PacketLoss, TokenSubstitution)
MAX_STAGES = 1000
"""The most stages a spec may have. Python's parser gives up a few thousand stages in (a RecursionError);
build longer chains in Python."""
PLUGIN_ALIASES = {"mp3": "mp3compressor", "gsm": "gsmfullratecompressor", "brickwall": "brickwalllimiter",
                  "gate": "noisegate", "ladder": "ladderfilter", "peak": "peakfilter"}
# Native plugins that a text chain cannot sensibly build: containers and hosts for external plugin files.
EXCLUDED_PLUGINS = {"Chain", "Mix", "Pedalboard", "Plugin", "PluginContainer", "ExternalPlugin", "VST3Plugin",
                    "AudioUnitPlugin", "IIRFilter"}


def _native_plugins() -> dict[str, type]:
    return {name.lower(): cls for name, cls in vars(pedalboard).items()
            if isinstance(cls, type) and issubclass(cls, pedalboard.Plugin) and not name.startswith("_")
            and name not in EXCLUDED_PLUGINS}


def accepted_names() -> str:
    ours = ", ".join(OUR_EFFECTS)
    natives = ", ".join(sorted({name.removesuffix("filter") for name in _native_plugins()} | set(PLUGIN_ALIASES)))
    return f"{ours} (ours), or a pedalboard plugin: {natives}"


def find_stage(name: str) -> type:
    """The effect or plugin class a stage name stands for."""
    key = name.lower()
    ours = {**OUR_EFFECTS, **{cls.__name__.lower(): cls for cls in OUR_EFFECTS.values()}}
    natives = _native_plugins()
    for candidate in (key, PLUGIN_ALIASES.get(key), f"{key}filter"):
        if candidate in ours:
            return ours[candidate]
        if candidate in natives:
            return natives[candidate]
    raise ValueError(f"unknown effect {name!r}; accepted: {accepted_names()}")


def _parameters(cls: type) -> str:
    """What a stage accepts, for error messages."""
    if issubclass(cls, pedalboard.Plugin):
        names = [name for name in dir(cls) if isinstance(getattr(cls, name), property)
                 and not name.startswith("is_") and name not in ("reported_latency_samples",)]
    else:
        names = [name for name in inspect.signature(cls).parameters]
    return ", ".join(names) or "none"


def parse_chain(spec: str, default_model: ModelSource | None = None,
                default_device: str | torch.device | None = None) -> Chain:
    """The `Chain` a text spec describes; a one-line ValueError naming the stage if it is wrong.
    Codec stages without `model=` get `default_model`, without `device=` `default_device`; models
    given by path are loaded once per device."""
    text = spec.strip()
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as error:
        raise ValueError(f"cannot parse chain {spec!r}: {error.msg} (write stages as name(param=value) "
                         "separated by |)") from None
    except (RecursionError, MemoryError):  # the parser's depth: thousands of stages, or nested operators
        raise ValueError(f"cannot parse chain: too long or too deeply nested (at most {MAX_STAGES} stages)") from None
    nodes: list[ast.expr] = []
    while isinstance(tree, ast.BinOp) and isinstance(tree.op, ast.BitOr):
        nodes.insert(0, tree.right)
        tree = tree.left
    nodes.insert(0, tree)
    if len(nodes) > MAX_STAGES:
        raise ValueError(f"chain has {len(nodes)} stages; at most {MAX_STAGES} are accepted")
    wheres = [f"stage {index} ({ast.get_source_segment(text, node) or ast.unparse(node)})"
              for index, node in enumerate(nodes)]
    models: dict[tuple[ModelSource | None, torch.device | None], EncodecModel] = {}
    stages = [_build_stage(node, where, default_model, default_device, models) for node, where in zip(nodes, wheres)]
    try:
        chain = Chain(stages)
    except ValueError as error:
        raise ValueError(f"chain {spec!r}: {error}") from None
    _check_token_stages(stages, wheres)
    return chain


def _build_stage(node: ast.expr, where: str, default_model: ModelSource | None,
                 default_device: str | torch.device | None,
                 models: dict[tuple[ModelSource | None, torch.device | None], EncodecModel]) -> object:
    call = node if isinstance(node, ast.Call) else None
    name_node = call.func if call else node
    if not isinstance(name_node, ast.Name):
        raise ValueError(f"{where}: expected a name such as reverb or reverb(room_size=0.3)")
    try:
        cls = find_stage(name_node.id)
        args = [ast.literal_eval(arg) for arg in call.args] if call else []
        kwargs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords} if call else {}
    except ValueError as error:
        message = str(error)
        if "malformed" in message:
            message = "parameters must be literals (numbers, strings, lists, tuples, None, True, False)"
        raise ValueError(f"{where}: {message}") from None
    keywords = [keyword.arg for keyword in call.keywords] if call else []
    if None in keywords:
        raise ValueError(f"{where}: **parameters are not accepted")
    repeated = next((name for name in keywords if keywords.count(name) > 1), None)
    if repeated:
        raise ValueError(f"{where}: {repeated} given twice")
    if issubclass(cls, CODEC_EFFECTS):
        kwargs["device"] = _device(kwargs.get("device", default_device), where)
        kwargs["model"] = _model(kwargs.get("model", default_model), kwargs["device"], models, where)
    if cls is pedalboard.Convolution:  # before pedalboard opens it: a FIFO would block, junk would pass as silence
        check_impulse_response(kwargs.get("impulse_response_filename", args[0] if args else None), where)
    try:
        stage = cls(*args, **cast("dict[str, Any]", kwargs))  # no None key: ** was refused above
    except (TypeError, ValueError, RuntimeError) as error:  # pedalboard: RuntimeError for e.g. a missing file
        plugin_signature = issubclass(cls, pedalboard.Plugin) and isinstance(error, TypeError)  # ValueError: a range
        detail = "bad parameters" if plugin_signature else str(error).splitlines()[0]
        raise ValueError(f"{where}: {detail}; {cls.__name__} accepts: {_parameters(cls)}") from None
    if isinstance(stage, pedalboard.Plugin):
        check_plugin(stage, where)  # what pedalboard lets through to arithmetic that blows up
    return stage


def _device(device: str | torch.device | None, where: str) -> torch.device | None:
    try:
        return None if device is None else resolve_device(device)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _model(source: ModelSource | None, device: torch.device | None,
           models: dict[tuple[ModelSource | None, torch.device | None], EncodecModel], where: str) -> EncodecModel:
    """The stage's model: loaded once per source and device in a spec; None is the package's default model."""
    if isinstance(source, EncodecModel):
        return source
    if source is not None and not isinstance(source, (str, os.PathLike)):
        raise ValueError(f"{where}: model must be a path, a shipped model name ({', '.join(shipped_names())}), "
                         f"a hub id such as 'facebook/encodec_24khz' or (from Python) an EncodecModel, got {source!r}")
    if (source, device) not in models:
        try:
            models[source, device] = load_effect_model(source, where, device)
        except (OSError, ValueError) as error:  # no model there, or not one that loads
            raise ValueError(f"{where}: {error}") from None
    return models[source, device]


def _check_token_stages(stages: list[object], wheres: list[str]) -> None:
    """Each token stage run on codes with no frames from the encoder before it, so that parameters that
    depend on the codes (`encode(bandwidth=6) | truncate(99)`) are refused now, not once audio runs."""
    codes = None
    for stage, where in zip(stages, wheres):
        if isinstance(stage, EncodecEncoder):
            config, shape = stage.model.config, (1, 1, stage.model.num_quantizers_for_bandwidth(stage.bandwidth), 0)
            codes = Codes(np.zeros(shape, np.int64), np.ones(shape, bool), None, 0, config, config.sampling_rate,
                          AudioLayout(1, 0, 1, True), 0)
        elif isinstance(stage, TOKEN_EFFECTS) and codes is not None:
            try:
                codes = stage.apply(codes)
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
            finally:
                stage.reset()  # forget what the check drew (a seed)
