"""Build a reproducible training corpus of freely licensed audio for a 24 kHz mono codec.

    python -m encodec_fx.train.corpus OUT_DIR [--hours H] [--seed S]
        [--sources speech,music,recordings,voices,mixtures] [--validation-percent 5]

Speech is synthesised (espeak-ng, and flite / festival when installed) from generated text; music is
rendered with fluidsynth and the Fluid GM sound font from generated MIDI and, when music21 is importable,
from the Bach chorales in its corpus; recordings are excerpts of music shipped in Debian packages; voices
are recorded words, letters and exclamations of real speakers from Debian packages, joined into utterances;
mixtures are speech over music. Every clip may get gain and reverb. Each clip goes to OUT_DIR/train or
OUT_DIR/validation by a hash of its source item, is listed in OUT_DIR/manifest.jsonl with its license, and
OUT_DIR/LICENSES.md sums it up. Everything is derived from --seed, so a rerun writes the same files.

SuperTuxKart's data, the ALSA and freedesktop sound files and recordings shipped inside Python packages are
reserved for independent evaluation: they are refused as sources. See docs/corpus.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pedalboard import Gain, Pedalboard, Reverb
from pedalboard.io import AudioFile

from ..audio_io import AUDIO_SUFFIXES, read_audio, write_audio

SAMPLE_RATE = 24_000
SOURCES = ("speech", "music", "recordings", "voices", "mixtures")
INSTALL_COMMAND = ("apt-get install espeak-ng flite festival festvox-kallpc16k fluidsynth fluid-soundfont-gm "
                   "wamerican fortunes-min wesnoth-1.16-music asc-music klettres-data ktuberling-data hedgewars-data")
TOOL_PACKAGES = {"espeak-ng": "espeak-ng", "flite": "flite", "text2wave": "festival festvox-kallpc16k",
                 "fluidsynth": "fluidsynth", "dpkg": "dpkg"}
WORDS_FILE = Path("/usr/share/dict/words")
FORTUNES_FILE = Path("/usr/share/games/fortunes/fortunes")
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
FESTIVAL_VOICES = Path("/usr/share/festival/voices")

# Licenses read by hand from /usr/share/doc/<package>/copyright (copied next to the corpus on each build).
PACKAGE_LICENSES = {
    "espeak-ng-data": "GPL-3+ (voice data; the audio is the program's output)",
    "flite": "BSD-style CMU license (voices; the audio is the program's output)",
    "festvox-kallpc16k": "permissive Edinburgh/CMU license (free use and distribution)",
    "fluid-soundfont-gm": "MIT",
    "wamerican": "SCOWL license (permissive; parts public domain)",
    "fortunes-min": "BSD-3-Clause",
    "wesnoth-1.16-music": "GPL-2+",
    "asc-music": "GPL-2+",
    "klettres-data": "GPL-2+",
    "ktuberling-data": "GPL-2+",
    "hedgewars-data": "GFDL-1.3 (Data/Sounds)",
}
SOUNDFONT_LICENSE = f"sound font fluid-soundfont-gm: {PACKAGE_LICENSES['fluid-soundfont-gm']}"
RECORDING_PACKAGES = ("wesnoth-1.16-music", "asc-music")
# Recorded speech: the folder under which each sub-folder holds one speaker (a language or a voice pack).
VOICE_ROOTS = {
    "klettres-data": Path("/usr/share/klettres"),  # letters and syllables, per language
    "ktuberling-data": Path("/usr/share/ktuberling/sounds"),  # names of things, per language
    "hedgewars-data": Path("/usr/share/games/hedgewars/Data/Sounds/voices"),  # exclamations, per actor
}
VOICE_PAUSE_SECONDS = (0.1, 0.5)
VOICE_UTTERANCE_SECONDS = (3.0, 10.0)
MUSIC21_LICENSE = ("public-domain compositions (J. S. Bach); encodings public domain or used by permission "
                   "per music21's README; music21 itself BSD-3-Clause")

# Reserved for independent evaluation: never training or validation material.
RESERVED_PACKAGES = ("supertuxkart", "supertuxkart-data", "alsa-utils", "sound-theme-freedesktop")
RESERVED_PATH_PARTS = ("supertuxkart", "/usr/share/sounds/alsa", "/usr/share/sounds/freedesktop",
                       "site-packages", "dist-packages")

TOOL_VERSION_PACKAGES = ("espeak-ng", "flite", "festival", "fluidsynth")
ENGINE_WEIGHTS = {"espeak-ng": 7, "flite": 2, "festival": 1}
FLITE_SKIPPED_VOICES = ("awb_time", "kal")  # a talking clock, and an 8 kHz voice (kal16 is kept)
ESPEAK_VARIANTS = ("", "+f1", "+f2", "+f3", "+f4", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10),
          "pentatonic": (0, 2, 4, 7, 9)}
MELODY_PROGRAMS = (0, 4, 6, 11, 13, 19, 22, 24, 25, 40, 41, 42, 56, 57, 60, 65, 68, 71, 73, 74, 80, 81)
CHORD_PROGRAMS = (0, 2, 4, 16, 19, 24, 48, 49, 50, 52, 61, 88, 89)
BASS_PROGRAMS = (32, 33, 34, 35, 38, 42, 43, 58)
DRUM_CHANNEL = 9
MIDI_TICKS_PER_BEAT = 480
SILENCE_RMS = 1e-4


class MissingTool(RuntimeError):
    """A system tool or data file is absent; the message names the Debian package to install."""


class ToolCrashed(RuntimeError):
    """A synthesis or rendering tool failed on one item (espeak-ng crashes on some voice and text pairs)."""


class ReservedSource(ValueError):
    """A source reserved for independent evaluation was offered as training material."""


@dataclass
class Clip:
    """One corpus file before it is written: mono audio at SAMPLE_RATE and where it came from."""
    item: str
    source: str
    audio: np.ndarray
    params: dict
    license: str
    packages: tuple[str, ...] = ()


# ---- system tools and per-item randomness -------------------------------------------------------------

def require_tool(tool: str) -> str:
    """The tool's path, or MissingTool naming the Debian package that provides it."""
    path = shutil.which(tool)
    if path is None:
        raise MissingTool(f"{tool} not found: apt-get install {TOOL_PACKAGES[tool]}")
    return path


def require_file(path: Path, package: str) -> Path:
    """`path` if it exists, or MissingTool naming the Debian package that provides it."""
    if not path.exists():
        raise MissingTool(f"{path} not found: apt-get install {package}")
    return path


def run_tool(arguments: list[str], stdin: str | None = None) -> str:
    """Run a tool and return its stdout; a failure is one line with the end of its stderr."""
    result = subprocess.run(arguments, input=stdin, capture_output=True, text=True)
    if result.returncode != 0:
        raise ToolCrashed(f"{Path(arguments[0]).name} failed ({result.returncode}): {result.stderr.strip()[-300:]}")
    return result.stdout


def item_rng(seed: int, source: str, index: int) -> np.random.Generator:
    """Randomness for one item, independent of every other item and of the build order."""
    return np.random.default_rng([seed, zlib.crc32(source.encode()), index])


def load_mono(path: Path) -> np.ndarray:
    """A file as mono float32 samples at SAMPLE_RATE."""
    return read_audio(path, SAMPLE_RATE).mean(axis=0).astype(np.float32)


def is_silent(audio: np.ndarray) -> bool:
    return audio.size == 0 or float(np.sqrt(np.mean(np.square(audio)))) < SILENCE_RMS


def normalise_peak(audio: np.ndarray, peak_db: float = -1.0) -> np.ndarray:
    """Scale so the largest sample sits at `peak_db` dBFS (silence stays silence)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio if peak == 0.0 else (audio * (10 ** (peak_db / 20) / peak)).astype(np.float32)


# ---- text ---------------------------------------------------------------------------------------------

def word_list(path: Path = WORDS_FILE) -> list[str]:
    """Plain lower-case ASCII words from a dictionary file, in file order."""
    text = require_file(path, "wamerican").read_text(encoding="utf-8", errors="ignore")
    return [word for word in text.split() if word.isascii() and word.isalpha() and word.islower()]


def fortune_quotes(path: Path = FORTUNES_FILE, max_chars: int = 240) -> list[str]:
    """Short quotes from a fortune file (entries separated by '%' lines); none when it is absent."""
    if not path.exists():
        return []
    entries = (" ".join(entry.split()) for entry in path.read_text(encoding="utf-8", errors="ignore").split("\n%\n"))
    return [entry for entry in entries if 0 < len(entry) <= max_chars and entry.isascii()]


def number_phrase(rng: np.random.Generator) -> str:
    """A number, date, time or amount written the way a reader would meet it."""
    kind = rng.integers(4)
    if kind == 0:
        return str(int(rng.integers(0, 10 ** int(rng.integers(1, 8)))))
    if kind == 1:
        return f"{int(rng.integers(1, 29))} {MONTHS[int(rng.integers(12))]} {int(rng.integers(1800, 2100))}"
    if kind == 2:
        return f"{int(rng.integers(0, 24))}:{int(rng.integers(0, 60)):02d}"
    return f"{rng.uniform(0, 1000):.2f}"


def random_sentence(rng: np.random.Generator, words: list[str], quotes: list[str]) -> str:
    """A quote, or a string of dictionary words with a number phrase in it."""
    if quotes and rng.random() < 0.3:
        return quotes[int(rng.integers(len(quotes)))]
    chosen = [words[int(i)] for i in rng.integers(len(words), size=int(rng.integers(4, 16)))]
    chosen.insert(int(rng.integers(len(chosen) + 1)), number_phrase(rng))
    return " ".join(chosen).capitalize() + str(rng.choice([".", "?", "!", ","]))


# ---- speech -------------------------------------------------------------------------------------------

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


ENGINE_PACKAGES = {"espeak-ng": "espeak-ng-data", "flite": "flite", "festival": "festvox-kallpc16k"}


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


# ---- MIDI ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Note:
    start: float  # beats
    length: float  # beats
    pitch: int
    velocity: int


@dataclass
class Part:
    """One instrument: a General MIDI program on a channel (channel 9 is drums) and its notes."""
    program: int
    channel: int
    notes: list[Note] = field(default_factory=list)


def variable_length(value: int) -> bytes:
    """A MIDI variable-length quantity."""
    groups = [value & 0x7F]
    while value := value >> 7:
        groups.append((value & 0x7F) | 0x80)
    return bytes(reversed(groups))


def midi_track(events: list[tuple[int, bytes]]) -> bytes:
    """An MTrk chunk from (absolute tick, message) pairs, already in time order."""
    body, previous = b"", 0
    for tick, message in events:
        body += variable_length(tick - previous) + message
        previous = tick
    body += variable_length(0) + b"\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + body


def part_events(part: Part) -> list[tuple[int, bytes]]:
    """Program change then note-ons and note-offs in time order (offs first at equal ticks)."""
    timed = []
    for note in part.notes:
        start = round(note.start * MIDI_TICKS_PER_BEAT)
        end = max(start + 1, round((note.start + note.length) * MIDI_TICKS_PER_BEAT))
        timed.append((start, 1, bytes([0x90 | part.channel, note.pitch, note.velocity])))
        timed.append((end, 0, bytes([0x80 | part.channel, note.pitch, 0])))
    return [(0, bytes([0xC0 | part.channel, part.program]))] + [(tick, message) for tick, _, message in sorted(timed)]


def midi_bytes(parts: list[Part], tempo_bpm: float) -> bytes:
    """A format-1 Standard MIDI File: a tempo track then one track per part."""
    tempo = round(60_000_000 / tempo_bpm).to_bytes(3, "big")
    tracks = [midi_track([(0, b"\xff\x51\x03" + tempo)])] + [midi_track(part_events(part)) for part in parts]
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), MIDI_TICKS_PER_BEAT)
    return header + b"".join(tracks)


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


# ---- music21 corpus -----------------------------------------------------------------------------------

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


# ---- recordings ---------------------------------------------------------------------------------------

def reserved_reason(path: Path | str, package: str = "") -> str | None:
    """Why `path` (from `package`) is reserved for independent evaluation, or None when it may be used."""
    if package in RESERVED_PACKAGES:
        return f"package {package} is reserved for independent evaluation"
    text = str(path).lower()
    part = next((part for part in RESERVED_PATH_PARTS if part in text), None)
    return None if part is None else f"{path} is reserved for independent evaluation ({part})"


def refuse_reserved(path: Path | str, package: str = "") -> None:
    """Raise ReservedSource when `path` or `package` is reserved for evaluation."""
    reason = reserved_reason(path, package)
    if reason:
        raise ReservedSource(reason)


def package_audio_files(package: str) -> list[Path]:
    """Audio files installed by a Debian package, after refusing reserved packages and paths."""
    refuse_reserved("", package)
    listing = run_tool([require_tool("dpkg"), "-L", package]).splitlines()
    files = sorted(Path(line) for line in listing if Path(line).suffix.lower() in AUDIO_SUFFIXES)
    for path in files:
        refuse_reserved(path, package)
    return files


def audio_seconds(path: Path) -> float:
    with AudioFile(str(path)) as file:
        return file.frames / file.samplerate


def read_excerpt(path: Path, start_seconds: float, seconds: float) -> np.ndarray:
    """`seconds` of `path` from `start_seconds`, mono at SAMPLE_RATE."""
    with AudioFile(str(path)) as file:
        reader = file.resampled_to(float(SAMPLE_RATE))
        reader.seek(int(start_seconds * SAMPLE_RATE))
        return reader.read(int(seconds * SAMPLE_RATE)).mean(axis=0).astype(np.float32)


def excerpt_plan(files: list[Path], seed: int, seconds: float) -> list[tuple[Path, float]]:
    """Every whole `seconds`-long excerpt of every file, in a seeded order."""
    plan = [(path, start * seconds) for path in files for start in range(int(audio_seconds(path) // seconds))]
    order = np.random.default_rng([seed, zlib.crc32(b"recordings")]).permutation(len(plan))
    return [plan[i] for i in order]


def recording_owners(packages: tuple[str, ...]) -> dict[Path, str]:
    """Each usable recording of the packages and the package it comes from; reserved or unlicensed ones fail."""
    for package in packages:
        refuse_reserved("", package)
        if package not in PACKAGE_LICENSES:
            raise ValueError(f"no license recorded for {package}: read /usr/share/doc/{package}/copyright "
                             "and add it to PACKAGE_LICENSES")
    return {path: package for package in packages for path in package_audio_files(package)}


def recording_clips(owners: dict[Path, str], seed: int, seconds: float = 10.0) -> Iterator[Clip]:
    """Non-silent excerpts of the recordings; the split item is the whole track, so no track straddles it."""
    for path, start in excerpt_plan(sorted(owners), seed, seconds):
        audio = read_excerpt(path, start, seconds)
        if not is_silent(audio):
            package = owners[path]
            yield Clip(f"recordings/{package}/{path.name}", "recordings", audio,
                       {"file": str(path), "start_seconds": start}, PACKAGE_LICENSES[package], (package,))


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


# ---- mixtures and augmentation ------------------------------------------------------------------------

def mix(foreground: np.ndarray, background: np.ndarray, snr_db: float) -> np.ndarray:
    """Foreground over background (looped or cut to its length) at `snr_db`, peak-normalised."""
    background = np.resize(background, foreground.shape)
    power = lambda audio: float(np.mean(np.square(audio))) + 1e-12  # noqa: E731
    scale = np.sqrt(power(foreground) / (power(background) * 10 ** (snr_db / 10)))
    return normalise_peak(foreground + scale * background)


def mixture_clip(speech: SpeechKit, music: MusicKit, seed: int, index: int, workdir: Path) -> Clip:
    """Fresh speech over fresh music (items of their own, not copies of corpus files)."""
    rng = item_rng(seed, "mixtures", index)
    voice = speech_clip(speech, seed + 1, index, workdir)
    backing = music_clip(music, seed + 1, 3 * index + 1, workdir)  # never index % 3 == 0: a generated song
    snr_db = round(float(rng.uniform(0, 20)), 1)
    params = {"snr_db": snr_db, "speech": voice.params, "music": backing.params}
    return Clip(f"mixtures/{index:06d}", "mixtures", mix(voice.audio, backing.audio, snr_db), params,
                f"speech: {voice.license} | music: {backing.license}", voice.packages + backing.packages)


def augment(audio: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Half the time room reverb, then a gain that puts the peak at -1 to -25 dBFS; length and rate are kept."""
    params: dict = {"gain_db": round(float(rng.uniform(-24, 0)), 2)}
    if rng.random() < 0.5:
        params["reverb"] = {"room_size": round(float(rng.uniform(0.1, 0.9)), 3),
                            "damping": round(float(rng.uniform(0.2, 0.8)), 3),
                            "wet_level": round(float(rng.uniform(0.05, 0.4)), 3), "dry_level": 0.8}
        audio = Pedalboard([Reverb(**params["reverb"])])(audio[None], SAMPLE_RATE)[0]
    gain = Pedalboard([Gain(gain_db=params["gain_db"])])
    return gain(normalise_peak(audio)[None], SAMPLE_RATE)[0], params


# ---- the corpus ---------------------------------------------------------------------------------------

def is_validation(item: str, percent: float) -> bool:
    """Whether a source item belongs to the validation split: a hash of its id, so it never moves."""
    return zlib.crc32(item.encode()) % 100 < percent


def generated_clips(make: Callable[[int], Clip]) -> Iterator[Clip]:
    """make(0), make(1), ... skipping silent results and items whose tool crashed (reported on stderr).
    Items are independent, so a skipped one changes no other."""
    index = 0
    while True:
        try:
            clip = make(index)
        except ToolCrashed as error:
            print(f"skipped item {index}: {error}", file=sys.stderr)
            clip = None
        if clip is not None and not is_silent(clip.audio):
            yield clip
        index += 1


def within_seconds(clips: Iterator[Clip], seconds: float, max_clip_seconds: float) -> Iterator[Clip]:
    """Clips cut to `max_clip_seconds` until their total reaches `seconds` (the last one is cut to fit)."""
    total = 0.0
    for clip in clips:
        room = int((seconds - total) * SAMPLE_RATE)
        if room < SAMPLE_RATE:
            return
        clip.audio = clip.audio[:min(room, int(max_clip_seconds * SAMPLE_RATE))]
        total += clip.audio.size / SAMPLE_RATE
        yield clip


def source_clips(source: str, seed: int, workdir: Path, recording_packages: tuple[str, ...],
                 voice_packages: tuple[str, ...]) -> Iterator[Clip]:
    """The clip stream of one source; a missing tool or package fails here, before anything is written."""
    if source == "speech":
        speech = discover_speech_kit()
        return generated_clips(lambda i: speech_clip(speech, seed, i, workdir))
    if source == "music":
        music = discover_music_kit()
        return generated_clips(lambda i: music_clip(music, seed, i, workdir))
    if source == "recordings":
        return recording_clips(recording_owners(recording_packages), seed)
    if source == "voices":
        return voice_clips(voice_speakers(voice_packages), seed)
    speech, music = discover_speech_kit(), discover_music_kit()
    return generated_clips(lambda i: mixture_clip(speech, music, seed, i, workdir))


def write_clip(clip: Clip, number: int, out_dir: Path, seed: int, validation_percent: float) -> dict:
    """Augment and write one clip; return its manifest row."""
    rng = item_rng(seed, "augment/" + clip.source, number)
    audio, augmentation = augment(clip.audio, rng)
    split = "validation" if is_validation(clip.item, validation_percent) else "train"
    path = Path(split) / f"{clip.source}-{number:06d}.flac"
    write_audio(out_dir / path, audio[None], SAMPLE_RATE)
    return {"path": str(path), "split": split, "source": clip.source, "item": clip.item,
            "duration": round(audio.size / SAMPLE_RATE, 3), "license": clip.license,
            "packages": list(clip.packages), "params": clip.params, "augmentation": augmentation}


def write_manifest(rows: list[dict], out_dir: Path) -> None:
    with open(out_dir / "manifest.jsonl", "w", encoding="utf-8") as file:
        for row in rows:
            file.write(json.dumps(row, sort_keys=True) + "\n")


def copy_copyright_files(packages: set[str], out_dir: Path) -> None:
    """Each used Debian package's copyright file, as OUT_DIR/licenses/<package>.copyright."""
    (out_dir / "licenses").mkdir(exist_ok=True)
    for package in sorted(packages):
        copyright_file = Path("/usr/share/doc") / package / "copyright"
        if copyright_file.exists():
            shutil.copyfile(copyright_file, out_dir / "licenses" / f"{package}.copyright")


def debian_version(package: str) -> str | None:
    """The installed version of a Debian package, or None."""
    dpkg_query = shutil.which("dpkg-query")
    if dpkg_query is None:
        return None
    result = subprocess.run([dpkg_query, "-W", "-f", "${Version}", package], capture_output=True, text=True)
    version = result.stdout.strip()
    return version if result.returncode == 0 and version else None


def installed_versions(packages: set[str]) -> dict[str, str]:
    """Versions of the data packages used and of the synthesis tools, which a rebuild must match."""
    names = sorted(packages | set(TOOL_VERSION_PACKAGES))
    return {name: version for name in names if (version := debian_version(name))}


def licenses_markdown(rows: list[dict], seed: int, versions: dict[str, str]) -> str:
    """LICENSES.md: hours per source and split, and every distinct license with its file count."""
    lines = ["# Corpus sources and licenses", "", f"Built by `python -m encodec_fx.train.corpus` with seed {seed}; "
             "every file is 24 kHz mono FLAC and is listed in `manifest.jsonl` with its license and parameters.", "",
             "| source | split | files | hours |", "|---|---|---|---|"]
    for source in SOURCES:
        for split in ("train", "validation"):
            chosen = [row for row in rows if row["source"] == source and row["split"] == split]
            if chosen:
                hours = sum(row["duration"] for row in chosen) / 3600
                lines.append(f"| {source} | {split} | {len(chosen)} | {hours:.3f} |")
    lines += ["", "## Licenses", "", "| source | license | files |", "|---|---|---|"]
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        counts[row["source"], row["license"]] = counts.get((row["source"], row["license"]), 0) + 1
    lines += [f"| {source} | {license_} | {count} |" for (source, license_), count in sorted(counts.items())]
    lines += ["", "## Debian packages", "", "Data packages' copyright files are copied into `licenses/`; a rebuild "
              "with the same seed gives the same files when these versions match.", "",
              "| package | version | license |", "|---|---|---|"]
    lines += [f"| {name} | {version} | {PACKAGE_LICENSES.get(name, 'tool')} |" for name, version in versions.items()]
    lines += ["", "Synthesis tools (espeak-ng, flite, festival, fluidsynth) are programs; their licenses do not "
              "extend to the audio they produce. GPL-2+ and GFDL-1.3 recordings are redistributable with their license texts.", "",
              "Reserved for independent evaluation and never used here: SuperTuxKart's data, the ALSA and "
              "freedesktop sound files (alsa-utils, sound-theme-freedesktop) and recordings shipped inside "
              "Python packages.", ""]
    return "\n".join(lines)


def build_corpus(out_dir: Path, hours: float, seed: int, sources: tuple[str, ...], validation_percent: float,
                 recording_packages: tuple[str, ...] = RECORDING_PACKAGES,
                 voice_packages: tuple[str, ...] = tuple(VOICE_ROOTS), max_clip_seconds: float = 30.0) -> list[dict]:
    """Write the corpus into `out_dir` (which must be new or empty): hours shared equally by the sources."""
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown sources {sorted(unknown)}: choose from {', '.join(SOURCES)}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty: give a new folder")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as workdir:
        streams = {source: source_clips(source, seed, Path(workdir), recording_packages, voice_packages)
                   for source in sources}
        for split in ("train", "validation"):
            (out_dir / split).mkdir(parents=True, exist_ok=True)
        for source, clips in streams.items():
            for number, clip in enumerate(within_seconds(clips, hours * 3600 / len(sources), max_clip_seconds)):
                rows.append(write_clip(clip, number, out_dir, seed, validation_percent))
                print(f"{rows[-1]['path']}  {rows[-1]['duration']:.1f} s", file=sys.stderr)
    write_manifest(rows, out_dir)
    packages = {package for row in rows for package in row["packages"]}
    copy_copyright_files(packages, out_dir)
    (out_dir / "LICENSES.md").write_text(licenses_markdown(rows, seed, installed_versions(packages)),
                                         encoding="utf-8")
    return rows


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m encodec_fx.train.corpus", description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path, nargs="?", help="new or empty folder for the corpus")
    parser.add_argument("--hours", type=float, default=1.0, help="total duration cap (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sources", default=",".join(SOURCES), help=f"comma-separated subset of {','.join(SOURCES)}")
    parser.add_argument("--validation-percent", type=float, default=5.0)
    parser.add_argument("--recording-packages", default=",".join(RECORDING_PACKAGES),
                        help="Debian packages to take recordings from")
    parser.add_argument("--voice-packages", default=",".join(VOICE_ROOTS),
                        help="Debian packages to take recorded speech from")
    parser.add_argument("--install-hint", action="store_true", help="print the apt-get command and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.install_hint:
        print(INSTALL_COMMAND)
        return 0
    if arguments.out_dir is None:
        print("error: OUT_DIR is required", file=sys.stderr)
        return 2
    try:
        rows = build_corpus(arguments.out_dir, arguments.hours, arguments.seed,
                            tuple(arguments.sources.split(",")), arguments.validation_percent,
                            tuple(arguments.recording_packages.split(",")),
                            tuple(arguments.voice_packages.split(",")))
    except (MissingTool, ReservedSource, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{len(rows)} files, {sum(row['duration'] for row in rows) / 3600:.3f} h in {arguments.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
