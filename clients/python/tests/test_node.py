"""The client against live ``--dev`` nodes: every transaction kind,
waiting, reading, the event stream, inclusion proofs (and tampered
ones), and the node's refusals."""

import threading

import pytest

from escrow_chain import (
    Client, Key, NodeError, Proof, ProofError, WaitError, confirm_delivery, escrow_create,
    raise_dispute, refund_buyer, resolve, sign, transfer, transfer_memo, verify_headers,
)

alice, bob, charlie, dave, eve = (Key.dev(n) for n in ("alice", "bob", "charlie", "dave", "eve"))


def deadline(node: Client, blocks: int = 100) -> int:
    return node.status()["height"] + blocks


def test_the_notebooks_two_flows(node):
    # Alice pays Bob through an escrow; she confirms delivery.
    before = node.balance("bob")
    created = node.send(alice, escrow_create("bob", "eve", 100, deadline(node)), wait=1)
    contract = created["contract"]
    node.send(alice, confirm_delivery(contract), wait=1)
    assert node.contract(contract)["state"] == "Released"
    assert node.balance("bob") == before + 100
    # Charlie disputes; Eve resolves it to the buyer: refunded.
    created = node.send(charlie, escrow_create("dave", "eve", 50, deadline(node)), wait=1)
    contract = created["contract"]
    node.send(charlie, raise_dispute(contract), wait=1)
    node.send(eve, resolve(contract, "buyer"), wait=1)
    assert node.contract(contract)["state"] == "Refunded"


def test_every_kind_and_the_reads(node):
    t = node.send(alice, transfer(bob, 5), wait=1)
    assert t["status"] == "confirmed" and t["confirmations"] >= 1
    m = node.send(alice, transfer_memo("bob", 0, "thanks"), fee=3, wait=1)
    assert node.tx(m["id"])["tx"]["fee"] == 3
    c = node.send(bob, escrow_create("alice", "eve", 10, deadline(node, 2)), wait=1)
    node.mine(3)  # past the delivery deadline: the buyer may take the refund
    node.send(bob, refund_buyer(c["contract"]), wait=1)
    assert node.contract(c["contract"])["state"] == "Refunded"
    assert any(x["id"] == c["contract"] for x in node.contracts())
    height = node.status()["height"]
    block = node.block(height)
    assert node.block(block["hash"])["height"] == height
    assert [b["height"] for b in node.blocks(1, 3)] == [1, 2, 3]
    assert node.account(alice)["pending_nonce"] == 2


def test_the_event_stream_tells_each_new_tip(node):
    seen = []
    got = threading.Event()

    def follow():
        for event in node.events():
            seen.append(event)
            if event["kind"] == "tip":
                got.set()
                return

    threading.Thread(target=follow, daemon=True).start()
    # The stream is open once the first change is seen: mine until it is.
    for _ in range(50):
        node.mine(1)
        if got.wait(0.2):
            break
    assert got.is_set(), seen
    assert seen[-1]["height"] >= 1


def test_refusals_carry_the_nodes_code(node):
    tx = node.sign(alice, transfer(bob, 1), fee=1)
    node.submit(tx)
    with pytest.raises(NodeError) as replay:
        node.submit(tx)
    # Still pending, or mined already: either way refused.
    assert replay.value.code in ("already_pending", "bad_nonce")
    with pytest.raises(NodeError) as bad:
        node.submit("abcd")
    assert bad.value.code == "bad_encoding"
    broken = bytearray(node.sign(alice, transfer(bob, 2), fee=1).bytes)
    broken[-1] ^= 1
    with pytest.raises(NodeError) as sig:
        node.submit(bytes(broken).hex())
    assert sig.value.code == "bad_signature"
    poor = Key.generate()
    with pytest.raises(NodeError) as funds:
        node.send(poor, transfer(bob, 1), fee=1)
    assert funds.value.code == "insufficient_funds"
    with pytest.raises(NodeError) as unknown:
        node.tx("ab" * 32)
    assert unknown.value.status == 404


def test_waiting_gives_up_in_time(start_node):
    node = start_node("--mine", "off").client
    sent = node.send(alice, transfer(bob, 1), fee=1)
    with pytest.raises(WaitError):
        node.wait(sent["id"], 1, timeout=0.5)
    with pytest.raises(NodeError) as pending:
        node.proof(sent["id"])
    assert pending.value.code == "tx_pending"


def test_a_proof_holds_and_every_tampering_fails(node):
    for n in range(1, 4):
        node.send(charlie, transfer(dave, n), fee=1)
    sent = node.send(alice, transfer(bob, 7), wait=1)
    node.mine(2)
    checked = node.verify_proof(sent["id"])
    assert checked["tx"] == sent["id"]
    assert checked["depth"] == node.status()["height"] - checked["height"] + 1
    proof = node.proof(sent["id"])
    chain = verify_headers(node.headers())
    assert proof.verify_in(chain)[1] == checked["depth"]
    raw = bytes.fromhex(node.get(f"/txs/{sent['id']}/proof")["proof"])
    assert Proof.from_bytes(raw) == proof

    def changed(**fields):
        data = dict(header=proof.header, index=proof.index, count=proof.count,
                    siblings=proof.siblings, tx=proof.tx)
        data.update(fields)
        return Proof(**data)

    other = node.proof(node.block(1)["transactions"][0]["id"])
    flipped = bytes([proof.siblings[0][0] ^ 1]) + proof.siblings[0][1:]
    for what, bad in [
        ("leaf", changed(tx=proof.tx[:-1] + bytes([proof.tx[-1] ^ 1]))),
        ("sibling", changed(siblings=(flipped,) + proof.siblings[1:])),
        ("index", changed(index=(proof.index + 1) % proof.count)),
        ("count", changed(count=proof.count + 1)),
        ("header", changed(header=other.header)),
    ]:
        with pytest.raises(ProofError):
            bad.verify_in(chain)
            raise AssertionError(what)


def test_a_proof_from_a_branch_that_lost_fails_against_the_winning_chain(start_node):
    a = start_node().client
    b = start_node("--mine", "off").client
    sent = a.send(alice, transfer(bob, 3), wait=1)
    b.mine(3)
    assert a.verify_proof(sent["id"])["depth"] == 1
    with pytest.raises(ProofError, match="not in the chain"):
        a.verify_proof(sent["id"], headers_from=[a, b])


def test_a_forged_chain_of_headers_is_refused(node):
    node.mine(3)
    headers = node.headers()
    from escrow_chain.light import Header as H
    # A header whose nonce is changed no longer meets its target.
    bad = bytearray(headers[2].raw)
    bad[90] ^= 0xFF
    forged = headers[:2] + [H.from_bytes(bytes(bad))] + headers[3:]
    with pytest.raises(ProofError):
        verify_headers(forged)
    with pytest.raises(ProofError):
        verify_headers(headers[1:])


def test_a_revert_restores_a_disputed_contract_exactly(node):
    created = node.send(charlie, escrow_create("dave", "eve", 50, deadline(node)), wait=1)
    contract = created["contract"]
    node.send(charlie, raise_dispute(contract), wait=1)
    saved_contract = node.contract(contract)
    saved_balances = [node.account(k) for k in (charlie, dave, eve)]
    saved_tip = node.status()["tip"]
    snap = node.snapshot()
    node.send(eve, resolve(contract, "buyer"), wait=1)
    node.mine(2)
    assert node.contract(contract)["state"] == "Refunded"
    status = node.revert(snap)
    assert status["tip"] == saved_tip
    assert node.contract(contract) == saved_contract
    assert [node.account(k) for k in (charlie, dave, eve)] == saved_balances
    assert node.reset()["height"] == 0
    assert node.contracts() == []
    with pytest.raises(NodeError) as unknown:
        node.revert(99)
    assert unknown.value.code == "unknown_snapshot"


def test_snapshots_need_a_dev_node(node_binary, tmp_path):
    import subprocess
    proc = subprocess.Popen(
        [node_binary, "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0", "--data-dir", str(tmp_path),
         "--mine", "off", "--log", "warn"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        api = next(line.split()[-1] for line in proc.stdout if line.startswith("api listening on "))
        with pytest.raises(NodeError) as refused:
            Client(api, data_dir=tmp_path).snapshot()
        assert refused.value.code == "not_dev"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stdout.close()
