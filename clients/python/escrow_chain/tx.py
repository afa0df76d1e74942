"""Transactions, built and signed byte for byte as the node encodes them
(``docs/ESCROW.md``, "Transactions"; ``docs/PROTOCOL.md``, "Transactions
and blocks inside messages").

A ``Payload`` is what a transaction does; ``sign`` makes a ``SignedTx`` of
it: the body's canonical bytes signed by the sender's key. Its ``id`` is
``blake3(body)``; its ``hex`` is what ``POST /txs`` and ``p2p-node
send-raw`` take.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Union

import blake3

from .encoding import byte_string, fixed32, uuid_bytes, varint
from .keys import Key, account, derive_key

SIGNED_COMMITMENT_KEY = derive_key("escrow-chain 2026 signed tx commitment", b"")
UNSIGNED_ID_KEY = derive_key("escrow-chain 2026 unsigned tx id", b"")


def contract_id_of(tx_id: bytes) -> uuid.UUID:
    """The id of the contract a creating transaction makes: its id's first
    16 bytes as a UUID of version 8 (custom)."""
    b = bytearray(tx_id[:16])
    b[6] = (b[6] & 0x0F) | 0x80
    b[8] = (b[8] & 0x3F) | 0x80
    return uuid.UUID(bytes=bytes(b))


def _contract(c: Union[str, uuid.UUID]) -> bytes:
    return (c if isinstance(c, uuid.UUID) else uuid.UUID(str(c))).bytes


@dataclass(frozen=True)
class Payload:
    """What a transaction does: its encoding and its kind's name."""

    kind: str
    encoded: bytes


def transfer(to, amount: int) -> Payload:
    """Sends ``amount`` coins to ``to`` (a dev name, an address, a key)."""
    return Payload("transfer", varint(0) + fixed32(account(to), "to") + varint(amount))


def transfer_memo(to, amount: int, memo: Union[str, bytes]) -> Payload:
    """A transfer carrying a memo (at most 65,536 bytes)."""
    raw = memo.encode() if isinstance(memo, str) else bytes(memo)
    if len(raw) > 65_536:
        raise ValueError("a memo is at most 65,536 bytes")
    return Payload(
        "transfer-memo",
        varint(6) + fixed32(account(to), "to") + varint(amount) + byte_string(raw),
    )


def escrow_create(seller, arbiter, amount: int, delivery_deadline: int, dispute_window: int = 20) -> Payload:
    """Locks ``amount`` for ``seller``, ``arbiter`` settling disputes; the
    sender is the buyer. ``delivery_deadline`` is a height."""
    return Payload(
        "escrow-create",
        varint(1)
        + fixed32(account(seller), "seller")
        + fixed32(account(arbiter), "arbiter")
        + varint(amount)
        + varint(delivery_deadline)
        + varint(dispute_window),
    )


def confirm_delivery(contract) -> Payload:
    """The buyer confirms delivery: the seller is paid."""
    return Payload("confirm-delivery", varint(2) + uuid_bytes(_contract(contract)))


def raise_dispute(contract) -> Payload:
    """The buyer or the seller disputes."""
    return Payload("raise-dispute", varint(3) + uuid_bytes(_contract(contract)))


def resolve(contract, to: str) -> Payload:
    """The arbiter settles a dispute: ``to`` is ``"buyer"`` or ``"seller"``."""
    if to not in ("buyer", "seller"):
        raise ValueError("resolve to `buyer` or `seller`")
    party = 1 if to == "buyer" else 0
    return Payload("resolve", varint(4) + uuid_bytes(_contract(contract)) + varint(party))


def refund_buyer(contract) -> Payload:
    """The buyer is refunded (``docs/ESCROW.md`` says who may, and when)."""
    return Payload("refund-buyer", varint(5) + uuid_bytes(_contract(contract)))


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction: its body's bytes and the signature."""

    body: bytes
    signature: bytes
    kind: str

    @property
    def bytes(self) -> bytes:
        """The canonical bytes: body, then the 64 signature bytes."""
        return self.body + self.signature

    @property
    def hex(self) -> str:
        """What ``POST /txs`` takes."""
        return self.bytes.hex()

    @property
    def id(self) -> bytes:
        """``blake3(body)``: the signature is not part of the id."""
        return blake3.blake3(self.body).digest()

    @property
    def commitment(self) -> bytes:
        """The merkle leaf input: keyed BLAKE3 of body and signature."""
        return blake3.blake3(self.bytes, key=SIGNED_COMMITMENT_KEY).digest()

    @property
    def size(self) -> int:
        """Bytes, for fee rates."""
        return len(self.body) + len(self.signature)

    @property
    def contract(self):
        """The contract an escrow creation makes, else ``None``."""
        return contract_id_of(self.id) if self.kind == "escrow-create" else None


def sign(key: Key, nonce: int, fee: int, network: Union[str, bytes], payload: Payload) -> SignedTx:
    """Signs ``payload`` as ``key``'s transaction number ``nonce``, paying
    ``fee`` coins, for the network whose genesis hash is ``network``."""
    net = bytes.fromhex(network) if isinstance(network, str) else bytes(network)
    body = (
        fixed32(key.public, "sender")
        + varint(nonce)
        + varint(fee)
        + fixed32(net, "network")
        + payload.encoded
    )
    return SignedTx(body, key.sign(body), payload.kind)


def sign_at_rate(key: Key, nonce: int, rate_per_kb: int, network, payload: Payload) -> SignedTx:
    """Signs with the least fee that pays ``rate_per_kb`` coins per 1,000
    bytes of the transaction itself (a larger fee can take a byte more)."""
    fee = 0
    while True:
        tx = sign(key, nonce, fee, network, payload)
        needed = -(-rate_per_kb * tx.size // 1000)  # exact integer ceiling
        if needed <= fee:
            return tx
        fee = needed
