"""Install a trained codec (and its LM) as a model shipped inside the package, with its model card.

    python -m training.ship RUN_DIR [--lm LM_FILE] [--name encodec-fx-24khz]
        [--corpus-licenses CORPUS/LICENSES.md] [--train-log LOG] [--metrics TABLE.md] [--compute TEXT]
    python -m training.ship --lm LM_FILE [--name encodec-fx-24khz]     (an LM for the shipped codec)

RUN_DIR is a `train-codec` run (its model/ folder, else its fp16 export) or a model directory. The
codec goes to encodec_fx/pretrained/NAME/ in the hub layout with fp16 weights and no training
statistics (checked to be at most --max-mb), the LM beside it as lm.safetensors in fp16 with its
metadata pointing at the shipped codec, and MODEL_CARD.md says what it was trained on, for how long,
on what, how well it does and under which license. Everything is written to a temporary folder first
and then moved into place, and the installed model is loaded back by name before the command returns.
Without RUN_DIR, `--lm` adds (or replaces) the LM of the codec already shipped as NAME, which stays
as it is; the card's LM section is rewritten and the rest of the card kept.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from encodec_fx import pretrained
from encodec_fx.checkpoints import weights_sha256
from encodec_fx.feature_extraction import EncodecFeatureExtractor
from encodec_fx.model import EncodecModel
from encodec_fx.train.checkpoint import MODEL_DIR, STATE_FILE, has_checkpoint, load_checkpoint
from encodec_fx.train.command import EXPORT_NAME
from encodec_fx.train.export import export_generator, load_exported
from entropy.number_checks import is_finite_number

MAX_MB = 20.0
PROJECT_LICENSE = "MIT"
VALIDATION_LINE = re.compile(r"^step (\d+)/\d+ .*\| validation: (.*)$")


def load_run(run_dir: Path) -> tuple[EncodecModel, dict]:
    """The codec of a run with the step and settings of its checkpoint ({} without one): a train-codec
    run's checkpoint (its model folder that matches the state, as `--resume` takes it), else
    RUN_DIR/model/, RUN_DIR itself when it is a model directory, or RUN_DIR/generator-fp16.safetensors."""
    if has_checkpoint(run_dir):
        model, state = load_checkpoint(run_dir)
        return model, {"step": state["step"], "settings": state["settings"]}
    for source in (run_dir / MODEL_DIR, run_dir):
        if (source / "config.json").is_file():
            return EncodecModel.from_pretrained(source), {}
    if (run_dir / EXPORT_NAME).is_file():
        return load_exported(run_dir / EXPORT_NAME), {}
    raise FileNotFoundError(f"no trained codec in {run_dir}: expected {MODEL_DIR}/ and {STATE_FILE} (a train-codec "
                            f"run), {EXPORT_NAME}, or config.json with model.safetensors")


def last_validation(log_text: str, source: str = "the training log") -> tuple[int, dict[str, float]] | None:
    """(step, metrics) of the last validation line a `train-codec` log holds, or None; a validation
    line whose metrics are not `NAME NUMBER` is an error naming `source` and the line."""
    found = None
    for number, line in enumerate(log_text.splitlines(), 1):
        match = VALIDATION_LINE.match(line.strip())
        if match:
            metrics = {}
            for item in match.group(2).split(","):
                name, _, value = item.strip().rpartition(" ")
                try:
                    metrics[name] = float(value)
                except ValueError:
                    raise ValueError(f"{source}, line {number}: validation metric {item.strip()!r} is not a name "
                                     f"and a number, as train-codec logs them (e.g. 'si_snr@6 3.250')") from None
            found = int(match.group(1)), metrics
    return found


def install(run_dir: str | Path, name: str = pretrained.DEFAULT_MODEL, lm_file: str | Path | None = None, *,
            corpus_licenses: str | Path | None = None, train_log: str | Path | None = None,
            metrics: str | Path | None = None, compute: str | None = None, data: str | None = None,
            max_mb: float = MAX_MB, force: bool = False) -> Path:
    """Write pretrained/NAME/ from a run; returns the folder. Refuses to replace an installed model
    unless `force`, and a codec whose fp16 weights exceed `max_mb` megabytes."""
    run_dir = Path(run_dir)
    if not is_finite_number(max_mb) or max_mb <= 0:
        raise ValueError(f"--max-mb must be a positive number of megabytes (default {MAX_MB:g}), got {max_mb!r}")
    if not pretrained.NAME_PATTERN.fullmatch(name):
        raise ValueError(f"model name {name!r} must be lowercase letters, digits, '.', '_' or '-', e.g. "
                         f"{pretrained.DEFAULT_MODEL}")
    destination = pretrained.ROOT / name
    if (destination / pretrained.WEIGHTS_FILE).exists() and not force:
        raise FileExistsError(f"{destination} already holds a shipped model; pass --force to replace it")
    texts = {"corpus_licenses": _read(corpus_licenses), "train_log": _read(train_log), "metrics": _read(metrics)}
    if texts["train_log"] is not None:
        last_validation(texts["train_log"], str(train_log))  # a bad line is refused before any work
    model, training = load_run(run_dir)
    staging = pretrained.ROOT / f".{name}.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        weights = staging / pretrained.WEIGHTS_FILE
        export_generator(model, weights)
        weights.chmod(0o644)  # safetensors writes 0600; package data must be readable by all users
        megabytes = weights.stat().st_size / 1e6
        if megabytes > max_mb:
            raise ValueError(f"the codec's fp16 weights take {megabytes:.1f} MB, over the {max_mb:g} MB limit for a "
                             f"shipped model: train a smaller one (e.g. --num-filters 16) or raise --max-mb")
        model.config.save_pretrained(staging)
        EncodecFeatureExtractor.from_config(model.config).save_pretrained(staging)
        shipped = EncodecModel.from_pretrained(staging)  # what users will get: fp16-rounded, no statistics
        codec_identity = {"name": name, "sha256": weights_sha256(shipped.state_dict())}
        lm_summary = _install_lm(Path(lm_file), staging / pretrained.LM_FILE, shipped, codec_identity) \
            if lm_file is not None else None
        card = model_card(name, shipped, megabytes, training, lm_summary, **texts, compute=compute, data=data)
        (staging / pretrained.CARD_FILE).write_text(card)
        if destination.exists():
            shutil.rmtree(destination)
        staging.rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    EncodecModel.from_pretrained(name)  # resolves by name, as users will load it
    return destination


def install_lm(lm_file: str | Path, name: str = pretrained.DEFAULT_MODEL, *, force: bool = False) -> Path:
    """Add (or, with `force`, replace) the LM of the codec shipped as NAME, leaving the codec as it is;
    returns its folder."""
    folder = pretrained.ROOT / name
    if not (folder / pretrained.WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"no shipped codec named {name!r} in {pretrained.ROOT}: ship one first (give RUN_DIR)")
    if (folder / pretrained.LM_FILE).exists() and not force:
        raise FileExistsError(f"{folder} already holds an LM; pass --force to replace it")
    codec = EncodecModel.from_pretrained(folder)
    codec_identity = {"name": name, "sha256": weights_sha256(codec.state_dict())}
    staging, card_staging = folder / f".{pretrained.LM_FILE}.new", folder / f".{pretrained.CARD_FILE}.new"
    try:
        summary = _install_lm(Path(lm_file), staging, codec, codec_identity)
        trained_for = summary["metadata"].get("trained_with_codec") or {}
        if trained_for.get("sha256") not in (None, codec_identity["sha256"]):
            raise ValueError(f"the LM at {lm_file} was trained on another codec's tokens (sha256 "
                             f"{trained_for['sha256'][:12]}…, shipped: {codec_identity['sha256'][:12]}…): train it "
                             f"with `encodec-fx train-lm --model {name}`")
        card_path = folder / pretrained.CARD_FILE
        card = card_path.read_text() if card_path.is_file() else f"# {name}\n"
        card_staging.write_text(_with_lm_section(card, lm_card_section(name, summary)))
        staging.rename(folder / pretrained.LM_FILE)
        card_staging.rename(card_path)
    finally:
        for leftover in (staging, card_staging):
            leftover.unlink(missing_ok=True)
    return folder


def _with_lm_section(card: str, section: list[str]) -> str:
    """The card with its LM section replaced by `section`, or inserted before the license section."""
    lines = card.rstrip("\n").split("\n")
    heading = section[0]
    if heading in lines:
        start = lines.index(heading)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = section
    else:
        at = lines.index("## License") if "## License" in lines else len(lines)
        lines[at:at] = section
    return "\n".join(lines) + "\n"


def _install_lm(source: Path, destination: Path, codec: EncodecModel, codec_identity: dict) -> dict:
    """Copy the LM in fp16 with its metadata naming the shipped codec; returns what the card reports."""
    from entropy.lm import load_lm, read_lm_metadata, save_lm
    if not source.is_file():
        raise FileNotFoundError(f"no LM file at {source}: pass an LM written by `encodec-fx train-lm`")
    lm = load_lm(source)
    if lm.config.card != codec.config.codebook_size or lm.config.n_q < codec.config.num_quantizers:
        raise ValueError(f"the LM at {source} predicts {lm.config.n_q} codebooks of {lm.config.card} entries; the "
                         f"codec needs {codec.config.num_quantizers} of {codec.config.codebook_size}")
    metadata = read_lm_metadata(source)
    trained_for = metadata.get("codec")
    metadata["codec"] = codec_identity
    if trained_for:
        metadata["trained_with_codec"] = trained_for
    save_lm(lm.half(), destination, metadata=metadata)
    destination.chmod(0o644)
    return {"config": asdict(lm.config), "megabytes": destination.stat().st_size / 1e6, "metadata": metadata}


def _read(path: str | Path | None) -> str | None:
    """The text of a file for the model card (None for None); a missing or non-text file is refused by name."""
    if path is None:
        return None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file at {path}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text (byte {error.start}): give a text or markdown file") from None


def model_card(name: str, model: EncodecModel, megabytes: float, training: dict, lm: dict | None, *,
               corpus_licenses: str | None = None, train_log: str | None = None, metrics: str | None = None,
               compute: str | None = None, data: str | None = None) -> str:
    """MODEL_CARD.md: architecture, data, training, compute, metrics, license."""
    config = model.config
    parameters = sum(p.numel() for p in model.parameters())
    settings = training.get("settings") or {}
    lines = [f"# {name}", "",
             f"An EnCodec codec at {config.sampling_rate // 1000} kHz, {config.audio_channels} channel(s), trained "
             f"from scratch by the encodec-fx project and shipped inside the package. Load it offline with "
             f'`EncodecModel.from_pretrained("{name}")`.', "",
             "## Model", "",
             f"- {config.num_filters} base filters, {'causal' if config.use_causal_conv else 'non-causal'}, "
             f"{parameters / 1e6:.2f} M parameters, {config.num_quantizers} codebooks of {config.codebook_size}",
             f"- bandwidths {', '.join(f'{b:g}' for b in config.target_bandwidths)} kbps, "
             f"{config.frame_rate} frames per second",
             f"- weights: {pretrained.WEIGHTS_FILE}, fp16 storage ({megabytes:.1f} MB), loaded into float32; "
             f"codebook training statistics are not shipped",
             f"- identity (sha256 of the loaded weights, as `.ecfx` archives record it): "
             f"`{weights_sha256(model.state_dict())}`", ""]
    lines += ["## Training data", "", data or "The project's corpus, built by `python -m training.corpus`: "
              "speech synthesised with espeak-ng, flite and festival, music rendered with fluidsynth and the "
              "fluid-soundfont-gm sound font, music recordings and real speakers' voices from Debian packages, "
              "and mixtures of speech over music; a validation split held out.", ""]
    if corpus_licenses:
        lines += [_demoted(corpus_licenses), ""]
    lines += ["## Training", ""]
    if training.get("step") is not None:
        lines.append(f"- steps trained: {training['step']}")
    for key, value in settings.items():  # the run's TrainingConfig, whatever fields it has
        if key != "steps":  # the planned total; the step reached is above
            lines.append(f"- {key.replace('_', ' ')}: {json.dumps(value) if isinstance(value, dict) else value}")
    lines += [f"- compute: {compute or 'not recorded'}", ""]
    lines += ["## Metrics", ""]
    validation = last_validation(train_log) if train_log else None
    if validation:
        step, values = validation
        lines += [f"Validation split at step {step} (SI-SNR in dB, higher is better; multi-scale mel distance, "
                  "lower is better):", "", "| metric | value |", "|---|---|"]
        lines += [f"| {metric} | {value:.3f} |" for metric, value in values.items()] + [""]
    if metrics:
        lines += [metrics.strip(), ""]
    if not validation and not metrics:
        lines += ["Not recorded.", ""]
    if lm is not None:
        lines += lm_card_section(name, lm)
    lines += ["## License", "",
              f"The weights are released under the project's {PROJECT_LICENSE} license. They were trained only on the "
              "freely licensed audio listed above; the audio itself is not distributed with them.", ""]
    return "\n".join(lines)


def lm_card_section(name: str, lm: dict) -> list[str]:
    """The card's lines on the LM: file, configuration, held-out bits per token, training settings."""
    config_text = ", ".join(f"{key} {value}" for key, value in lm["config"].items())
    lines = ["## Entropy-coding LM", "",
             f"`{pretrained.LM_FILE}`, known to archives as `{name}{pretrained.LM_SUFFIX}` and used by "
             f"`encodec-fx compress` by default ({lm['megabytes']:.1f} MB, fp16 storage): {config_text}."]
    bits = lm["metadata"].get("bits_per_token") or {}
    if bits:
        lines += ["", "Held-out bits per token by number of codebooks: "
                  + ", ".join(f"{k}: {v}" for k, v in bits.items()) + "."]
    if lm["metadata"].get("training"):
        lines += ["", f"Training settings: `{json.dumps(lm['metadata']['training'])}`."]
    return lines + [""]


def _demoted(markdown: str) -> str:
    """Markdown with every heading two levels deeper, to sit inside a second-level section."""
    return re.sub(r"^(#+) ", r"##\1 ", markdown.strip(), flags=re.MULTILINE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.ship", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", nargs="?", help="train-codec run folder (model/ or the fp16 export), or a model "
                        "directory; omit it to add --lm to the codec already shipped as --name")
    parser.add_argument("--lm", help="LM file from `encodec-fx train-lm` for this codec")
    parser.add_argument("--name", default=pretrained.DEFAULT_MODEL, help=f"default {pretrained.DEFAULT_MODEL}")
    parser.add_argument("--corpus-licenses", help="the corpus's LICENSES.md, copied into the model card")
    parser.add_argument("--train-log", help="train-codec output; its last validation line goes into the card")
    parser.add_argument("--metrics", help="markdown (e.g. benchmarks/quality.py output) for the card's metrics")
    parser.add_argument("--compute", help="what the training ran on and for how long, for the card")
    parser.add_argument("--data", help="replaces the card's default description of the training data")
    parser.add_argument("--max-mb", type=float, default=MAX_MB, help=f"size limit of the codec (default {MAX_MB:g})")
    parser.add_argument("--force", action="store_true", help="replace an installed model of that name")
    args = parser.parse_args(argv)
    if args.run_dir is None and args.lm is None:
        parser.error("give RUN_DIR (a codec to ship), or --lm alone (an LM for the shipped codec)")
    try:
        if args.run_dir is None:
            folder = install_lm(args.lm, args.name, force=args.force)
        else:
            folder = install(args.run_dir, args.name, args.lm, corpus_licenses=args.corpus_licenses,
                             train_log=args.train_log, metrics=args.metrics, compute=args.compute, data=args.data,
                             max_mb=args.max_mb, force=args.force)
    except (OSError, ValueError) as error:
        print(f"ship: error: {error}", file=sys.stderr)
        return 1
    sizes = ", ".join(f"{path.name} {path.stat().st_size / 1e6:.1f} MB" for path in sorted(folder.iterdir()))
    print(f"installed {args.name} in {folder}: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
