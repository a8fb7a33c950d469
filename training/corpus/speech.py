"""Synthesised speech: generated text spoken by espeak-ng, and by flite and festival when installed."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import PACKAGE_LICENSES, Clip, item_rng, load_mono, require_tool, run_tool
from .text import FORTUNES_FILE, WORDS_FILE, fortune_quotes, random_sentence, word_list

FESTIVAL_VOICES = Path("/usr/share/festival/voices")
ENGINE_WEIGHTS = {"espeak-ng": 7, "flite": 2, "festival": 1}
FLITE_SKIPPED_VOICES = ("awb_time", "kal")  # a talking clock, and an 8 kHz voice (kal16 is kept)
ESPEAK_VARIANTS = ("", "+f1", "+f2", "+f3", "+f4", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7")
ENGINE_PACKAGES = {"espeak-ng": "espeak-ng-data", "flite": "flite", "festival": "festvox-kallpc16k"}


def espeak_voices() -> list[str]:
    """Language codes of the installed espeak-ng voices (the `-v` argument)."""
    lines = run_tool([require_tool("espeak-ng"), "--voices"]).splitlines()[1:]
    return sorted({line.split()[1] for line in lines if len(line.split()) > 1})


def espeak_speech(text: str, voice: str, variant: str, pitch: int, speed: int, amplitude: int,
                  workdir: Path) -> np.ndarray:
    """`text` spoken by espeak-ng with the given voice, variant (+f1, +m3, ...), pitch, words/minute, volume."""
    wav = workdir / "espeak.wav"
    run_tool([require_tool("espeak-ng"), "-v", voice + variant, "-p", str(pitch), "-s", str(speed),
              "-a", str(amplitude), "-w", str(wav), "--stdin"], stdin=text)
    return load_mono(wav)


def flite_voices() -> list[str]:
    """Names of flite's built-in general-purpose wideband voices."""
    listing = run_tool([require_tool("flite"), "-lv"])
    return sorted(set(listing.split(":", 1)[-1].split()) - set(FLITE_SKIPPED_VOICES))


def flite_speech(text: str, voice: str, duration_stretch: float, pitch_hz: float, workdir: Path) -> np.ndarray:
    """`text` spoken by flite, slowed or sped by `duration_stretch`, around `pitch_hz`."""
    wav = workdir / "flite.wav"
    run_tool([require_tool("flite"), "-voice", voice, "--setf", f"duration_stretch={duration_stretch:.3f}",
              "--setf", f"int_f0_target_mean={pitch_hz:.1f}", "-t", text, "-o", str(wav)])
    return load_mono(wav)


def festival_voices(root: Path = FESTIVAL_VOICES) -> list[str]:
    """Installed festival voices (directories under /usr/share/festival/voices/<language>/)."""
    return sorted(path.name for path in root.glob("*/*") if path.is_dir())


def festival_speech(text: str, voice: str, workdir: Path) -> np.ndarray:
    """`text` spoken by festival's text2wave with `voice`."""
    text_file, wav = workdir / "festival.txt", workdir / "festival.wav"
    text_file.write_text(text, encoding="utf-8")
    run_tool([require_tool("text2wave"), "-eval", f"(voice_{voice})", str(text_file), "-o", str(wav)])
    return load_mono(wav)


@dataclass
class SpeechKit:
    """What speech synthesis can draw on: text, and the voices of each installed engine."""
    words: list[str]
    quotes: list[str]
    voices: dict[str, list[str]]

    @property
    def text_packages(self) -> tuple[str, ...]:
        return ("wamerican", "fortunes-min") if self.quotes else ("wamerican",)


def discover_speech_kit(words_file: Path = WORDS_FILE, fortunes_file: Path = FORTUNES_FILE) -> SpeechKit:
    """espeak-ng is required; flite and festival join in when installed."""
    voices = {"espeak-ng": espeak_voices()}
    if shutil.which("flite"):
        voices["flite"] = flite_voices()
    if shutil.which("text2wave") and festival_voices():
        voices["festival"] = festival_voices()
    return SpeechKit(word_list(words_file), fortune_quotes(fortunes_file), voices)


def speech_clip(kit: SpeechKit, seed: int, index: int, workdir: Path) -> Clip:
    """One synthesised utterance of a few sentences, engine and voice settings drawn from the item's seed."""
    rng = item_rng(seed, "speech", index)
    text = " ".join(random_sentence(rng, kit.words, kit.quotes) for _ in range(int(rng.integers(1, 4))))
    engines = sorted(kit.voices)
    weights = np.array([ENGINE_WEIGHTS[engine] for engine in engines], dtype=float)
    engine = engines[int(rng.choice(len(engines), p=weights / weights.sum()))]
    voice = kit.voices[engine][int(rng.integers(len(kit.voices[engine])))]
    params: dict = {"engine": engine, "voice": voice, "text": text}
    if engine == "espeak-ng":
        params |= {"variant": ESPEAK_VARIANTS[int(rng.integers(len(ESPEAK_VARIANTS)))],
                   "pitch": int(rng.integers(10, 91)), "speed": int(rng.integers(110, 260)),
                   "amplitude": int(rng.integers(60, 181))}
        audio = espeak_speech(text, voice, params["variant"], params["pitch"], params["speed"],
                              params["amplitude"], workdir)
    elif engine == "flite":
        params |= {"duration_stretch": round(float(rng.uniform(0.75, 1.4)), 3),
                   "pitch_hz": round(float(rng.uniform(80, 220)), 1)}
        audio = flite_speech(text, voice, params["duration_stretch"], params["pitch_hz"], workdir)
    else:
        audio = festival_speech(text, voice, workdir)
    packages = (ENGINE_PACKAGES[engine], *kit.text_packages)
    license_ = f"speech synthesised by {engine}; " + "; ".join(f"{p}: {PACKAGE_LICENSES[p]}" for p in packages)
    return Clip(f"speech/{index:06d}", "speech", audio, params, license_, packages)
