"""A client for the escrow chain (``clients/python/README.md``).

- ``Key``: ed25519 keys, the dev accounts, key files, addresses.
- ``transfer``, ``escrow_create``, ``confirm_delivery``, ...: payloads;
  ``sign`` makes a ``SignedTx`` byte for byte as the node encodes it.
- ``Client``: the node's HTTP API; ``Client.send`` signs, submits and waits.
- ``Proof``, ``verify_headers``: a light client's checks.
"""

from .client import Client, NodeError, WaitError
from .keys import DEV_ACCOUNTS, Key, address_of, dev_address
from .light import DEV_NETWORK, DEV_PARAMS, Header, Params, Proof, ProofError, Retarget, verify_headers
from .tx import (
    Payload,
    SignedTx,
    confirm_delivery,
    contract_id_of,
    escrow_create,
    raise_dispute,
    refund_buyer,
    resolve,
    sign,
    sign_at_rate,
    transfer,
    transfer_memo,
)

__all__ = [
    "Client", "NodeError", "WaitError", "DEV_ACCOUNTS", "Key", "address_of", "dev_address",
    "DEV_NETWORK", "DEV_PARAMS", "Header", "Params", "Proof", "ProofError", "Retarget", "verify_headers",
    "Payload", "SignedTx", "confirm_delivery", "contract_id_of", "escrow_create", "raise_dispute",
    "refund_buyer", "resolve", "sign", "sign_at_rate", "transfer", "transfer_memo",
]
