"""The node's canonical encoding (postcard), as much of it as a client
writes and reads: varints, fixed 32-byte fields, UUIDs, and the
transaction types of ``docs/PROTOCOL.md`` ("Transactions and blocks inside
messages") and ``docs/ESCROW.md`` ("Transactions").

postcard writes an unsigned integer as a LEB128 varint (7 bits a byte,
least significant first, the top bit set on every byte but the last), an
enum as its variant's index as a varint, then the variant's fields in
order, a byte string as its length as a varint then the bytes, and a
fixed-size array as its bytes alone.
"""

from __future__ import annotations

from typing import Tuple


class DecodeError(ValueError):
    """Bytes that are not what they should be."""


def varint(n: int) -> bytes:
    """An unsigned integer (at most 2**64 - 1) as a LEB128 varint."""
    if n < 0 or n >= 1 << 64:
        raise ValueError(f"{n} is not a u64")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes, at: int) -> Tuple[int, int]:
    """The varint at ``at``: its value and the offset after it. Refuses an
    over-long encoding (one the node would not write) and values past u64."""
    value = 0
    for i in range(10):
        if at + i >= len(data):
            raise DecodeError("the bytes end inside a varint")
        byte = data[at + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if i > 0 and byte == 0:
                raise DecodeError("an over-long varint")
            if value >= 1 << 64:
                raise DecodeError("a varint past 2**64 - 1")
            return value, at + i + 1
    raise DecodeError("a varint longer than 10 bytes")


def fixed32(b: bytes, what: str) -> bytes:
    """A 32-byte field (a key, an address, a hash), checked."""
    if len(b) != 32:
        raise ValueError(f"{what} must be 32 bytes, not {len(b)}")
    return bytes(b)


def byte_string(b: bytes) -> bytes:
    """A byte string: its length as a varint, then the bytes."""
    return varint(len(b)) + bytes(b)


def uuid_bytes(contract: bytes) -> bytes:
    """A contract id (a UUID): postcard writes it as a 16-byte string."""
    if len(contract) != 16:
        raise ValueError("a contract id is 16 bytes")
    return b"\x10" + bytes(contract)
