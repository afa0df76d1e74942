"""The node's HTTP API (``docs/API.md``): reading the chain, submitting
signed transactions and waiting for them, the event stream, and inclusion
proofs checked against headers from any nodes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import requests

from .keys import Key, account
from .light import DEV_NETWORK, DEV_PARAMS, Header, Params, Proof, ProofError, verify_headers
from .tx import Payload, SignedTx, sign, sign_at_rate


class NodeError(Exception):
    """The node refused a request: its HTTP status, stable ``code`` and
    message (``docs/API.md``, "Errors")."""

    def __init__(self, status: int, code: str, message: str, body: Dict[str, Any]):
        super().__init__(f"{message} ({code})")
        self.status, self.code, self.message, self.body = status, code, message, body


class WaitError(Exception):
    """``wait`` gave up: the transaction was dropped, or not confirmed in
    time."""


class Client:
    """A node's API at ``url``. ``token`` (or ``data_dir``, whose
    ``api.cookie`` holds it) is needed only for ``mine``."""

    def __init__(self, url: str = "http://127.0.0.1:8000", token: Optional[str] = None,
                 data_dir: Optional[Union[str, Path]] = None, timeout: float = 30.0):
        self.url = url if "://" in url else f"http://{url}"
        self.url = self.url.rstrip("/")
        if token is None and data_dir is not None:
            token = (Path(data_dir) / "api.cookie").read_text().strip()
        self.token = token
        self.timeout = timeout
        self.http = requests.Session()

    # -- plumbing --------------------------------------------------------

    def _answer(self, r: requests.Response) -> Any:
        try:
            body = r.json()
        except ValueError:
            body = {"code": "unexpected_answer", "message": r.text[:200]}
        if r.status_code >= 400:
            raise NodeError(r.status_code, body.get("code", "error"), body.get("message", ""), body)
        return body

    def get(self, path: str, **params: Any) -> Any:
        """``GET path`` (query parameters as keywords); the JSON answer."""
        return self._answer(self.http.get(self.url + path, params=params or None, timeout=self.timeout))

    def post(self, path: str, body: Dict[str, Any], token: bool = False) -> Any:
        headers = {"authorization": f"Bearer {self.token}"} if token and self.token else {}
        return self._answer(self.http.post(self.url + path, json=body, headers=headers, timeout=self.timeout))

    # -- reading ---------------------------------------------------------

    def status(self) -> Dict[str, Any]:
        return self.get("/status")

    def wait_for_node(self, timeout: float = 30.0) -> Dict[str, Any]:
        """The node's status once it answers (a node just started)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.status()
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def account(self, who) -> Dict[str, Any]:
        """An account (a dev name, an address, a ``Key``): balance, nonce,
        pending nonce."""
        return self.get(f"/accounts/{account(who).hex()}")

    def balance(self, who) -> int:
        return self.account(who)["balance"]

    def tx(self, tx_id: Union[str, bytes]) -> Dict[str, Any]:
        """Where a transaction is: pending, confirmed or dropped."""
        return self.get(f"/txs/{_hex(tx_id)}")

    def block(self, which: Union[int, str, bytes]) -> Dict[str, Any]:
        """A block by height or by hash (or a unique prefix)."""
        if isinstance(which, int):
            return self.get(f"/blocks/height/{which}")
        return self.get(f"/blocks/{_hex(which)}")

    def blocks(self, start: int, end: int) -> List[Dict[str, Any]]:
        """The best chain's blocks from height ``start`` to ``end``."""
        return self.get("/blocks", **{"from": start, "to": end})

    def contract(self, contract_id) -> Dict[str, Any]:
        return self.get(f"/contracts/{contract_id}")

    def contracts(self) -> List[Dict[str, Any]]:
        return self.get("/contracts")

    def mempool(self) -> List[Dict[str, Any]]:
        return self.get("/mempool")

    def fee_rate(self, blocks: int = 2) -> int:
        """The node's estimate, coins per 1,000 bytes."""
        return self.get("/fees/estimate", blocks=blocks)["fee_rate"]

    def events(self) -> Iterator[Dict[str, Any]]:
        """The node's events (``GET /events``) as they come, each a dict
        with a ``kind``; ends when the node stops or the caller stops."""
        with self.http.get(self.url + "/events", stream=True, timeout=(self.timeout, None)) as r:
            if r.status_code >= 400:
                self._answer(r)
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    yield json.loads(line[5:].strip())

    # -- writing ---------------------------------------------------------

    def submit(self, tx: Union[SignedTx, str]) -> Dict[str, Any]:
        """``POST /txs``: a signed transaction (or its hex)."""
        return self.post("/txs", {"tx": tx.hex if isinstance(tx, SignedTx) else tx})

    def sign(self, key: Key, payload: Payload, fee: Optional[int] = None, blocks: int = 2) -> SignedTx:
        """Signs ``payload`` with the sender's next nonce and this node's
        network; ``fee`` coins, or the node's estimate for ``blocks``."""
        network = self.status()["network"]
        nonce = self.account(key)["pending_nonce"]
        if fee is not None:
            return sign(key, nonce, fee, network, payload)
        return sign_at_rate(key, nonce, self.fee_rate(blocks), network, payload)

    def send(self, key: Key, payload: Payload, fee: Optional[int] = None, wait: Optional[int] = None,
             timeout: float = 60.0) -> Dict[str, Any]:
        """Signs, submits, and with ``wait=N`` waits for N confirmations;
        the node's answer (with ``status``, ``height``, ... once waited)."""
        answer = self.submit(self.sign(key, payload, fee))
        if wait:
            answer.update(self.wait(answer["id"], wait, timeout))
        return answer

    def wait(self, tx_id, confirmations: int = 1, timeout: float = 60.0) -> Dict[str, Any]:
        """Polls until the transaction has ``confirmations``; ``WaitError``
        if it is dropped or the time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            t = self.tx(tx_id)
            if t["status"] == "dropped":
                raise WaitError(f"transaction {_hex(tx_id)} was dropped: {t.get('reason')}")
            if t["status"] == "confirmed" and t["confirmations"] >= confirmations:
                return t
            if time.monotonic() > deadline:
                raise WaitError(f"transaction {_hex(tx_id)} is {t['status']} after {timeout} s")
            time.sleep(0.1)

    def mine(self, blocks: int = 1) -> Dict[str, Any]:
        """Mines blocks now (dev networks; needs the token)."""
        return self.post("/mine", {"blocks": blocks}, token=True)

    # -- a dev node's snapshots -----------------------------------------

    def snapshot(self) -> int:
        """Saves a ``--dev`` node's chain, ledger, contracts and mempool;
        the snapshot's id (needs the token)."""
        return self.post("/dev/snapshot", {}, token=True)["id"]

    def revert(self, snapshot_id: int, timeout: float = 60.0) -> Dict[str, Any]:
        """Takes a ``--dev`` node back to a snapshot (which stays), and
        waits until the restarted node answers there; its status."""
        return self._restart("/dev/revert", {"id": snapshot_id}, timeout)

    def reset(self, timeout: float = 60.0) -> Dict[str, Any]:
        """Takes a ``--dev`` node back to genesis; its status after."""
        return self._restart("/dev/reset", {}, timeout)

    def _restart(self, path: str, body: Dict[str, Any], timeout: float) -> Dict[str, Any]:
        before = self.status()["started_at_ms"]
        target = self.post(path, body, token=True)
        deadline = time.monotonic() + timeout
        while True:
            # A new node whose best chain holds the snapshot's tip at its
            # height (it may have mined on top already).
            try:
                s = self.status()
                if s["started_at_ms"] != before and \
                        self.block(target["height"])["hash"] == target["tip"]:
                    return s
            except (requests.RequestException, NodeError):
                pass
            if time.monotonic() > deadline:
                raise WaitError(f"the node did not come back within {timeout} s")
            time.sleep(0.05)

    # -- proofs ----------------------------------------------------------

    def proof(self, tx_id) -> Proof:
        """The transaction's inclusion proof, decoded from its bytes."""
        answer = self.get(f"/txs/{_hex(tx_id)}/proof")
        return Proof.from_bytes(bytes.fromhex(answer["proof"]))

    def headers(self) -> List[Header]:
        """Every header of the best chain, from genesis. A node whose pages
        do not follow, or run on far past the tip it first said it had, is
        refused (``ProofError``) rather than followed."""
        out: List[Header] = []
        cap = None
        while True:
            page = self.get("/headers", **{"from": len(out)})
            if page["from"] != len(out):
                raise ProofError(f"{self.url}: asked for headers from {len(out)}, got {page['from']}")
            if cap is None:
                cap = page["tip_height"] + 10_000
            out.extend(Header.from_bytes(bytes.fromhex(h)) for h in page["headers"])
            if len(out) > cap:
                raise ProofError(f"{self.url}: more than {cap} headers, past the tip it said it had")
            if not page["headers"] or len(out) > page["tip_height"]:
                return out

    def verify_proof(self, tx_id, network: bytes = DEV_NETWORK, params: Params = DEV_PARAMS,
                     headers_from: Sequence["Client"] = ()) -> Dict[str, Any]:
        """Checks that the transaction is in the chain without trusting the
        node: its proof's branch, and the valid chain of headers of most work
        among ``headers_from`` (this node if empty), from ``network``'s
        genesis. ``ProofError`` if it does not hold."""
        proof = self.proof(tx_id)
        block, in_proof = proof.verify()
        if in_proof != _bytes(tx_id):
            raise ProofError(f"the node sent a proof for transaction {in_proof.hex()}, not {_hex(tx_id)}")
        best, refused = None, []
        for source in headers_from or [self]:
            try:
                chain = verify_headers(source.headers(), network, params)
            except (ProofError, ValueError, NodeError, requests.RequestException) as e:
                refused.append(f"{source.url}: {e}")
                continue
            if best is None or chain.work > best[0].work:
                best = (chain, source.url)
        if best is None:
            raise ProofError("no valid chain of headers: " + "; ".join(refused))
        _, depth = proof.verify_in(best[0])
        return {"tx": in_proof.hex(), "block": block.hex(), "height": proof.header.height,
                "depth": depth, "chain_height": best[0].height, "headers_from": best[1], "refused": refused}


def _hex(x: Union[str, bytes]) -> str:
    return x.hex() if isinstance(x, (bytes, bytearray)) else str(x)


def _bytes(x: Union[str, bytes]) -> bytes:
    return bytes(x) if isinstance(x, (bytes, bytearray)) else bytes.fromhex(x)
