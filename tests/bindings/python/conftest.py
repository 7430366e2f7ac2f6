"""Fixtures for the Python bindings tests: the generated module and a real
`mpaka serve` on a free port of 127.0.0.1.

The bindings come from `scripts/bindings` (build/bindings/python, or
$MPAKA_BINDINGS); the server binary from $MPAKA_BIN (default
target/debug/mpaka). Missing either is a failure that says what to run,
never a skip.
"""

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BINDINGS = Path(os.environ.get("MPAKA_BINDINGS", ROOT / "build" / "bindings" / "python"))
MPAKA_BIN = Path(os.environ.get("MPAKA_BIN", ROOT / "target" / "debug" / "mpaka"))
PROJECT = "rusizi-bukavu"


@pytest.fixture(scope="session")
def mpaka():
    if not (BINDINGS / "mpaka_ffi.py").exists():
        pytest.fail(f"no generated Python bindings in {BINDINGS}: run scripts/bindings first")
    sys.path.insert(0, str(BINDINGS))
    import mpaka_ffi

    return mpaka_ffi


class Server:
    def __init__(self, data_dir):
        if not MPAKA_BIN.exists():
            pytest.fail(f"no mpaka binary at {MPAKA_BIN}: cargo build -p mpaka-cli, or set MPAKA_BIN")
        self.log = open(data_dir.parent / "server.log", "w")
        self.process = subprocess.Popen(
            [str(MPAKA_BIN), "serve", "--addr", "127.0.0.1:0", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env={**os.environ, "RUST_LOG": "warn", "MPAKA_REQUESTS_PER_MINUTE": "100000"},
        )
        first = self.process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+", first)
        if not match:
            self.process.kill()
            pytest.fail(f"mpaka serve did not print its address: {first!r}")
        self.url = match.group(0)
        self.admin_token = None
        for line in self.process.stdout:
            token = re.search(r"mpk_[A-Za-z0-9_-]+", line)
            if token:
                self.admin_token = token.group(0)
                break
        assert self.admin_token, "first start prints the admin token"

    def api(self, path, body):
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.admin_token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    def enrollment_code(self, username, role):
        self.api(f"/v1/projects/{PROJECT}/users", {"username": username, "role": role})
        return self.api(f"/v1/projects/{PROJECT}/enrollments", {"username": username})["code"]

    def stop(self):
        self.process.kill()
        self.process.wait()
        self.log.close()


@pytest.fixture
def server(tmp_path):
    server = Server(tmp_path / "mpaka-data")
    yield server
    server.stop()
