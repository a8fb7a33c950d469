"""CRC32 of many byte ranges of one buffer at once, for resynchronising after damage in linear time.

A reader that lost its place tries every candidate position (a marker in version 2, any byte in version 3)
for a segment whose CRC matches. Checking each with `zlib.crc32` costs its claimed length, so a crafted file
of many candidates that each claim most of the file took quadratic time (120k markers in 2.6 MB: a minute).
Here the CRC of every prefix is computed once, and the CRC of any range follows from two prefixes: CRC32 is
affine, so `crc32(data[a:b]) = P[b] ^ Z_{b-a}(P[a])`, where P[k] is `zlib.crc32(data[:k])` and Z_n runs a
register through n zero bytes, a linear map applied bit by bit of n from precomputed byte tables. Numpy
does it for all candidates together: O(len(data) + candidates · log(length)).
"""

from __future__ import annotations

import zlib

import numpy as np

_POLYNOMIAL = 0xEDB88320  # zlib's CRC32, bit-reflected
_MAX_LENGTH_BITS = 48


def _byte_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLYNOMIAL), table >> 1).astype(np.uint32)
    return table


_TABLE = _byte_table()


def _apply(tables: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A linear map on 32-bit registers, given as 4 tables of 256 (its action on each byte), applied to `values`."""
    return (tables[0][values & 0xFF] ^ tables[1][(values >> 8) & 0xFF] ^ tables[2][(values >> 16) & 0xFF]
            ^ tables[3][values >> 24])


def _tables_of(columns: np.ndarray) -> np.ndarray:
    """The byte tables of the linear map whose images of the 32 unit vectors are `columns`."""
    tables = np.zeros((4, 256), np.uint32)
    for byte in range(4):
        for value in range(1, 256):
            low = value & -value
            tables[byte, value] = tables[byte, value ^ low] ^ columns[8 * byte + low.bit_length() - 1]
    return tables


def _zero_tables() -> list[np.ndarray]:
    """Tables of Z_{2^i}, i = 0, 1, ...: a register run through 2^i zero bytes."""
    units = np.array([1 << bit for bit in range(32)], dtype=np.uint32)
    columns = (units >> 8) ^ _TABLE[units & 0xFF]  # one zero byte
    tables = [_tables_of(columns)]
    for _ in range(1, _MAX_LENGTH_BITS):
        columns = _apply(tables[-1], _apply(tables[-1], units))
        tables.append(_tables_of(columns))
    return tables


_ZERO_TABLES: list[np.ndarray] = []


def prefix_crcs(data: bytes) -> np.ndarray:
    """P[k] = zlib.crc32(data[:k]) for k = 0 .. len(data), as uint32: zlib gives it at block starts, numpy
    runs the blocks side by side."""
    size = len(data)
    block = max(64, int(size ** 0.5))
    blocks = -(-size // block)
    padded = np.zeros(blocks * block, np.uint8)
    padded[:size] = np.frombuffer(data, np.uint8)
    starts, crc = np.zeros(blocks, np.uint32), 0
    for index in range(blocks):
        starts[index] = crc
        crc = zlib.crc32(data[index * block:(index + 1) * block], crc)
    rows = padded.reshape(blocks, block)
    out = np.empty((blocks, block), np.uint32)
    register = starts ^ np.uint32(0xFFFFFFFF)
    for column in range(block):
        out[:, column] = register
        register = (register >> 8) ^ _TABLE[(register ^ rows[:, column]) & 0xFF]
    prefixes = np.empty(size + 1, np.uint32)
    prefixes[:size] = out.ravel()[:size] ^ np.uint32(0xFFFFFFFF)
    prefixes[size] = crc
    return prefixes


def zero_run(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each value run through its length of zero bytes, as the difference of two CRC registers is."""
    if not _ZERO_TABLES:
        _ZERO_TABLES.extend(_zero_tables())
    values = np.array(values, dtype=np.uint32)
    lengths = np.asarray(lengths, dtype=np.int64)
    for bit in range(int(lengths.max(initial=0)).bit_length()):
        chosen = np.flatnonzero((lengths >> bit) & 1)
        values[chosen] = _apply(_ZERO_TABLES[bit], values[chosen])
    return values


def range_crcs(prefixes: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """zlib.crc32(data[start:end]) for each pair, from `prefix_crcs(data)`."""
    starts, ends = np.asarray(starts, np.int64), np.asarray(ends, np.int64)
    return prefixes[ends] ^ zero_run(prefixes[starts], ends - starts)


def crc_continued(values: np.ndarray, data: bytes) -> np.ndarray:
    """zlib.crc32(data, value) for each value: the CRC of `data` run on from each."""
    values = np.asarray(values, np.uint32)
    base = np.uint32(zlib.crc32(data))
    return base ^ zero_run(values, np.full(len(values), len(data)))
