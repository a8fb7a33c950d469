"""Structure-aware fuzzing of reading and decoding `.ecfx` archives (issue 22).

    python benchmarks/fuzz.py --cases 100000 --seconds 3000       # as many cases as fit, then the report
    python benchmarks/fuzz.py --case 1234                         # one case again, with its traceback

A small corpus of real archives (every coding mode the format stores, versions 2 and 3, a streaming and a
chunked shape, parity) is mutated case by case: bit flips, truncation, splices from another archive, inserted
and deleted bytes, segments swapped, duplicated and dropped, and field edits with the CRCs recomputed (header
fields set to extreme values, segment fields, index entries, static tables that inflate to 512 MB), one to
three at a time. Each case is read the way `decompress --recover` reads it (`ArchiveReader`, the header
checks, `_numbered` and `_decoded` of `encodec_fx.compress`: every payload entropy-decoded) and judged:

- exact: the original header and every segment's codes;
- recovered: some segments named lost, every other one's codes exact;
- clean error: a ValueError (ArchiveError) of one line;
- accepted: a header edit the reader cannot tell from a real archive (a CRC-valid sample rate of 44,101),
  decoded to the original codes and a length the frames support;
- failures: a crash (the process died: abort, segfault), a hang (over 5 s), memory beyond the limit, any
  other exception, a multi-line error, or a silent wrong output (codes that differ from the original's, or
  audio longer than the frames can give: what the reader must refuse).

Why a hand-written mutator rather than Hypothesis or atheris: the failures that mattered (issue 22) need
*valid* CRCs and field-level edits, which a byte-level engine (atheris/libFuzzer) reaches only by luck and
which Hypothesis would need the same structure-aware strategies for; every case must run in a child process
under an address-space limit and a timeout (a regression aborts or allocates 16 GB), which neither offers;
cases are numbered and seeded, so `--case N` replays one exactly, and the suite runs a fixed, bounded set.
atheris also needs a libFuzzer build that this project does not ship; its coverage guidance matters less
for a format whose every field the mutator knows.

Cases run in worker processes (`RLIMIT_AS` set once imports are done); the parent kills a worker whose case
takes longer than `--timeout` seconds and restarts one at the next case.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import select
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter
from pathlib import Path

HOP = 320  # samples per frame of every corpus shape: what the oracle knows and the reader does not
INTERESTING = [0, 1, 2, 3, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**48, 2**63 - 1, 2**63,
               10**6, 10**9, 10**12, 10**19, 2 * 10**8, 44_101, 768_001]
HEADER_FIELDS = ["sample_rate", "channels", "audio_length", "model_sample_rate", "n_q", "frame_rate", "segments",
                 "units", "frames", "segment_frames", "unit_frames", "model_audio_length", "lm_group_segments",
                 "streams", "chunk_length", "chunk_stride", "parity", "segment_seconds", "bandwidth"]
FAILURES = ("crash", "hang", "memory", "unexpected", "multi-line error", "silent wrong output")


# --- the corpus ----------------------------------------------------------------------------------


def build_corpus(directory: Path) -> list[dict]:
    """Small real archives of every coding mode the format stores, both versions, and their codes; the LM
    they need is saved beside them. Returns [{"name", "path", "codes"}]."""
    import numpy as np
    import torch

    from encodec_fx.compress import LM_GROUP_ROWS, CodedUnit, _archived, _Facts, _write_archive  # noqa: F401
    from entropy import format_v3 as v3
    from entropy.archive import ArchiveHeader, ArchiveWriter
    from entropy.coding import CODING_MODES, StaticModel
    from entropy.lm import EntropyLM, LMConfig, save_lm
    from entropy.portable_lm import PortableLM

    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    lm = EntropyLM(LMConfig(n_q=4, dim=16, num_heads=2, num_layers=1, past_context=8)).eval()
    save_lm(lm, directory / "lm.safetensors")
    portable = PortableLM(lm)
    rng = np.random.default_rng(0)
    corpus = []
    modes = [mode for mode in CODING_MODES if mode in v3.CODING_MODE_IDS]
    shapes = {"stream": dict(streams=1, unit_frames=8, segment_units=1, frames=20, chunked=False, parity=1),
              "chunked": dict(streams=2, unit_frames=6, segment_units=2, frames=22, chunked=True, parity=2)}
    for version in (2, 3):
        for mode in modes:
            for shape_name, shape in shapes.items():
                units = []
                for start in range(0, shape["frames"], shape["unit_frames"]):
                    frames = min(shape["unit_frames"], shape["frames"] - start)
                    codes = np.minimum(rng.geometric(0.3, (shape["streams"], 4, frames)) - 1, 1023)
                    scales = rng.uniform(0.1, 2, shape["streams"]).astype(np.float32) if shape["chunked"] else None
                    units.append(CodedUnit(codes.astype(np.int16), scales))
                per = shape["segment_units"]
                segments = [units[i:i + per] for i in range(0, len(units), per)]
                static = StaticModel.from_codes(np.concatenate([c for u in units for c in u.codes], axis=-1))
                group = max(1, LM_GROUP_ROWS // (per * shape["streams"])) if mode.startswith("lm") else 1
                coded, _ = _archived(segments, mode, portable if mode.startswith("lm") else None, static, group)
                model_rate = 48_000 if shape["chunked"] else 24_000
                stride = 1800
                model_length = (len(units) - 1) * stride + 900 if shape["chunked"] else shape["frames"] * HOP - 50
                header = ArchiveHeader(
                    codec={"name": "encodec-fx-24khz", "sha256": "ab" * 32},
                    lm={"name": "lm", "sha256": "cd" * 32} if mode.startswith("lm") else None, coding_mode=mode,
                    sample_rate=model_rate, channels=shape["streams"], audio_length=model_length,
                    model_sample_rate=model_rate, bandwidth=3.0, n_q=4, frame_rate=model_rate // HOP,
                    chunk_length=1920 if shape["chunked"] else None, chunk_stride=stride if shape["chunked"] else None,
                    segment_frames=per * shape["unit_frames"], segments=len(segments), units=len(units),
                    frames=shape["frames"], segment_seconds=per * shape["unit_frames"] * HOP / model_rate,
                    static_model=static.to_bytes() if mode == "static" else None, model_audio_length=model_length,
                    lm_group_segments=group, streams=shape["streams"], unit_frames=shape["unit_frames"],
                    scaled=shape["chunked"], parity=shape["parity"] if version == 3 else 0)
                name = f"v{version}-{mode}-{shape_name}"
                path = directory / f"{name}.ecfx"
                with ArchiveWriter(path, header if version == 3 else header.to_dict(), version=version,
                                   overwrite=True) as writer:
                    for segment in coded:
                        writer.write_segment(segment)
                corpus.append({"name": name, "path": str(path),
                               "codes": [[unit.codes.tolist() for unit in segment] for segment in segments]})
    (directory / "corpus.json").write_text(json.dumps(corpus))
    _bomb(directory)
    return corpus


# --- the mutator ---------------------------------------------------------------------------------


def _parts(data: bytes) -> dict:
    """The archive's structure: header fields, segment blocks (parity included), version."""
    from entropy.archive import ArchiveReader
    with ArchiveReader(data) as reader:
        header = dict(reader.header)
        if reader.version == 3:
            blocks = [data[offset:offset + size] for offset, size in reader._physical]
            return {"version": 3, "header": header, "blocks": blocks}
        blocks = [data[slot.offset:slot.offset + slot.size] for slot in reader._slots]
        return {"version": 2, "header": header, "blocks": blocks}


def _assemble(parts: dict, header_bytes: bytes | None = None) -> bytes:
    """Header, blocks, and an index rebuilt for them, every CRC recomputed."""
    from entropy import format_v3 as v3
    blocks = parts["blocks"]
    if parts["version"] == 3:
        head = header_bytes if header_bytes is not None else _v3_header(parts["header"])
        return head + b"".join(blocks) + v3.index_bytes([len(block) for block in blocks])
    head = header_bytes if header_bytes is not None else json.dumps(parts["header"]).encode()
    preamble = struct.pack("<4sBI", b"ECFX", 2, len(head)) + head
    preamble += struct.pack("<I", zlib.crc32(preamble))
    offset, entries = len(preamble), []
    for block in blocks:
        number, first, frames = struct.unpack_from("<IQI", block, 2) if len(block) >= 18 else (0, 0, 1)
        entries.append(struct.pack("<QQI", offset, first, frames))
        offset += len(block)
    index = struct.pack("<2sI", b"IX", len(blocks)) + b"".join(entries)
    index += struct.pack("<I", zlib.crc32(index))
    return preamble + b"".join(blocks) + index + struct.pack("<Q4s", offset, b"XFCE")


def _v3_header(fields: dict) -> bytes:
    """A version 3 header of any field values (no checks): what a crafted file holds."""
    import types

    from entropy import format_v3 as v3
    values = dict(fields)
    values["static_model"] = values.get("static_model")
    values.setdefault("stream_codebooks", None)
    values.setdefault("stereo", None)
    if isinstance(values["static_model"], str):
        values["static_model"] = base64.b64decode(values["static_model"])
    unit = values.get("unit_frames") or 1
    geometry = types.SimpleNamespace(streams=values.get("streams", 1), unit_frames=unit,
                                     segment_units=max(values.get("segment_frames", unit) // unit, 0),
                                     frames=values.get("frames", 1), parity=values.get("parity", 0),
                                     scales=values.get("scaled", False), tail=())
    return v3.encode_header(types.SimpleNamespace(**values), geometry)


def _segment_crc(parts: dict, position: int, block: bytes) -> bytes:
    """`block` (a segment without its CRC) with its CRC recomputed as the version demands."""
    from entropy import format_v3 as v3
    if parts["version"] == 2:
        return block + struct.pack("<I", zlib.crc32(block))
    from entropy.archive import ArchiveHeader  # noqa: F401
    parity = parts["header"].get("parity", 0)
    if parity:
        group, offset = divmod(position, parity + 1)
        number = v3.crc_number(True, group) if offset == parity or position == len(parts["blocks"]) - 1 else \
            group * parity + offset
    else:
        number = position
    return block + v3.segment_crc(block, number)


def _zlib_bomb(megabytes: int) -> bytes:
    compressor, zeros = zlib.compressobj(9), bytes(1 << 20)
    return b"".join(compressor.compress(zeros) for _ in range(megabytes)) + compressor.flush()


_BOMB: list[bytes] = []  # a static table whose counts inflate to 512 MB, made once per corpus


def _bomb(directory: Path | None = None) -> bytes:
    if not _BOMB:
        path = directory / "bomb.bin" if directory is not None else None
        if path is not None and path.exists():
            _BOMB.append(path.read_bytes())
        else:
            _BOMB.append(struct.pack("<HIB", 4, 1024, 32) + _zlib_bomb(512))
            if path is not None:
                path.write_bytes(_BOMB[0])
    return _BOMB[0]


def mutate(data: bytes, others: list[bytes], rng: random.Random) -> tuple[bytes, list[str]]:
    """1 to 3 mutations of `data`, structure-aware ones first; and what they were."""
    done: list[str] = []
    structural = ["header field", "segment field", "segment swap", "segment duplicate", "segment drop",
                  "index entry", "static model", "body bytes with CRC"]
    raw = ["flip", "truncate", "splice", "insert", "delete"]
    operations = sorted((rng.choice(structural + raw) for _ in range(rng.choice([1, 1, 2, 3]))),
                        key=lambda op: op in raw)
    for operation in operations:
        try:
            data = _apply(operation, data, others, rng, done)
        except Exception as error:  # the structure cannot be parsed after an earlier mutation: a raw one instead
            done.append(f"({operation} skipped: {type(error).__name__})")
            data = _apply("flip", data, others, rng, done)
    return data, done


def _apply(operation: str, data: bytes, others: list[bytes], rng: random.Random, done: list[str]) -> bytes:
    if not data:
        return data
    if operation == "flip":
        buffer = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(buffer))
            buffer[position] ^= 1 << rng.randrange(8)
        done.append("flip")
        return bytes(buffer)
    if operation == "truncate":
        cut = rng.randrange(len(data))
        done.append(f"truncate at {cut}")
        return data[:cut]
    if operation == "splice":
        other = rng.choice(others)
        start, length = rng.randrange(len(data)), rng.randint(1, 200)
        source = rng.randrange(len(other))
        done.append(f"splice {length} at {start}")
        return data[:start] + other[source:source + length] + data[start + length:]
    if operation == "insert":
        position = rng.randrange(len(data) + 1)
        done.append(f"insert at {position}")
        return data[:position] + rng.randbytes(rng.randint(1, 40)) + data[position:]
    if operation == "delete":
        position = rng.randrange(len(data))
        done.append(f"delete at {position}")
        return data[:position] + data[position + rng.randint(1, 40):]
    parts = _parts(data)
    blocks = parts["blocks"]
    header = parts["header"]
    if operation == "header field":
        if parts["version"] == 2 and rng.random() < 0.1:
            depth = rng.choice([20, 1000, 100_000])
            done.append(f"nested header {depth}")
            text = json.dumps(header)[:-1].encode() + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
            return _assemble(parts, text)
        field = rng.choice(HEADER_FIELDS)
        value: object = rng.choice(INTERESTING)
        if rng.random() < 0.3 and isinstance(header.get(field), int):
            value = header[field] + rng.choice([-2, -1, 1, 2])
        if parts["version"] == 2 and rng.random() < 0.1:
            value = rng.choice([None, "1", 1.5, -1, [1], {"a": 1}, True, float("nan") if False else 1e308])
        if field == "model_audio_length" and parts["version"] == 3:
            value = value if isinstance(value, int) else 0
        header[field] = value
        done.append(f"header {field}={value!r}")
        return _assemble(parts)
    if operation == "static model":
        kind = rng.choice(["bomb", "fields", "garbage"])
        if kind == "bomb":
            table = _bomb()
        elif kind == "fields":
            table = struct.pack("<HIB", rng.choice([0, 1, 4, 65535]), rng.choice([0, 2, 1024, 2**32 - 1]),
                                rng.choice([0, 1, 32, 33, 255])) + zlib.compress(rng.randbytes(rng.randint(0, 50)))
        else:
            table = rng.randbytes(rng.randint(0, 60))
        header["static_model"] = table if parts["version"] == 3 else base64.b64encode(table).decode()
        if parts["version"] == 3 and header.get("coding_mode") != "static" and rng.random() < 0.5:
            header["coding_mode"] = "static"
        done.append(f"static model {kind}")
        return _assemble(parts)
    if not blocks:
        raise ValueError("no segments")
    position = rng.randrange(len(blocks))
    if operation == "segment swap":
        other = rng.randrange(len(blocks))
        blocks[position], blocks[other] = blocks[other], blocks[position]
        done.append(f"swap segments {position} {other}")
    elif operation == "segment duplicate":
        blocks.insert(position, blocks[position])
        done.append(f"duplicate segment {position}")
    elif operation == "segment drop":
        del blocks[position]
        done.append(f"drop segment {position}")
    elif operation == "segment field":
        block = bytearray(blocks[position][:-4])
        if parts["version"] == 2:
            offset = rng.choice([2, 6, 14, 22, 26, 30, 32, 36, 0])  # number, first, frames, units, unit frames, ...
            width = 8 if offset == 6 else 2 if offset == 30 else 4
            value = rng.choice(INTERESTING) % (1 << (8 * width))
            block[offset:offset + width] = value.to_bytes(width, "little")[:len(block[offset:offset + width])]
        else:
            offset = rng.randrange(min(len(block), 24))
            block[offset] = rng.choice([0x00, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        blocks[position] = _segment_crc(parts, position, bytes(block))
        done.append(f"segment {position} field at {offset}, CRC recomputed")
    elif operation == "body bytes with CRC":
        block = bytearray(blocks[position][:-4])
        for _ in range(rng.randint(1, 4)):
            where = rng.randrange(len(block))
            block[where] = rng.randrange(256)
        blocks[position] = _segment_crc(parts, position, bytes(block))
        done.append(f"segment {position} bytes, CRC recomputed")
    elif operation == "index entry":
        stitched = _assemble(parts)
        done.append("index entry, CRC recomputed")
        return _index_edit(stitched, parts["version"], rng)
    return _assemble(parts)


def _index_edit(data: bytes, version: int, rng: random.Random) -> bytes:
    if version == 2:
        index_offset = struct.unpack_from("<Q", data, len(data) - 12)[0]
        (count,) = struct.unpack_from("<I", data, index_offset + 2)
        index = bytearray(data[index_offset:len(data) - 16])
        if count and rng.random() < 0.8:
            entry = 6 + 20 * rng.randrange(count) + rng.choice([0, 8, 16])
            width = 4 if (entry - 6) % 20 == 16 else 8
            index[entry:entry + width] = (rng.choice(INTERESTING) % (1 << (8 * width))).to_bytes(width, "little")
        else:
            index[2:6] = (rng.choice(INTERESTING) % (1 << 32)).to_bytes(4, "little")
        return data[:index_offset] + bytes(index) + struct.pack("<I", zlib.crc32(index)) + data[-12:]
    (length,) = struct.unpack_from("<I", data, len(data) - 6)
    start = len(data) - 6 - length
    entries = bytearray(data[start:len(data) - 10])
    if entries:
        entries[rng.randrange(len(entries))] = rng.randrange(256)
    index = bytes(entries) + struct.pack("<I", zlib.crc32(bytes(entries)))
    return data[:start] + index + struct.pack("<I2s", len(index), b"XF")


# --- one case ------------------------------------------------------------------------------------


class Judge:
    """Reads archives as `decompress --recover` does and judges the outcome against the original."""

    def __init__(self, directory: Path) -> None:
        from entropy.lm import load_lm
        from entropy.portable_lm import PortableLM
        self.corpus = json.loads((directory / "corpus.json").read_text())
        self.data = [Path(entry["path"]).read_bytes() for entry in self.corpus]
        self.lm = PortableLM(load_lm(directory / "lm.safetensors"))
        _bomb(directory)

    def case(self, number: int, seed: int = 0) -> tuple[bytes, int, list[str]]:
        rng = random.Random(f"{seed}:{number}")
        base = rng.randrange(len(self.corpus))
        data, done = mutate(self.data[base], self.data, rng)
        return data, base, done

    def judge(self, data: bytes, base: int) -> tuple[str, str]:
        from encodec_fx.compress import LostSegment, _decoded, _numbered
        from entropy.archive import ArchiveHeader, ArchiveReader
        from entropy.coding import StaticModel
        try:
            with ArchiveReader(data) as reader:
                header = ArchiveHeader.from_dict(reader.header)
                static = StaticModel.from_bytes(header.static_model) if header.static_model else None
                streams = header.streams if reader.version == 3 else header.channels
                lost: list[LostSegment] = []
                numbered = _numbered(reader.scan(recover=True), header, True, lost)
                lm = self.lm if header.coding_mode.startswith("lm") else None
                decoded = list(_decoded(numbered, header, streams, lm, static, True, lost))
                original = ArchiveHeader.from_dict(ArchiveReader(self.data[base]).header)
        except ValueError as error:
            text = str(error)
            if "\n" in text:
                return "multi-line error", text[:300]
            return "clean error", text[:200]
        except MemoryError as error:
            return "memory", repr(error)[:200]
        except Exception as error:  # noqa: BLE001 - anything else is the failure being looked for
            return "unexpected", f"{type(error).__name__}: {error}"[:300] + " | " + traceback.format_exc()[-600:]
        return self._verdict(header, original, decoded, lost, base)

    def _verdict(self, header, original, decoded, lost, base) -> tuple[str, str]:
        codes = self.corpus[base]["codes"]
        frames = 0
        for number, item in enumerate(decoded):
            if isinstance(item, int):
                frames += item
                continue
            segment, units = item
            frames += sum(unit.shape[-1] for unit in units)
            expected = codes[number] if number < len(codes) else None
            got = [unit.tolist() for unit in units]
            if expected is None or [
                    [[row[:len(row)] for row in stream] for stream in unit] for unit in expected] != got:
                return "silent wrong output", f"segment {number}'s codes differ from the original's"
        model_length = header.model_audio_length
        if model_length is None:  # version 2 may leave it out: it follows from the audio's length
            model_length = -(-header.audio_length * header.model_sample_rate // header.sample_rate)
        supported = frames * HOP if header.chunk_stride is None else header.units * header.chunk_stride
        if model_length > supported or \
                header.audio_length * header.model_sample_rate > (supported + 2) * header.sample_rate:
            return "silent wrong output", f"{header.audio_length} samples from {frames} frames"
        if header != original:
            return "accepted", "a CRC-valid header edit the reader cannot tell from a real archive"
        return ("recovered", f"{len(lost)} lost") if lost else ("exact", "")


# --- workers and the parent ----------------------------------------------------------------------


def worker(directory: str, first: int, count: int, seed: int, memory_mb: int) -> None:
    """Runs cases first .. first + count - 1, printing a line when each starts and ends."""
    judge = Judge(Path(directory))
    judge.judge(judge.data[0], 0)  # warm: the first LM frame builds tables
    if memory_mb:
        with open("/proc/self/statm") as statm:
            current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = current + memory_mb * (1 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    print("ready", flush=True)
    for number in range(first, first + count):
        print(f"start {number}", flush=True)
        if os.environ.get("ENCODEC_FX_FUZZ_SELFTEST") and number in (1, 3):  # the runner's own test
            os.abort() if number == 1 else time.sleep(60)
        data, base, done = judge.case(number, seed)
        outcome, detail = judge.judge(data, base)
        if outcome == "accepted" or outcome in FAILURES:
            detail = f"{judge.corpus[base]['name']}: {'; '.join(done)}: {detail}"
        print("done " + json.dumps([number, outcome, detail]), flush=True)


def _tail(file, characters: int) -> str:
    file.seek(0)
    return file.read()[-characters:]


class _Lines:
    """Lines from a pipe with a deadline: select() cannot see lines already read into a file's buffer."""

    def __init__(self, fd: int) -> None:
        self.fd, self.pending = fd, b""

    def next(self, seconds: float) -> str | None:
        """The next line ("" at end of file), or None when none is complete within `seconds`."""
        deadline = time.monotonic() + seconds
        while b"\n" not in self.pending:
            if not select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                rest, self.pending = self.pending, b""
                return rest.decode()
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode() + "\n"


def run(directory: Path, cases: int, *, first: int = 0, seed: int = 0, timeout: float = 5.0,
        seconds: float | None = None, memory_mb: int = 1536, progress: bool = False) -> dict:
    """Runs up to `cases` cases (fewer if `seconds` run out) in worker processes; the report."""
    started = time.monotonic()
    outcomes: Counter[str] = Counter()
    failures: list[dict] = []
    accepted: list[dict] = []
    number, end = first, first + cases
    slowest, slowest_case = 0.0, None
    while number < end and (seconds is None or time.monotonic() - started < seconds):
        errors = tempfile.TemporaryFile("w+")  # a file, not a pipe: warnings past a pipe's 64 KB would stall it
        process = subprocess.Popen([sys.executable, __file__, "--worker", str(directory), str(number),
                                    str(end - number), str(seed), str(memory_mb)],
                                   stdout=subprocess.PIPE, stderr=errors, text=True)
        lines = _Lines(process.stdout.fileno())
        current, case_started = None, time.monotonic()
        ready = False
        while True:
            limit = timeout if ready else 120.0
            line = lines.next(max(0.0, limit - (time.monotonic() - case_started)))
            if line is None:  # the case has run too long: a hang
                process.kill()
                process.wait()
                outcomes["hang"] += 1
                stalled = current if current is not None else number
                failures.append({"case": stalled, "outcome": "hang", "detail": f"over {timeout} s"})
                number = stalled + 1
                break
            if not line:  # the worker died
                code = process.wait()
                if current is None and not ready:
                    raise RuntimeError(f"the fuzz worker did not start: {_tail(errors, 2000)}")
                if current is not None:
                    outcomes["crash"] += 1
                    failures.append({"case": current, "outcome": "crash",
                                     "detail": f"exit {code}: {_tail(errors, 500)}"})
                    number = current + 1
                else:
                    number = end
                break
            kind, _, rest = line.strip().partition(" ")
            if kind == "ready":
                ready, case_started = True, time.monotonic()
            elif kind == "start":
                current, case_started = int(rest), time.monotonic()
            elif kind == "done":
                case, outcome, detail = json.loads(rest)
                took = time.monotonic() - case_started
                if took > slowest:
                    slowest, slowest_case = took, case
                outcomes[outcome] += 1
                if outcome in FAILURES:
                    failures.append({"case": case, "outcome": outcome, "detail": detail})
                elif outcome == "accepted" and len(accepted) < 20:
                    accepted.append({"case": case, "detail": detail})
                current, number, case_started = None, case + 1, time.monotonic()
                if progress and number % 1000 == 0:
                    print(f"{number - first} cases, {dict(outcomes)}", file=sys.stderr, flush=True)
                if seconds is not None and time.monotonic() - started > seconds:
                    process.kill()
                    process.wait()
                    break
        if process.poll() is None:
            process.wait()
        process.stdout.close()
        errors.close()
    elapsed = time.monotonic() - started
    total = sum(outcomes.values())
    return {"cases": total, "seconds": round(elapsed, 1), "cases_per_second": round(total / max(elapsed, 1e-9), 1),
            "slowest_case_seconds": round(slowest, 2), "slowest_case": slowest_case, "outcomes": dict(outcomes),
            "failures": sum(outcomes[kind] for kind in FAILURES), "failed_cases": failures[:50],
            "accepted_examples": accepted}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        directory, first, count, seed, memory_mb = sys.argv[2:7]
        worker(directory, int(first), int(count), int(seed), int(memory_mb))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first", type=int, default=0, help="number of the first case")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds a case may take")
    parser.add_argument("--memory-mb", type=int, default=1536, help="address space a worker may add after imports")
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/encodec-fx-fuzz"))
    parser.add_argument("--case", type=int, default=None, help="run one case here and show what it did")
    parser.add_argument("--report", type=Path, default=None, help="write the report as JSON")
    args = parser.parse_args()
    build_corpus(args.corpus)
    if args.case is not None:
        judge = Judge(args.corpus)
        data, base, done = judge.case(args.case, args.seed)
        print(f"case {args.case}: {judge.corpus[base]['name']}, {'; '.join(done)}")
        print(judge.judge(data, base))
        return
    report = run(args.corpus, args.cases, first=args.first, seed=args.seed, timeout=args.timeout,
                 seconds=args.seconds, memory_mb=args.memory_mb, progress=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.report:
        args.report.write_text(text)
    sys.exit(1 if report["failures"] else 0)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
