"""A chain written as short text, for the command line: `"highpass(80) | encodec(bandwidth=1.5) | reverb"`.

Stages are separated by `|`; each is a name, optionally called with parameters written as Python
literals (numbers, strings, lists, tuples, None, True/False). The text is parsed with `ast` and
every parameter with `ast.literal_eval`: nothing in it is ever run as code.

Names, case-insensitive: our effects by short name or class name (`encodec` or `encodeccompressor`),
and pedalboard's plugins by class name, with or without a `filter` suffix (`highpass`,
`HighpassFilter`), or by an alias such as `mp3`. Codec stages without `model=` use the default model.
"""

from __future__ import annotations

import ast
import inspect

import pedalboard
import torch

from ..devices import resolve_device
from ..model import EncodecModel
from .chain import Chain
from .codec import EncodecCompressor, EncodecDecoder, EncodecEncoder
from .model_source import load_effect_model
from .tokens import BandwidthSchedule, CodebookTruncation, PacketLoss, TokenSubstitution

OUR_EFFECTS: dict[str, type] = {
    "encodec": EncodecCompressor, "encode": EncodecEncoder, "decode": EncodecDecoder,
    "truncate": CodebookTruncation, "substitute": TokenSubstitution, "packetloss": PacketLoss,
    "schedule": BandwidthSchedule,
}
CODEC_EFFECTS = (EncodecCompressor, EncodecEncoder, EncodecDecoder)
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


def parse_chain(spec: str, default_model: EncodecModel | str | None = None,
                default_device: str | torch.device | None = None) -> Chain:
    """The `Chain` a text spec describes; a one-line ValueError naming the stage if it is wrong.
    Codec stages without `model=` get `default_model`, without `device=` `default_device`; models
    given by path are loaded once per device."""
    try:
        tree = ast.parse(spec.strip(), mode="eval").body
    except SyntaxError as error:
        raise ValueError(f"cannot parse chain {spec!r}: {error.msg} (write stages as name(param=value) "
                         "separated by |)") from None
    nodes = []
    while isinstance(tree, ast.BinOp) and isinstance(tree.op, ast.BitOr):
        nodes.insert(0, tree.right)
        tree = tree.left
    nodes.insert(0, tree)
    models: dict[tuple[str | None, torch.device | None], EncodecModel] = {}
    stages = [_build_stage(index, node, spec, default_model, default_device, models)
              for index, node in enumerate(nodes)]
    try:
        return Chain(stages)
    except ValueError as error:
        raise ValueError(f"chain {spec!r}: {error}") from None


def _build_stage(index: int, node: ast.expr, spec: str, default_model: EncodecModel | str | None,
                 default_device: str | torch.device | None,
                 models: dict[tuple[str | None, torch.device | None], EncodecModel]) -> object:
    text = ast.get_source_segment(spec.strip(), node) or ast.unparse(node)
    where = f"stage {index} ({text})"
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
    if None in kwargs:
        raise ValueError(f"{where}: **parameters are not accepted")
    if issubclass(cls, CODEC_EFFECTS):
        kwargs["device"] = _device(kwargs.get("device", default_device), where)
        kwargs["model"] = _model(kwargs.get("model", default_model), kwargs["device"], models, where)
    try:
        return cls(*args, **kwargs)
    except (TypeError, ValueError, RuntimeError) as error:  # pedalboard: RuntimeError for e.g. a missing file
        plugin_signature = issubclass(cls, pedalboard.Plugin) and not isinstance(error, RuntimeError)
        detail = "bad parameters" if plugin_signature else str(error).splitlines()[0]
        raise ValueError(f"{where}: {detail}; {cls.__name__} accepts: {_parameters(cls)}") from None


def _device(device: str | torch.device | None, where: str) -> torch.device | None:
    try:
        return None if device is None else resolve_device(device)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


def _model(source: EncodecModel | str | None, device: torch.device | None,
           models: dict[tuple[str | None, torch.device | None], EncodecModel], where: str) -> EncodecModel:
    """The stage's model: loaded once per source and device in a spec; None is the package's default model."""
    if isinstance(source, EncodecModel):
        return source
    if source is not None and not isinstance(source, str):
        raise ValueError(f"{where}: model must be a path or hub id string, got {source!r}")
    if (source, device) not in models:
        try:
            models[source, device] = load_effect_model(source, where, device)
        except TypeError:  # no default model to fall back on
            raise ValueError(f"{where}: no model: pass --model, or model='path' in the stage") from None
    return models[source, device]
