"""PostgreSQL for the replica and crash tests: queries through `psql`, and a private
cluster (initdb on a free port) for the tests that restart the database server itself,
so they never disturb the machine's shared PostgreSQL.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .engine import EngineError, free_port


def psql(url: str, sql: str, timeout: float = 30.0) -> list[list[str]]:
    """Rows of `sql` as lists of text fields."""
    done = subprocess.run(
        ["psql", url, "-X", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise EngineError(f"psql failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return [line.split("\t") for line in done.stdout.decode().splitlines() if line]


def lease_owner(url: str) -> str | None:
    """The replica holding the (only) tenant's live lease, if any."""
    rows = psql(url, "SELECT owner FROM tenant_leases WHERE expires_at > now()")
    return rows[0][0] if rows else None


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise EngineError(f"no PostgreSQL server binaries ({name}) under /usr/lib/postgresql")
    return found[-1]


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


class PrivateCluster:
    """A PostgreSQL server of this test's own, which it may stop and start."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: the postgres user cannot reach into root's 0700 dirs.
        self.root = Path(tempfile.mkdtemp(prefix="adze-private-pg-"))
        self.dir = self.root / "pgdata"
        self.log = self.root / "postgres.log"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> "PrivateCluster":
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        _run(_as_postgres([_bin("initdb"), "-D", str(self.dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"]))
        self.start()
        return self

    def _ctl(self, *args: str, check: bool = True) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
        _run(
            _as_postgres([_bin("pg_ctl"), "-D", str(self.dir), "-l", str(self.log), "-o", opts, "-w", *args]),
            check=check,
        )

    def start(self) -> None:
        self._ctl("start")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                psql(self.url, "SELECT 1", timeout=5)
                return
            except EngineError:
                time.sleep(0.1)
        raise EngineError(f"the private PostgreSQL on port {self.port} did not come up")

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast")

    def close(self) -> None:
        self._ctl("stop", "-m", "immediate", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def _run(cmd: list[str], check: bool = True) -> None:
    done = subprocess.run(cmd, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise EngineError(
            f"`{' '.join(cmd)}` exited {done.returncode}: {done.stderr.decode(errors='replace')[-2000:]}"
        )
