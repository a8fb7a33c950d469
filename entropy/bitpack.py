"""Fixed-width bit packing: unsigned integers of `bits` bits each, least significant bit first.

The value stream is one little-endian bit stream: value i occupies bits [i*bits, (i+1)*bits), and
bit j of the stream is bit (j % 8) of byte j // 8. The last byte is padded with zero bits. This is
the layout of the codes in the original EnCodec `.ecdc` files (10 bits per code).
"""

from __future__ import annotations

import numpy as np

MAX_BITS = 32
"""Widest value supported: values travel as little-endian uint32 bytes, 32 bits per value in memory."""


def packed_size(count: int, bits: int) -> int:
    """Number of bytes that `count` values of `bits` bits occupy once flushed to a byte boundary."""
    _check_bits(bits)
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return (count * bits + 7) // 8


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """Pack a 1-D array of integers in [0, 2**bits) into bytes, LSB first, zero-padded at the end."""
    _check_bits(bits)
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"values must be a 1-D array, got shape {values.shape}")
    if values.size == 0:
        return b""
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"values must be integers, got dtype {values.dtype}")
    low, high = int(values.min()), int(values.max())
    if low < 0 or high >= 1 << bits:
        raise ValueError(f"values must lie in [0, {(1 << bits) - 1}] for {bits} bits, got range [{low}, {high}]")
    value_bytes = values.astype("<u4").view(np.uint8).reshape(-1, 4)
    bit_matrix = np.unpackbits(value_bytes, axis=1, bitorder="little")[:, :bits]
    return np.packbits(bit_matrix.ravel(), bitorder="little").tobytes()


def unpack_bits(data: bytes, bits: int, count: int) -> np.ndarray:
    """Read `count` values (int64) of `bits` bits from `data`, exactly `packed_size(count, bits)` bytes long.

    Requiring the exact size catches truncated input and stray bytes instead of returning
    garbage; the padding bits of the last byte are ignored.
    """
    expected = packed_size(count, bits)
    if len(data) != expected:
        raise ValueError(f"{count} values of {bits} bits need exactly {expected} bytes, got {len(data)}")
    bit_matrix = np.zeros((count, MAX_BITS), dtype=np.uint8)
    bit_matrix[:, :bits] = np.unpackbits(
        np.frombuffer(data, dtype=np.uint8), bitorder="little", count=count * bits
    ).reshape(count, bits)
    value_bytes = np.packbits(bit_matrix, axis=1, bitorder="little")
    return value_bytes.view("<u4").ravel().astype(np.int64)


def _check_bits(bits: int) -> None:
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be between 1 and {MAX_BITS}, got {bits}")
