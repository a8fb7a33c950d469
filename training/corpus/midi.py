"""A Standard MIDI File writer (no `mido` needed): parts of notes in, format-1 file bytes out."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

MIDI_TICKS_PER_BEAT = 480


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
