"""Real speakers: recorded letters, words and exclamations from Debian packages, joined into utterances.

Synthesised speech cannot replace them: a codec trained on synthetic voices alone drifts away from recorded
speech. The packages hold one speaker a folder, and the speaker is the split item.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .common import PACKAGE_LICENSES, SAMPLE_RATE, Clip, item_rng, load_mono, normalise_peak
from .recordings import audio_seconds, recording_owners

# Recorded speech: the folder under which each sub-folder holds one speaker (a language or a voice pack).
VOICE_ROOTS = {
    "klettres-data": Path("/usr/share/klettres"),  # letters and syllables, per language
    "ktuberling-data": Path("/usr/share/ktuberling/sounds"),  # names of things, per language
    "hedgewars-data": Path("/usr/share/games/hedgewars/Data/Sounds/voices"),  # exclamations, per actor
}
VOICE_PAUSE_SECONDS = (0.1, 0.5)
VOICE_UTTERANCE_SECONDS = (3.0, 10.0)


def voice_speakers(packages: tuple[str, ...]) -> dict[str, list[Path]]:
    """Each speaker's recordings, keyed `voices/<package>/<folder>`; files outside a speaker folder are left out."""
    unknown = next((package for package in packages if package not in VOICE_ROOTS), None)
    if unknown is not None:
        raise ValueError(f"no speaker folder known for {unknown}: choose from {', '.join(VOICE_ROOTS)}")
    speakers: dict[str, list[Path]] = {}
    for path, package in recording_owners(packages).items():
        parts = path.relative_to(VOICE_ROOTS[package]).parts if path.is_relative_to(VOICE_ROOTS[package]) else ()
        if len(parts) > 1:
            speakers.setdefault(f"voices/{package}/{parts[0]}", []).append(path)
    return speakers


def utterance_plan(speakers: dict[str, list[Path]], seed: int) -> list[tuple[str, list[Path]]]:
    """Every recording once: each speaker's files in a seeded order, grouped into utterances of 3-10 s;
    the utterances of all speakers in a seeded order."""
    rng = np.random.default_rng([seed, zlib.crc32(b"voices")])
    plan = []
    for speaker in sorted(speakers):
        files = [speakers[speaker][i] for i in rng.permutation(len(speakers[speaker]))]
        utterance, seconds, target = [], 0.0, rng.uniform(*VOICE_UTTERANCE_SECONDS)
        for path in files:
            utterance.append(path)
            seconds += audio_seconds(path) + np.mean(VOICE_PAUSE_SECONDS)
            if seconds >= target:
                plan.append((speaker, utterance))
                utterance, seconds, target = [], 0.0, rng.uniform(*VOICE_UTTERANCE_SECONDS)
        if utterance:
            plan.append((speaker, utterance))
    return [plan[i] for i in rng.permutation(len(plan))]


def voice_clips(speakers: dict[str, list[Path]], seed: int) -> Iterator[Clip]:
    """One speaker's recordings joined by 0.1-0.5 s pauses; the split item is the speaker, so validation
    voices are never heard in training."""
    for index, (speaker, files) in enumerate(utterance_plan(speakers, seed)):
        rng = item_rng(seed, "voices", index)
        pauses = [round(float(rng.uniform(*VOICE_PAUSE_SECONDS)), 3) for _ in files]
        pieces = [piece for path, pause in zip(files, pauses)
                  for piece in (load_mono(path), np.zeros(int(pause * SAMPLE_RATE), np.float32))]
        package = speaker.split("/")[1]
        yield Clip(speaker, "voices", normalise_peak(np.concatenate(pieces[:-1])),
                   {"files": [str(path) for path in files], "pauses_seconds": pauses[:-1]},
                   PACKAGE_LICENSES[package], (package,))
