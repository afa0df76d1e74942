"""The client's bytes against the project's own: the worked examples of
``docs/ESCROW.md`` and ``docs/PROTOCOL.md`` and the golden vector of the
dev genesis block, byte for byte."""

from pathlib import Path

import blake3

from escrow_chain import DEV_NETWORK, Header, Key, dev_address, sign, transfer
from escrow_chain.encoding import read_varint, varint
from escrow_chain.keys import DEV_ACCOUNTS
from escrow_chain.tx import UNSIGNED_ID_KEY, contract_id_of

ROOT = Path(__file__).resolve().parents[3]
ESCROW_MD = (ROOT / "docs" / "ESCROW.md").read_text()
PROTOCOL_MD = (ROOT / "docs" / "PROTOCOL.md").read_text()


def test_alices_key_and_address_are_the_documented_ones():
    alice = Key.dev("alice")
    assert alice.seed.hex() == "f7fabb19bc69e1ceb3405f930dc547fbadd9ae5ff7e84cca69a9b3d34ae0e50a"
    assert alice.public.hex() == "703efb46d0db91d5f6ee62837cc2d91033d9e2ea10bd7ebd7051e8b95dd5f362"
    assert alice.address.hex() == "24ba93c1386da59d7b69e54653040494336110973bcffbe71411cb2bd1eff962"
    # Every dev account's key and address are in the table of the document.
    for name in DEV_ACCOUNTS:
        k = Key.dev(name)
        assert k.address.hex() in ESCROW_MD, name
        assert k.public.hex() in ESCROW_MD, name


def test_the_worked_transfer_is_signed_byte_for_byte():
    tx = sign(Key.dev("alice"), 0, 1, DEV_NETWORK, transfer("bob", 100))
    assert len(tx.body) == 100 and tx.size == 164
    # The body, field by field, and the signature, as docs/ESCROW.md has them.
    for piece in [tx.body[:32].hex(), tx.body[34:66].hex(), tx.body[67:99].hex(),
                  tx.signature[:32].hex(), tx.signature[32:].hex()]:
        assert piece in ESCROW_MD
    assert tx.body[32:34] == bytes([0, 1]) and tx.body[66] == 0 and tx.body[99] == 100
    assert tx.id.hex() == "663af5f95a32ebc5414dcef607df253fc1ba9b1b94bef8db79ffdb1f4ac3be27"
    assert tx.commitment.hex() == "3f19a4425ee1ca76645e7a871d86046e2696cbbfb6df0393988bfcc3180d369d"


def test_the_worked_coinbase_id():
    coinbase = bytes([1]) + dev_address("ferdie") + varint(1)
    assert blake3.blake3(coinbase, key=UNSIGNED_ID_KEY).hexdigest() == \
        "7a73f4844c201eced8a7e3fe89ee1a0b6d8cdf6985d4ec35a1b0add7e38137c7"


def test_the_dev_genesis_header_from_the_golden_vector():
    frame = bytes.fromhex((ROOT / "crates/wire/tests/data/block_genesis.hex").read_text().strip())
    # A frame: 4-byte length, the message tag, then the block: its header first.
    length = int.from_bytes(frame[:4], "big")
    assert length == len(frame) - 4
    _, at = read_varint(frame, 4)
    header = Header.from_bytes(frame[at:at + 96])
    assert header.height == 0 and header.target == 0x1EFFFFFF
    assert header.hash == DEV_NETWORK
    assert DEV_NETWORK.hex() in PROTOCOL_MD


def test_varints_are_leb128_and_refuse_over_long_forms():
    assert varint(0) == b"\x00" and varint(127) == b"\x7f" and varint(128) == b"\x80\x01"
    assert varint(1234) == bytes.fromhex("d209")
    assert read_varint(bytes.fromhex("d209"), 0) == (1234, 2)
    for bad in [b"\x80\x00", b"\x80"]:
        try:
            read_varint(bad, 0)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was read")


def test_a_contract_id_is_its_creating_transactions_id_as_a_uuid():
    tx_id = bytes.fromhex("c9f0c190c78913ddb5f79d58261a6b507f0d69793907060d7e188dad290a1c9e")
    assert str(contract_id_of(tx_id)) == "c9f0c190-c789-83dd-b5f7-9d58261a6b50"
