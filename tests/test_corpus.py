"""The training-corpus builder, run against tiny fake synthesis tools so the tests pass anywhere."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from pedalboard.io import AudioFile

from training.corpus import build, common, midi, mixtures, music, recordings, speech, text, voices

FAKE_WAV_WRITER = '''
import math, struct, sys, wave
def write_tone(path, rate, seconds, hz):
    frames = int(rate * seconds)
    samples = (int(8000 * math.sin(2 * math.pi * hz * n / rate)) for n in range(frames))
    with wave.open(path, "wb") as out:
        out.setnchannels(1); out.setsampwidth(2); out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
def after(flag):
    return sys.argv[sys.argv.index(flag) + 1]
'''

FAKE_TOOLS = {
    "espeak-ng": '''
if "--voices" in sys.argv:
    print("Pty Language       Age/Gender VoiceName          File                 Other Languages")
    print(" 5  en             --/M      English            gmw/en")
    print(" 5  fr-fr          --/M      French             roa/fr")
    sys.exit(0)
text = sys.stdin.read()
write_tone(after("-w"), 22050, 0.2 + len(text) / 200, 100 + int(after("-p")))
''',
    "fluidsynth": '''
write_tone(after("-F"), int(after("-r")), 1.5, 440)
''',
    "dpkg": '''
import os
print("/usr/share/doc/" + sys.argv[-1])
print(os.environ["FAKE_DPKG_LISTING"])
''',
}


def install_fake_tools(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holding only the fake tools (each a Python script writing a sine WAV where the real one would)."""
    folder.mkdir()
    for name, body in FAKE_TOOLS.items():
        script = folder / name
        script.write_text(f"#!{sys.executable}\n{FAKE_WAV_WRITER}\n{body}")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))
    return folder


def write_words(path: Path) -> Path:
    path.write_text("apple\nBoston\nriver\ncafé\nstone's\nquiet\nlantern\nmorning\n")
    return path


def install_fake_kits(folder: Path, words: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The builder's speech and music kits, drawing on the fake tools, a tiny word list and a dummy sound font."""
    speech_kit = speech.discover_speech_kit(words, folder / "no-fortunes")
    soundfont = folder / "fake.sf2"
    soundfont.write_bytes(b"not a real sound font")
    monkeypatch.setattr(build, "discover_speech_kit", lambda: speech_kit)  # where build.source_clips looks them up
    monkeypatch.setattr(build, "discover_music_kit", lambda: music.MusicKit(soundfont, []))


@pytest.fixture
def fake_path(tmp_path, monkeypatch) -> Path:
    return install_fake_tools(tmp_path / "bin", monkeypatch)


@pytest.fixture
def words_file(tmp_path) -> Path:
    return write_words(tmp_path / "words")


@pytest.fixture
def fake_kits(tmp_path, words_file, fake_path, monkeypatch) -> None:
    install_fake_kits(tmp_path, words_file, monkeypatch)


def tone_file(path: Path, seconds: float, rate: int = 44_100) -> Path:
    audio = (0.3 * np.sin(2 * np.pi * 330 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)
    with AudioFile(str(path), "w", samplerate=rate, num_channels=1) as file:
        file.write(audio[None])
    return path


def test_split_is_a_stable_hash_of_the_item():
    items = [f"speech/{i:06d}" for i in range(2000)]
    first = [build.is_validation(item, 5) for item in items]
    assert first == [build.is_validation(item, 5) for item in reversed(items)][::-1]
    assert first == [zlib.crc32(item.encode()) % 100 < 5 for item in items]
    assert 0.03 < np.mean(first) < 0.07
    assert not any(build.is_validation(item, 0) for item in items)


@pytest.mark.parametrize("path, package", [
    ("/usr/share/sounds/alsa/Front_Center.wav", "alsa-utils"),
    ("/usr/share/sounds/alsa/Noise.wav", ""),
    ("/usr/share/sounds/freedesktop/stereo/bell.oga", ""),
    ("/usr/share/games/supertuxkart/data/music/main_theme.ogg", ""),
    ("", "supertuxkart-data"),
    ("/work/.venv/lib/python3.11/site-packages/scipy/io/tests/data/test.wav", ""),
    ("/usr/lib/python3/dist-packages/pygame/examples/data/house_lo.ogg", ""),
])
def test_reserved_sources_are_refused(path, package):
    assert recordings.reserved_reason(path, package)
    with pytest.raises(recordings.ReservedSource, match="reserved for independent evaluation"):
        recordings.refuse_reserved(path, package)


def test_ordinary_package_music_is_allowed():
    assert recordings.reserved_reason("/usr/share/games/wesnoth/1.16/data/core/music/battle.ogg",
                                      "wesnoth-1.16-music") is None


def test_reserved_package_is_refused_before_listing(fake_path):
    with pytest.raises(recordings.ReservedSource):
        recordings.package_audio_files("sound-theme-freedesktop")


def test_reserved_file_inside_a_package_is_refused(fake_path, monkeypatch):
    monkeypatch.setenv("FAKE_DPKG_LISTING", "/usr/lib/python3/dist-packages/somepkg/example.wav")
    with pytest.raises(recordings.ReservedSource, match="dist-packages"):
        recordings.package_audio_files("asc-music")


def test_command_line_refuses_reserved_recording_package(tmp_path, fake_path, capsys):
    code = build.main([str(tmp_path / "out"), "--sources", "recordings", "--recording-packages", "alsa-utils"])
    assert code == 1
    assert "reserved for independent evaluation" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_recordings_are_excerpts_licensed_and_split_by_track(tmp_path, fake_path, monkeypatch):
    track = tone_file(tmp_path / "track.wav", seconds=25)
    monkeypatch.setenv("FAKE_DPKG_LISTING", str(track))
    clips = list(recordings.recording_clips(recordings.recording_owners(("asc-music",)), seed=0, seconds=10))
    assert len(clips) == 2
    assert {clip.item for clip in clips} == {"recordings/asc-music/track.wav"}
    assert all(clip.license == "GPL-2+" and clip.audio.size == 10 * common.SAMPLE_RATE for clip in clips)


def test_voices_join_one_speakers_recordings_and_split_by_speaker(tmp_path, fake_path, monkeypatch):
    root = tmp_path / "klettres"
    files = []
    for speaker in ("en", "fr"):
        (root / speaker / "alpha").mkdir(parents=True)
        files += [tone_file(root / speaker / "alpha" / f"{letter}.wav", seconds=0.8) for letter in "abcdefghijkl"]
    stray = tone_file(root / "readme.wav", seconds=0.8)  # not in a speaker folder: left out
    monkeypatch.setitem(voices.VOICE_ROOTS, "klettres-data", root)
    monkeypatch.setenv("FAKE_DPKG_LISTING", "\n".join(map(str, files + [stray])))
    speakers = voices.voice_speakers(("klettres-data",))
    assert sorted(speakers) == ["voices/klettres-data/en", "voices/klettres-data/fr"]
    clips = list(voices.voice_clips(speakers, seed=0))
    used = [path for clip in clips for path in clip.params["files"]]
    assert sorted(used) == sorted(map(str, files))  # every recording exactly once
    for clip in clips:
        speaker = clip.item.rsplit("/", 1)[1]
        assert all(f"/{speaker}/" in path for path in clip.params["files"])  # one speaker per utterance
        pieces, pauses = len(clip.params["files"]), clip.params["pauses_seconds"]
        assert len(pauses) == pieces - 1 and all(0.1 <= pause <= 0.5 for pause in pauses)
        expected = pieces * int(0.8 * common.SAMPLE_RATE) + sum(int(p * common.SAMPLE_RATE) for p in pauses)
        assert abs(clip.audio.size - expected) <= pieces and clip.license == "GPL-2+"
    assert any(clip.audio.size >= 3 * common.SAMPLE_RATE for clip in clips)


def test_voices_need_a_known_speaker_folder(fake_path, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_DPKG_LISTING", str(tone_file(tmp_path / "track.wav", seconds=1)))
    with pytest.raises(ValueError, match="no speaker folder known for asc-music"):
        voices.voice_speakers(("asc-music",))


@pytest.mark.parametrize("seed", range(6))
def test_augmentation_keeps_length_and_rate(seed):
    audio = (0.5 * np.sin(np.arange(common.SAMPLE_RATE * 2) / 7)).astype(np.float32)
    augmented, params = build.augment(audio, np.random.default_rng(seed))
    assert augmented.shape == audio.shape and augmented.dtype == np.float32
    assert np.max(np.abs(augmented)) <= 10 ** ((-1 + params["gain_db"]) / 20) + 1e-6
    assert not common.is_silent(augmented)


def test_mix_follows_the_foreground_length():
    mixed = mixtures.mix(np.ones(1000, np.float32), np.ones(300, np.float32), snr_db=10)
    assert mixed.shape == (1000,) and np.isclose(np.max(np.abs(mixed)), 10 ** (-1 / 20))


def test_missing_tools_name_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(common.MissingTool, match=r"^espeak-ng not found: apt-get install espeak-ng$"):
        speech.discover_speech_kit()
    with pytest.raises(common.MissingTool, match=r"^fluidsynth not found: apt-get install fluidsynth$"):
        music.discover_music_kit()


def test_missing_data_names_the_debian_package(tmp_path, fake_path):
    with pytest.raises(common.MissingTool, match="apt-get install fluid-soundfont-gm"):
        music.discover_music_kit(tmp_path / "missing.sf2")
    with pytest.raises(common.MissingTool, match="apt-get install wamerican"):
        text.word_list(tmp_path / "missing-words")


def test_command_line_reports_a_missing_tool_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert build.main([str(tmp_path / "out"), "--sources", "music"]) == 1
    assert capsys.readouterr().err == "error: fluidsynth not found: apt-get install fluidsynth\n"


def test_install_hint_lists_the_packages(capsys):
    assert build.main(["--install-hint"]) == 0
    hint = capsys.readouterr().out
    assert hint.startswith("apt-get install") and "espeak-ng" in hint and "fluid-soundfont-gm" in hint


def test_package_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "training.corpus", "--install-hint"],
                            capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0 and result.stdout == build.INSTALL_COMMAND + "\n"


def test_word_list_keeps_plain_lower_case_words(words_file):
    assert text.word_list(words_file) == ["apple", "river", "quiet", "lantern", "morning"]


def test_speech_item_from_fake_espeak(tmp_path, words_file, fake_path):
    kit = speech.discover_speech_kit(words_file, tmp_path / "no-fortunes")
    assert kit.voices == {"espeak-ng": ["en", "fr-fr"]}
    clip = speech.speech_clip(kit, seed=0, index=3, workdir=tmp_path)
    assert clip.audio.ndim == 1 and not common.is_silent(clip.audio)
    assert clip.params["voice"] in ("en", "fr-fr") and clip.params["variant"] in speech.ESPEAK_VARIANTS
    assert "wamerican" in clip.license
    assert speech.speech_clip(kit, seed=0, index=3, workdir=tmp_path).params == clip.params


def test_midi_variable_length_quantities():
    assert [midi.variable_length(v) for v in (0, 0x7F, 0x80, 0x3FFF, 0x4000)] == [
        b"\x00", b"\x7f", b"\x81\x00", b"\xff\x7f", b"\x81\x80\x00"]


def test_generated_song_is_a_valid_midi_file():
    parts, tempo, params = music.random_song(np.random.default_rng(0), bars=4)
    song = midi.midi_bytes(parts, tempo)
    assert song[:4] == b"MThd" and int.from_bytes(song[10:12], "big") == len(parts) + 1
    assert song.count(b"MTrk") == len(parts) + 1
    assert all(0 <= note.pitch < 128 for part in parts for note in part.notes)
    assert params["bars"] == 4


def build_small(out_dir: Path, hours: float = 0.01) -> list[dict]:
    return build.build_corpus(out_dir, hours=hours, seed=7, sources=("speech", "music", "mixtures"),
                              validation_percent=30)


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory) -> tuple[Path, Path, list[dict]]:
    """The small corpus built twice with the same fake kits (folders a and b, and the first build's rows), once for
    the tests that read them: a build runs the fake tools some fifty times."""
    root = tmp_path_factory.mktemp("corpora")
    with pytest.MonkeyPatch.context() as monkeypatch:
        install_fake_tools(root / "bin", monkeypatch)
        install_fake_kits(root, write_words(root / "words"), monkeypatch)
        rows = build_small(root / "a")
        build_small(root / "b")
    return root / "a", root / "b", rows


def test_corpus_is_written_with_manifest_and_licenses(two_builds):
    out, _, rows = two_builds
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert manifest == rows and {row["source"] for row in rows} == {"speech", "music", "mixtures"}
    assert sum(row["duration"] for row in rows) <= 0.01 * 3600 + 1e-6
    for row in rows:
        assert row["license"] and row["split"] == ("validation" if build.is_validation(row["item"], 30) else "train")
        with AudioFile(str(out / row["path"])) as file:
            assert (file.samplerate, file.num_channels) == (common.SAMPLE_RATE, 1)
            assert abs(file.frames / file.samplerate - row["duration"]) < 1e-3
    licenses = (out / "LICENSES.md").read_text()
    assert "MIT" in licenses and "SCOWL" in licenses and "Reserved for independent evaluation" in licenses


def test_corpus_is_deterministic(two_builds):
    a, b, _ = two_builds
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_corpus_refuses_a_folder_in_use(tmp_path, fake_kits):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        build_small(tmp_path / "used")


def test_real_espeak_speech_is_24khz_mono_and_not_silent(tmp_path):
    assert shutil.which("espeak-ng"), "espeak-ng is missing: run tests/system-packages.sh (apt-get install espeak-ng)"
    audio = speech.espeak_speech("The quick brown fox jumps over 13 lazy dogs.", "en", "+f2", 50, 170, 100, tmp_path)
    (tmp_path / "train").mkdir()
    row = build.write_clip(common.Clip("speech/test", "speech", audio, {}, "test"), 0, tmp_path, 0, 0)
    with AudioFile(str(tmp_path / row["path"])) as file:
        assert (file.samplerate, file.num_channels) == (24_000, 1)
        assert not common.is_silent(file.read(file.frames)[0])


def test_an_item_whose_tool_crashes_is_skipped_and_the_others_are_unchanged(capsys):
    def make(index):
        if index == 1:
            raise common.ToolCrashed("espeak-ng failed (-11): ")
        return common.Clip(f"speech/{index:06d}", "speech", np.full(2400, 0.1, np.float32), {}, "test")
    clips = build.generated_clips(make)
    assert [next(clips).item for _ in range(3)] == ["speech/000000", "speech/000002", "speech/000003"]
    assert "skipped item 1: espeak-ng failed" in capsys.readouterr().err
