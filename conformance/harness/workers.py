"""Worker scripts run as subprocesses so a test can SIGKILL them.

Both SDK versions spawn a second process (the action listener, which holds the
ListenV2 stream and sends heartbeats). Each worker therefore gets its own session and
process group, and kill/stop signal the whole group: killing only the parent would leave
the listener heartbeating and the worker would never look lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from . import report
from .records import ENV_VAR as RECORDS_ENV_VAR
from .records import Records

CONFORMANCE_DIR = Path(__file__).resolve().parents[1]

# Logged (at debug level) by both SDKs once Register has answered with a worker id.
REGISTERED_LOG = "acquired action listener"


class WorkerError(RuntimeError):
    pass


class WorkerProcess:
    def __init__(
        self,
        script: Path,
        env: dict[str, str],
        workdir: Path,
        *,
        name: str = "worker",
        args: tuple[str, ...] = (),
        python: str = sys.executable,
    ) -> None:
        self.script = Path(script).resolve()
        self.name = name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{name}.out"
        self.records = Records(self.workdir / f"{name}.records.jsonl")
        pythonpath = [str(CONFORMANCE_DIR)] + [p for p in [env.get("PYTHONPATH")] if p]
        self.env = {
            **env,
            RECORDS_ENV_VAR: str(self.records.path),
            "PYTHONPATH": os.pathsep.join(pythonpath),
            "PYTHONUNBUFFERED": "1",
        }
        self.cmd = [python, "-u", str(self.script), *args]
        self.proc: subprocess.Popen[bytes] | None = None
        report.register(self)

    def start(self) -> "WorkerProcess":
        with open(self.log_path, "ab") as log:
            log.write(f"===== harness: {' '.join(self.cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if self.proc is None:
            raise WorkerError(f"{self.name} was never started")
        if self.proc.poll() is not None:
            raise WorkerError(
                f"{self.name} exited with code {self.proc.returncode}\n{self.output_tail()}"
            )

    def wait_registered(self, timeout: float = 60.0) -> "WorkerProcess":
        """Until the SDK logs that Register answered (its workflows are registered by then)."""
        self.records.wait_for(
            f"{self.name} to register with the engine (log '{REGISTERED_LOG}')",
            lambda recs: self.records.logs(REGISTERED_LOG),
            timeout,
            alive=self.check_alive,
        )
        return self

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def _signal_group(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the worker and its listener process at once."""
        self._signal_group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.running:
            self._signal_group(signal.SIGKILL)  # a leftover listener process, if any
            return
        self._signal_group(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        self._signal_group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def close(self) -> None:
        try:
            self.stop(timeout=5)
        finally:
            report.unregister(self)

    def output_tail(self, lines: int = 60) -> str:
        return f"--- {self.name} output ({self.log_path}) ---\n" + report.tail(self.log_path, lines)

    def report_sections(self) -> list[tuple[str, str]]:
        return [
            (f"{self.name} output (tail)", report.tail(self.log_path, 60)),
            (f"{self.name} records (tail)", self.records.report(40)),
        ]

