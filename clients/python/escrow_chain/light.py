"""A light client's checks, as ``docs/PROTOCOL.md`` ("Inclusion proofs",
"Blocks") specifies them: a transaction's merkle branch to its block's
header, and a chain of headers from genesis (links, heights, proof of
work, the required targets, the median-time rule). Nothing a node says
is taken on trust but the genesis the caller names.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import blake3

from .encoding import DecodeError, read_varint
from .keys import derive_key
from .tx import SIGNED_COMMITMENT_KEY, UNSIGNED_ID_KEY

LEAF_KEY = derive_key("escrow-chain 2026 merkle leaf", b"")
NODE_KEY = derive_key("escrow-chain 2026 merkle node", b"")
ROOT_KEY = derive_key("escrow-chain 2026 merkle root", b"")

#: The dev network's id: its genesis block's hash.
DEV_NETWORK = bytes.fromhex("164d7079cdf33778734edf851ead51973d8befa1e607e032b5ef9777069c05c4")

HEADER_SIZE = 96


class ProofError(Exception):
    """A proof, or a chain of headers, that does not hold; says why."""


@dataclass(frozen=True)
class Retarget:
    """The difficulty adjustment of a network (``ChainParams::retarget``)."""

    interval: int
    block_time_ms: int
    max_step: int


@dataclass(frozen=True)
class Params:
    """The consensus rules a light client checks headers against."""

    initial_target_bits: int = 16
    retarget: Optional[Retarget] = None
    median_time_span: int = 11

    def pow_limit(self) -> int:
        bits = min(self.initial_target_bits, 255)
        return (1 << (256 - bits)) - 1


#: The dev network's rules (``ChainParams::dev()``).
DEV_PARAMS = Params()


@dataclass(frozen=True)
class Header:
    """A block header, from its 96 canonical bytes."""

    version: int
    height: int
    parent: bytes
    merkle_root: bytes
    timestamp_ms: int
    target: int
    nonce: int
    raw: bytes = field(repr=False)

    @classmethod
    def from_bytes(cls, b: bytes) -> "Header":
        if len(b) != HEADER_SIZE:
            raise DecodeError(f"a header is {HEADER_SIZE} bytes, not {len(b)}")
        version, height, parent, root, ts, target, nonce = struct.unpack("<IQ32s32sQIQ", b)
        return cls(version, height, parent, root, ts, target, nonce, bytes(b))

    @property
    def hash(self) -> bytes:
        """One SHA-256 of the 96 bytes."""
        return hashlib.sha256(self.raw).digest()


def decode_compact(c: int) -> int:
    """A compact target's value; ``ProofError`` for zero or an overflow."""
    e, m = c >> 24, c & 0xFFFFFF
    if m == 0:
        raise ProofError(f"target {c:#010x} is zero")
    if e <= 3:
        t = m >> (8 * (3 - e))
        if t == 0:
            raise ProofError(f"target {c:#010x} is zero")
        return t
    if m.bit_length() + 8 * (e - 3) > 256:
        raise ProofError(f"target {c:#010x} does not fit 256 bits")
    return m << (8 * (e - 3))


def encode_compact(t: int) -> int:
    """A target's compact form (rounded down)."""
    n = (t.bit_length() + 7) // 8
    m = t << (8 * (3 - n)) if n <= 3 else t >> (8 * (n - 3))
    return (n << 24) | m


def work(t: int) -> int:
    """The expected hashes to meet target ``t``."""
    return (1 << 256) // (t + 1)


def required_target(params: Params, parent: Header, first: Optional[Header]) -> int:
    """The compact target the rules require of a child of ``parent``;
    ``first`` is the first block of the window ending at ``parent`` when the
    child starts a window."""
    limit = params.pow_limit()
    rule = params.retarget
    if rule is None or rule.interval < 2:
        return encode_compact(limit)
    if (parent.height + 1) % rule.interval != 0 or first is None:
        return parent.target
    try:
        previous = decode_compact(parent.target)
    except ProofError:
        return parent.target
    max_u64 = (1 << 64) - 1
    expected = max(min(rule.block_time_ms * (rule.interval - 1), max_u64), 1)
    step = max(rule.max_step, 1)
    actual = max(parent.timestamp_ms - first.timestamp_ms, 0)
    actual = min(max(actual, expected // step), min(expected * step, max_u64))
    new = previous * max(actual, 1) // expected
    new = min(new, limit)
    return encode_compact(max(new, 1))


@dataclass
class HeaderChain:
    """A chain of headers from genesis that passed every check."""

    hashes: List[bytes]
    work: int

    @property
    def height(self) -> int:
        return len(self.hashes) - 1

    @property
    def tip(self) -> bytes:
        return self.hashes[-1]


def verify_headers(headers: Sequence[Header], network: bytes = DEV_NETWORK, params: Params = DEV_PARAMS) -> HeaderChain:
    """Checks ``headers`` (genesis first) as a node checks a branch; the
    clock rule is not checked (a light client's clock is not the network's)."""
    if not headers:
        raise ProofError("no headers: the chain starts with the genesis header")
    genesis = headers[0]
    if genesis.hash != network or genesis.height != 0:
        raise ProofError(f"the first header is block {genesis.hash.hex()}, not this network's genesis {network.hex()}")
    hashes = [network]
    total = 0
    limit = params.pow_limit()
    span = max(params.median_time_span, 1)
    for i in range(1, len(headers)):
        h, parent = headers[i], headers[i - 1]
        where = f"header {i} (block {h.hash.hex()})"
        if h.version != 1:
            raise ProofError(f"{where} has version {h.version}, not 1")
        if h.parent != hashes[i - 1]:
            raise ProofError(f"{where} does not follow the one before it")
        if h.height != parent.height + 1:
            raise ProofError(f"{where} has height {h.height}, not {parent.height + 1}")
        target = decode_compact(h.target)
        if target > limit:
            raise ProofError(f"{where} states a target easier than the network's limit")
        if int.from_bytes(h.hash, "big") > target:
            raise ProofError(f"{where} does not meet its target: no proof of work")
        first = None
        if params.retarget and params.retarget.interval >= 2 and i % params.retarget.interval == 0:
            first = headers[i - params.retarget.interval]
        if h.target != required_target(params, parent, first):
            raise ProofError(f"{where} states target {h.target:#010x}, not the one the rules require")
        window = sorted(x.timestamp_ms for x in headers[max(0, i - span):i])
        if h.timestamp_ms <= window[len(window) // 2]:
            raise ProofError(f"{where} has a timestamp not past the median of those before it")
        total += work(target)
        hashes.append(h.hash)
    return HeaderChain(hashes, total)


@dataclass(frozen=True)
class Proof:
    """An inclusion proof, from its canonical bytes."""

    header: Header
    index: int
    count: int
    siblings: Tuple[bytes, ...]
    tx: bytes

    @classmethod
    def from_bytes(cls, b: bytes) -> "Proof":
        header = Header.from_bytes(b[:HEADER_SIZE])
        index, at = read_varint(b, HEADER_SIZE)
        count, at = read_varint(b, at)
        n, at = read_varint(b, at)
        if at + 32 * n > len(b):
            raise DecodeError("the proof ends inside its branch")
        siblings = tuple(b[at + 32 * k: at + 32 * (k + 1)] for k in range(n))
        tx = b[at + 32 * n:]
        if not tx:
            raise DecodeError("the proof has no transaction")
        return cls(header, index, count, siblings, tx)

    def tx_id_and_commitment(self) -> Tuple[bytes, bytes]:
        """The transaction's id and its merkle leaf input, from its bytes."""
        tag, at = read_varint(self.tx, 0)
        if tag == 0:
            signed = self.tx[at:]
            if len(signed) < 64:
                raise DecodeError("a signed transaction shorter than its signature")
            body = signed[:-64]
            return blake3.blake3(body).digest(), blake3.blake3(signed, key=SIGNED_COMMITMENT_KEY).digest()
        unsigned = blake3.blake3(self.tx, key=UNSIGNED_ID_KEY).digest()
        return unsigned, unsigned

    def root(self) -> bytes:
        """The merkle root this branch leads to from the transaction."""
        if self.index >= self.count:
            raise ProofError(f"leaf {self.index} of a block of {self.count} transactions does not exist")
        _, commitment = self.tx_id_and_commitment()
        node = blake3.blake3(commitment, key=LEAF_KEY).digest()
        siblings = list(self.siblings)
        at, width = self.index, self.count
        while width > 1:
            if not (at == width - 1 and width % 2 == 1):
                if not siblings:
                    raise ProofError("the branch is shorter than the tree's shape needs")
                s = siblings.pop(0)
                pair = node + s if at % 2 == 0 else s + node
                node = blake3.blake3(pair, key=NODE_KEY).digest()
            at //= 2
            width = (width + 1) // 2
        if siblings:
            raise ProofError("the branch is longer than the tree's shape needs")
        return blake3.blake3(self.count.to_bytes(8, "little") + node, key=ROOT_KEY).digest()

    def verify(self) -> Tuple[bytes, bytes]:
        """Checks the branch against the header; returns (block hash, tx id)."""
        if self.root() != self.header.merkle_root:
            raise ProofError(f"the branch does not lead to block {self.header.hash.hex()}'s merkle root")
        tx_id, _ = self.tx_id_and_commitment()
        return self.header.hash, tx_id

    def verify_in(self, chain: HeaderChain) -> Tuple[bytes, int]:
        """``verify``, then that the block is in ``chain``: (tx id, depth)."""
        block, tx_id = self.verify()
        h = self.header.height
        if h >= len(chain.hashes) or chain.hashes[h] != block:
            raise ProofError(
                f"block {block.hex()} at height {h} is not in the chain of headers given: "
                "it is on a branch that lost, or on another network"
            )
        return tx_id, chain.height - h + 1
