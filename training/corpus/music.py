"""Rendered music: generated songs and Bach chorales, played by fluidsynth with the Fluid GM sound font.

Songs are generated in a random key, scale and tempo; the chorales come from music21's bundled corpus when
music21 is importable (it is optional). Both are written as MIDI (`midi`) and rendered straight at 24 kHz.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import PACKAGE_LICENSES, SAMPLE_RATE, Clip, item_rng, load_mono, require_file, require_tool, run_tool
from .midi import Note, Part, midi_bytes

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SOUNDFONT_LICENSE = f"sound font fluid-soundfont-gm: {PACKAGE_LICENSES['fluid-soundfont-gm']}"
MUSIC21_LICENSE = ("public-domain compositions (J. S. Bach); encodings public domain or used by permission "
                   "per music21's README; music21 itself BSD-3-Clause")
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10),
          "pentatonic": (0, 2, 4, 7, 9)}
MELODY_PROGRAMS = (0, 4, 6, 11, 13, 19, 22, 24, 25, 40, 41, 42, 56, 57, 60, 65, 68, 71, 73, 74, 80, 81)
CHORD_PROGRAMS = (0, 2, 4, 16, 19, 24, 48, 49, 50, 52, 61, 88, 89)
BASS_PROGRAMS = (32, 33, 34, 35, 38, 42, 43, 58)
DRUM_CHANNEL = 9


def scale_pitches(root: int, scale: str, low: int, high: int) -> list[int]:
    """Every pitch of the scale on `root` between `low` and `high`."""
    return [pitch for pitch in range(low, high + 1) if (pitch - root) % 12 in SCALES[scale]]


def random_song(rng: np.random.Generator, bars: int) -> tuple[list[Part], float, dict]:
    """A short piece: chords, bass line, a stepwise melody and maybe drums, in a random key, scale and tempo."""
    root, scale = int(rng.integers(12)), str(rng.choice(sorted(SCALES)))
    tempo = float(rng.integers(60, 180))
    degrees = [int(d) for d in rng.choice([0, 3, 4, 5, 1], size=bars)]
    chords = Part(int(rng.choice(CHORD_PROGRAMS)), 0)
    bass = Part(int(rng.choice(BASS_PROGRAMS)), 1)
    melody = Part(int(rng.choice(MELODY_PROGRAMS)), 2)
    scale_notes = scale_pitches(root, scale, 36, 96)
    tonic_index = scale_notes.index(next(p for p in scale_notes if p >= 48 and (p - root) % 12 == 0))
    step = len(SCALES[scale])
    for bar, degree in enumerate(degrees):
        base = tonic_index + degree
        for offset in (0, 2, 4):
            chords.notes.append(Note(4 * bar, 4, scale_notes[base + offset], int(rng.integers(50, 80))))
        for beat in range(4):
            bass.notes.append(Note(4 * bar + beat, 0.9, scale_notes[base - step], int(rng.integers(70, 100))))
    position, beat = tonic_index + step, 0.0
    while beat < 4 * bars:
        length = float(rng.choice([0.25, 0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
        position = int(np.clip(position + rng.integers(-2, 3), tonic_index, len(scale_notes) - 1))
        melody.notes.append(Note(beat, length, scale_notes[position], int(rng.integers(60, 120))))
        beat += length
    parts = [chords, bass, melody]
    if rng.random() < 0.6:
        parts.append(drum_part(rng, bars))
    params = {"root": root, "scale": scale, "tempo_bpm": tempo, "bars": bars,
              "programs": [part.program for part in parts], "drums": len(parts) == 4}
    return parts, tempo, params


def drum_part(rng: np.random.Generator, bars: int) -> Part:
    """Kick on 1 and 3, snare on 2 and 4, hi-hat in eighths, with random ghost notes."""
    drums = Part(0, DRUM_CHANNEL)
    for eighth in range(8 * bars):
        beat = eighth / 2
        if eighth % 4 == 0:
            drums.notes.append(Note(beat, 0.25, 36, int(rng.integers(90, 127))))
        if eighth % 4 == 2:
            drums.notes.append(Note(beat, 0.25, 38, int(rng.integers(80, 120))))
        if rng.random() < 0.8:
            drums.notes.append(Note(beat, 0.25, 42, int(rng.integers(40, 90))))
    return drums


def render_midi(midi: bytes, gain: float, reverb: bool, workdir: Path, soundfont: Path = SOUNDFONT) -> np.ndarray:
    """MIDI rendered by fluidsynth with a General MIDI sound font, straight at SAMPLE_RATE."""
    fluidsynth = require_tool("fluidsynth")
    require_file(soundfont, "fluid-soundfont-gm")
    midi_file, wav = workdir / "song.mid", workdir / "song.wav"
    midi_file.write_bytes(midi)
    run_tool([fluidsynth, "-ni", "-q", "-g", f"{gain:.2f}", "-R", "1" if reverb else "0", "-C", "0",
              "-r", str(SAMPLE_RATE), "-T", "wav", "-O", "float", "-F", str(wav), str(soundfont), str(midi_file)])
    return load_mono(wav)


def bach_chorales() -> list[Path]:
    """Paths of the Bach chorales bundled with music21, or none when music21 is not importable."""
    try:
        from music21 import corpus
    except ImportError:
        return []
    return sorted(corpus.getComposer("bach"))


def chorale_parts(path: Path, rng: np.random.Generator, max_beats: float) -> list[Part]:
    """The voices of a chorale as parts, each on a random melodic General MIDI program."""
    from music21 import converter
    score = converter.parse(str(path))
    parts = []
    for channel, voice in enumerate(score.parts[:8]):
        part = Part(int(rng.choice(MELODY_PROGRAMS + CHORD_PROGRAMS)), channel)
        for element in voice.flatten().notes:
            if float(element.offset) < max_beats:
                for pitch in element.pitches:
                    part.notes.append(Note(float(element.offset), float(element.quarterLength), pitch.midi, 80))
        parts.append(part)
    return parts


@dataclass
class MusicKit:
    """What music rendering can draw on: the sound font and, optionally, music21's chorales."""
    soundfont: Path
    chorales: list[Path]


def discover_music_kit(soundfont: Path = SOUNDFONT) -> MusicKit:
    require_tool("fluidsynth")
    return MusicKit(require_file(soundfont, "fluid-soundfont-gm"), bach_chorales())


def music_clip(kit: MusicKit, seed: int, index: int, workdir: Path) -> Clip:
    """One rendered piece: every third item a music21 chorale (when available), otherwise a generated song."""
    rng = item_rng(seed, "music", index)
    gain, reverb = round(float(rng.uniform(0.3, 1.0)), 2), bool(rng.random() < 0.5)
    if kit.chorales and index % 3 == 0:
        path = kit.chorales[int(rng.integers(len(kit.chorales)))]
        tempo = float(rng.integers(60, 120))
        parts = chorale_parts(path, rng, max_beats=tempo / 2)  # about 30 seconds
        params = {"generator": "music21-chorale", "score": path.name, "tempo_bpm": tempo,
                  "programs": [part.program for part in parts]}
        item, license_ = f"music/chorale/{path.stem}", f"{MUSIC21_LICENSE}; {SOUNDFONT_LICENSE}"
    else:
        parts, tempo, params = random_song(rng, bars=int(rng.integers(4, 9)))
        params = {"generator": "random-song"} | params
        item, license_ = f"music/song/{index:06d}", f"generated MIDI; {SOUNDFONT_LICENSE}"
    audio = render_midi(midi_bytes(parts, tempo), gain, reverb, workdir, kit.soundfont)
    params |= {"fluidsynth_gain": gain, "fluidsynth_reverb": reverb}
    return Clip(item, "music", audio, params, license_, ("fluid-soundfont-gm",))
