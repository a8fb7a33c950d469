"""What a native pedalboard stage's parameters may be, checked when a chain is parsed and again, at the file's
rate, before a file is streamed.

pedalboard checks some parameters itself (a reverb's room size, a delay's length) and lets others through
to arithmetic that blows up: `HighpassFilter(cutoff_frequency_hz=-1)` turns a 0.3 input into peaks of 1e5,
a `LowpassFilter` above the Nyquist frequency gives infinities, `Gain(gain_db=1000)` infinities,
`Resample(target_sample_rate=1e9)` runs out of memory. Here every number must be finite and in a range
that is both what the plugin can do and what makes sense for audio; filter frequencies must also lie below
the Nyquist frequency of the audio they run on, which is known only once a file is opened
(`check_frequencies_below_nyquist`). An impulse response must be a regular, readable audio file: a FIFO
would block the read forever, and pedalboard takes a file it cannot decode for an empty response.
"""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pedalboard

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 384_000
MAX_FREQUENCY_HZ = MAX_SAMPLE_RATE / 2
MAX_IMPULSE_RESPONSE_SECONDS = 60.0


@dataclass(frozen=True)
class Range:
    """`low` to `high` (`low` itself excluded when `open_low`), in `unit`."""

    low: float
    high: float
    unit: str = ""
    open_low: bool = False

    def holds(self, value: float) -> bool:
        """Whether `value` is in range; pedalboard keeps parameters as float32, so a bound given in decimal (-0.99)
        may come back a hair beyond itself, which is let through."""
        slack = 1e-6 * max(abs(self.low), abs(self.high))
        return math.isfinite(value) and (value > self.low if self.open_low else value >= self.low - slack) \
            and value <= self.high + slack

    def text(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        low = f"above {self.low:g}" if self.open_low else f"from {self.low:g}"
        return f"a number {low} to {self.high:g}{unit}"


FREQUENCY = Range(0, MAX_FREQUENCY_HZ, "Hz", open_low=True)
FRACTION = Range(0, 1)
TIME_MS = Range(0, 10_000, "ms")
GAIN_DB = Range(-120, 60, "dB")
LEVEL_DB = Range(-120, 24, "dB")
Q = Range(0, 100, open_low=True)
FREQUENCY_PARAMETERS = ("cutoff_frequency_hz", "cutoff_hz", "centre_frequency_hz")
"""Parameters that are frequencies in the audio, which must lie below its Nyquist frequency."""

RANGES: dict[str, dict[str, Range]] = {
    "Bitcrush": {"bit_depth": Range(1, 32, "bits")},
    "BrickwallLimiter": {"ceiling_db": LEVEL_DB, "lookahead_ms": Range(0, 100, "ms", open_low=True),
                         "release_ms": TIME_MS},
    "Chorus": {"centre_delay_ms": Range(0, 100, "ms"), "depth": FRACTION, "feedback": Range(-1, 1), "mix": FRACTION,
               "rate_hz": Range(0, 100, "Hz")},
    "Clipping": {"threshold_db": LEVEL_DB},
    "Compressor": {"attack_ms": TIME_MS, "ratio": Range(1, 1000), "release_ms": TIME_MS, "threshold_db": LEVEL_DB},
    "Convolution": {"mix": FRACTION},
    "Delay": {"delay_seconds": Range(0, 30, "s"), "feedback": FRACTION, "mix": FRACTION},
    "Distortion": {"drive_db": Range(-60, 100, "dB")},
    "Gain": {"gain_db": GAIN_DB},
    "HighpassFilter": {"cutoff_frequency_hz": FREQUENCY},
    "LowpassFilter": {"cutoff_frequency_hz": FREQUENCY},
    "HighShelfFilter": {"cutoff_frequency_hz": FREQUENCY, "gain_db": GAIN_DB, "q": Q},
    "LowShelfFilter": {"cutoff_frequency_hz": FREQUENCY, "gain_db": GAIN_DB, "q": Q},
    "PeakFilter": {"cutoff_frequency_hz": FREQUENCY, "gain_db": GAIN_DB, "q": Q},
    "LadderFilter": {"cutoff_hz": FREQUENCY, "drive": Range(1, 100), "resonance": FRACTION},
    "Limiter": {"release_ms": TIME_MS, "threshold_db": LEVEL_DB},
    "MP3Compressor": {"vbr_quality": Range(0, 10)},
    "NoiseGate": {"attack_ms": TIME_MS, "ratio": Range(1, 1000), "release_ms": TIME_MS, "threshold_db": LEVEL_DB},
    "Phaser": {"centre_frequency_hz": FREQUENCY, "depth": FRACTION, "feedback": Range(-0.99, 0.99), "mix": FRACTION,
               "rate_hz": Range(0, 100, "Hz")},
    "PitchShift": {"semitones": Range(-72, 72, "semitones")},
    "Resample": {"target_sample_rate": Range(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE, "Hz")},
    "Reverb": {name: FRACTION for name in ("damping", "dry_level", "freeze_mode", "room_size", "wet_level", "width")},
}


def check_plugin(plugin: pedalboard.Plugin, where: str) -> None:
    """Refuse a native plugin with a parameter out of its range, in one line naming the parameter, its value
    and what is accepted (`where` names the stage)."""
    for name, accepted in RANGES.get(type(plugin).__name__, {}).items():
        value = getattr(plugin, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not accepted.holds(float(value)):
            raise ValueError(f"{where}: {name}={value:g} is out of range; accepted: {accepted.text()}")


def check_frequencies_below_nyquist(plugins: list[Any], sample_rate: int) -> None:
    """Refuse a filter frequency at or above the Nyquist frequency of `sample_rate` audio (the filter's
    arithmetic breaks there), naming the stage, the parameter and the highest frequency accepted."""
    nyquist = sample_rate / 2
    for index, plugin in plugins:
        for name in FREQUENCY_PARAMETERS:
            value = getattr(plugin, name, None) if isinstance(plugin, pedalboard.Plugin) else None
            if isinstance(value, (int, float)) and value >= nyquist:
                raise ValueError(f"stage {index} ({type(plugin).__name__}): {name}={value:g} is not below the "
                                 f"Nyquist frequency of this {sample_rate} Hz audio; accepted: a frequency below "
                                 f"{nyquist:g} Hz")


def check_impulse_response(path: Any, where: str) -> None:
    """An impulse response given by name must be a regular file that reads as audio, of at most
    MAX_IMPULSE_RESPONSE_SECONDS: checked without opening anything that is not a regular file (a FIFO
    would block), and by decoding it (pedalboard would take an unreadable file for silence)."""
    if not isinstance(path, (str, os.PathLike)):
        return  # an array (from Python): pedalboard checks it
    from pedalboard.io import AudioFile
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise ValueError(f"{where}: impulse_response_filename={str(path)!r} cannot be read ({error.strerror}); "
                         "accepted: an audio file") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"{where}: impulse_response_filename={str(path)!r} is not a regular file; accepted: an "
                         "audio file (wav, flac, ogg, mp3, aiff)")
    try:
        with AudioFile(str(Path(path))) as file:
            frames, rate = file.frames, file.samplerate
    except Exception:
        raise ValueError(f"{where}: impulse_response_filename={str(path)!r} does not read as audio; accepted: an "
                         "audio file (wav, flac, ogg, mp3, aiff)") from None
    if frames == 0:
        raise ValueError(f"{where}: impulse_response_filename={str(path)!r} holds no samples; accepted: an audio "
                         "file of at least one sample")
    if frames > MAX_IMPULSE_RESPONSE_SECONDS * rate:
        raise ValueError(f"{where}: impulse_response_filename={str(path)!r} lasts {frames / rate:.1f} s; accepted: "
                         f"an impulse response of at most {MAX_IMPULSE_RESPONSE_SECONDS:g} s")
