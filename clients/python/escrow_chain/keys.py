"""Keys and addresses (``docs/ESCROW.md``, "Accounts").

A key is an ed25519 key pair (RFC 8032). Its address is
``blake3.derive_key("escrow-chain 2026 address", public_key)``. The dev
accounts' secret seeds are derived from their names, so anyone can sign
as them: for dev networks only.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Union

import blake3
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DEV_ACCOUNTS = ("alice", "bob", "charlie", "dave", "eve", "ferdie")
_DEV_CONTEXT = "escrow-chain 2026 INSECURE dev account"
_ADDRESS_CONTEXT = "escrow-chain 2026 address"


def derive_key(context: str, material: bytes) -> bytes:
    """BLAKE3's key derivation mode: 32 bytes."""
    return blake3.blake3(material, derive_key_context=context).digest()


def address_of(public_key: bytes) -> bytes:
    """The address (32 bytes) of a public key."""
    return derive_key(_ADDRESS_CONTEXT, public_key)


def dev_address(name: str) -> bytes:
    """A dev account's address."""
    return Key.dev(name).address


def account(who: Union[str, bytes, "Key"]) -> bytes:
    """An address from a dev name, 64 hex digits, 32 bytes, or a key."""
    if isinstance(who, Key):
        return who.address
    if isinstance(who, (bytes, bytearray)):
        if len(who) != 32:
            raise ValueError("an address is 32 bytes")
        return bytes(who)
    if who in DEV_ACCOUNTS:
        return dev_address(who)
    raw = bytes.fromhex(who)
    if len(raw) != 32:
        raise ValueError(f"`{who}` is neither a dev account name nor 64 hex digits")
    return raw


class Key:
    """An ed25519 key pair, from its 32-byte secret seed."""

    def __init__(self, seed: bytes):
        if len(seed) != 32:
            raise ValueError("a secret seed is 32 bytes")
        self._private = Ed25519PrivateKey.from_private_bytes(bytes(seed))
        self.seed = bytes(seed)
        self.public = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.address = address_of(self.public)

    @classmethod
    def generate(cls) -> "Key":
        """A new key from the operating system's randomness."""
        return cls(os.urandom(32))

    @classmethod
    def dev(cls, name: str) -> "Key":
        """A dev account's key (insecure: derived from its name)."""
        if name not in DEV_ACCOUNTS:
            raise ValueError(f"`{name}` is not a dev account ({', '.join(DEV_ACCOUNTS)})")
        return cls(derive_key(_DEV_CONTEXT, name.encode()))

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Key":
        """A key file (``p2p-node keygen``): the seed in hex on one line.
        Refuses a file that others can read, as the node's client does."""
        path = Path(path)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise PermissionError(f"{path} is readable by others (mode {mode:o}): chmod 600 it")
        text = path.read_text().strip()
        seed = bytes.fromhex(text)
        return cls(seed)

    def save(self, path: Union[str, Path]) -> None:
        """Writes the key file (owner-only), refusing to overwrite one."""
        fd = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.seed.hex() + "\n")

    def sign(self, message: bytes) -> bytes:
        """The 64-byte ed25519 signature of ``message`` (deterministic)."""
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"Key(address={self.address.hex()})"
