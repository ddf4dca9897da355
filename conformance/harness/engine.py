"""One engine process as the SDK suites need it: `adze lite` on a temp data dir, or, when
ADZE_CONFORMANCE_STORE=postgres, `adze server` on a fresh PostgreSQL database (several
`Engine`s given the same `database_url` are replicas of one cluster).

The engine binds ports the harness picked (free at the time of asking); a restart reuses
them, so tokens minted before a `kill -9` still point at the right address afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from . import report

REPO_ROOT = Path(__file__).resolve().parents[2]


class EngineError(RuntimeError):
    pass


def store_kind() -> str:
    kind = os.environ.get("ADZE_CONFORMANCE_STORE", "sqlite")
    if kind not in ("sqlite", "postgres"):
        raise EngineError(f"ADZE_CONFORMANCE_STORE must be sqlite or postgres, not {kind!r}")
    return kind


def drop_database(url: str) -> None:
    """Drops a test database (best effort: a leftover costs disk, not correctness)."""
    server, _, name = url.rpartition("/")
    subprocess.run(
        ["psql", f"{server}/postgres", "-X", "-q", "-c", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'],
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def fresh_database_url() -> str:
    """A new empty database, from `adze-testdb` (which finds or starts a PostgreSQL)."""
    path = Path(os.environ.get("ADZE_TESTDB_BIN") or REPO_ROOT / "target" / "debug" / "adze-testdb")
    if not path.is_file():
        raise EngineError(f"adze-testdb not found at {path}: build it with `cargo build -p adze-testdb`")
    done = subprocess.run([str(path)], capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    url = done.stdout.decode().strip()
    if done.returncode != 0 or not url.startswith("postgres"):
        raise EngineError(
            f"adze-testdb exited {done.returncode} without a database URL\n"
            f"stderr: {done.stderr.decode(errors='replace')[-2000:]}"
        )
    return url


def adze_bin() -> Path:
    path = Path(os.environ.get("ADZE_BIN") or REPO_ROOT / "target" / "debug" / "adze")
    if not path.is_file() or not os.access(path, os.X_OK):
        raise EngineError(
            f"adze binary not found at {path}: build it with `cargo build -p adze` "
            "from the repository root or point ADZE_BIN at one"
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Engine:
    """`adze lite` with its stderr in `<workdir>/<name>.log`.

    heartbeat_timeout / listen_grace shorten worker-lost detection for tests that kill
    a worker; None leaves the engine's defaults (and its command line) alone.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        name: str = "engine",
        heartbeat_timeout: float | None = None,
        listen_grace: float | None = None,
        extra_args: tuple[str, ...] = (),
        store: str | None = None,
        database_url: str | None = None,
    ) -> None:
        self.name = name
        self.store = store or store_kind()
        self.database_url = database_url
        # A database made here is dropped at close; one given is the giver's to drop.
        self.owns_database = self.store == "postgres" and database_url is None
        if self.owns_database:
            self.database_url = fresh_database_url()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / f"{name}-data"
        self.log_path = self.workdir / f"{name}.log"
        self.heartbeat_timeout = heartbeat_timeout
        self.listen_grace = listen_grace
        self.extra_args = tuple(extra_args)
        self.grpc_port: int | None = None
        self.http_port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        report.register(self)

    # -- addresses ---------------------------------------------------------------------

    @property
    def grpc_addr(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    # -- lifecycle ---------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [
            str(adze_bin()),
            *self.store_args(),
            "--grpc-addr",
            self.grpc_addr,
            "--http-addr",
            f"127.0.0.1:{self.http_port}",
        ]
        if self.heartbeat_timeout is not None:
            cmd += ["--heartbeat-timeout", _secs(self.heartbeat_timeout)]
        if self.listen_grace is not None:
            cmd += ["--listen-grace", _secs(self.listen_grace)]
        return cmd + list(self.extra_args)

    def store_args(self) -> list[str]:
        if self.store == "postgres":
            # A replica restarted after kill -9 has a new identity and waits for its old
            # leases to expire: keep that short so restart tests do not wait 10 s.
            lease = [] if "--lease-ttl" in self.extra_args else ["--lease-ttl", "2"]
            return ["server", "--database-url", self.database_url, *lease]
        return ["lite", "--data-dir", str(self.data_dir)]

    def start(self, timeout: float = 60.0) -> "Engine":
        if self.running:
            raise EngineError(f"{self.name} is already running (pid {self.proc.pid})")
        fresh_ports = self.grpc_port is None
        for attempt in range(3):
            if fresh_ports:
                self.grpc_port, self.http_port = free_port(), free_port()
            self._spawn()
            try:
                self.wait_ready(timeout)
                return self
            except EngineError:
                log = report.tail(self.log_path, 30).lower()
                if fresh_ports and attempt < 2 and "in use" in log and not self.running:
                    continue  # lost the race for a port we picked: pick again
                raise
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        self.starts += 1
        cmd = self.command()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== harness: start #{self.starts}: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={**os.environ, "RUST_BACKTRACE": "1"},
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise EngineError(
                    f"{self.name} exited with code {code} before /api/ready answered 200\n"
                    f"{self.stderr_tail()}"
                )
            status, body = self.http_get("/api/ready", timeout=2.0)
            if status == 200:
                return
            last = f"status {status}: {body[:200]!r}"
            time.sleep(0.05)
        raise EngineError(
            f"{self.name} not ready after {timeout:.0f}s (last /api/ready: {last})\n"
            f"{self.stderr_tail()}"
        )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the crash the recovery tests simulate."""
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; a hang past `timeout` is an engine bug, reported as one."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
                raise EngineError(
                    f"{self.name} did not exit within {timeout:.0f}s of SIGTERM "
                    f"(killed)\n{self.stderr_tail()}"
                )
        return self.proc.returncode

    def restart(self, timeout: float = 60.0) -> "Engine":
        self.kill()
        return self.start(timeout)

    def close(self) -> None:
        """Teardown: SIGTERM, then SIGKILL after a short grace.

        How the engine shuts down is judged by the dedicated shutdown tests, not here:
        clients left connected by a test may hold streams open.
        """
        try:
            if self.running:
                self.stop(timeout=3)
        except EngineError:
            pass
        finally:
            report.unregister(self)
            if self.owns_database:
                drop_database(self.database_url)

    # -- talking to it -----------------------------------------------------------------

    def http_get(self, path: str, timeout: float = 5.0) -> tuple[int | None, str]:
        try:
            with urllib.request.urlopen(self.http_url + path, timeout=timeout) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as e:
            return None, str(e)

    def mint_token(
        self,
        *,
        data_dir: Path | None = None,
        tenant: str | None = None,
        grpc_broadcast_address: str | None = None,
        server_url: str | None = None,
    ) -> str:
        """`adze token create`; data_dir defaults to this engine's own."""
        if self.store == "postgres" and data_dir is None:
            store = ["--database-url", self.database_url]
        else:
            store = ["--data-dir", str(data_dir or self.data_dir)]
        cmd = [
            str(adze_bin()),
            "token",
            "create",
            *store,
            "--grpc-broadcast-address",
            grpc_broadcast_address or self.grpc_addr,
            "--server-url",
            server_url or self.http_url,
        ]
        if tenant:
            cmd += ["--tenant", tenant]
        done = subprocess.run(cmd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        out = done.stdout.decode(errors="replace")
        err = done.stderr.decode(errors="replace")
        lines = [line for line in out.splitlines() if line.strip()]
        if done.returncode != 0 or len(lines) != 1 or not lines[0].startswith("ey"):
            raise EngineError(
                f"`{' '.join(cmd)}` exited {done.returncode}; expected one JWT line on "
                f"stdout\nstdout: {out!r}\nstderr: {err[-2000:]}"
            )
        token = lines[0].strip()
        if token.count(".") != 2:
            raise EngineError(f"token create printed something that is not a JWT: {token!r}")
        return token

    def sdk_env(
        self,
        token: str,
        *,
        namespace: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> dict[str, str]:
        """The environment an SDK process needs to reach this engine."""
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("HATCHET_CLIENT_")
        }
        env.update(
            HATCHET_CLIENT_TOKEN=token,
            HATCHET_CLIENT_HOST_PORT=self.grpc_addr,
            HATCHET_CLIENT_SERVER_URL=self.http_url,
            HATCHET_CLIENT_TLS_STRATEGY="none",
            PYTHONUNBUFFERED="1",
        )
        if namespace:
            env["HATCHET_CLIENT_NAMESPACE"] = namespace
        env.update(extra or {})
        return env

    # -- reporting ---------------------------------------------------------------------

    def stderr_tail(self, lines: int = 80) -> str:
        return f"--- {self.name} stderr ({self.log_path}), last {lines} lines ---\n" + report.tail(
            self.log_path, lines
        )

    def report_sections(self) -> list[tuple[str, str]]:
        return [(f"{self.name} stderr (tail)", report.tail(self.log_path, 80))]


def _secs(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
