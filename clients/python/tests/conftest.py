"""A live node for the tests: the binary ``P2P_NODE_BINARY`` names, or
``target/debug/p2p-node`` built with cargo when it is unset. Each node is
a ``--dev`` node on ports the system picks, in a temporary directory,
stopped after its test."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from escrow_chain import Client

ROOT = Path(__file__).resolve().parents[3]


def binary() -> str:
    given = os.environ.get("P2P_NODE_BINARY")
    if given:
        return given
    subprocess.run(["cargo", "build", "-q", "-p", "p2p-node"], cwd=ROOT, check=True)
    return str(ROOT / "target" / "debug" / "p2p-node")


@pytest.fixture(scope="session")
def node_binary() -> str:
    return binary()


class Node:
    """A started node: its client (with the token) and its process."""

    def __init__(self, node_binary: str, *extra: str):
        self.dir = tempfile.TemporaryDirectory(prefix="escrow-py-")
        self.proc = subprocess.Popen(
            [node_binary, "--dev", "--listen", "127.0.0.1:0", "--api", "127.0.0.1:0",
             "--data-dir", self.dir.name, "--log", "warn", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        api = None
        for line in self.proc.stdout:
            if line.startswith("api listening on "):
                api = line.split()[-1]
            if line.startswith("best tip "):
                break
        if api is None:
            self.stop()
            raise RuntimeError("the node did not start")
        self.client = Client(api, data_dir=self.dir.name)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.dir.cleanup()


@pytest.fixture
def start_node(node_binary):
    started = []

    def start(*extra: str) -> Node:
        n = Node(node_binary, *extra)
        started.append(n)
        return n

    yield start
    for n in started:
        n.stop()


@pytest.fixture
def node(start_node) -> Client:
    return start_node().client
