"""The adze-sdk example binaries (`examples/src/bin/`) as subprocesses.

conformance/run.sh builds them with `cargo build -p adze-examples`; ADZE_EXAMPLES_DIR
points elsewhere if they were built into another target directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from . import report
from .engine import REPO_ROOT


def example_bin(name: str) -> Path:
    directory = Path(os.environ.get("ADZE_EXAMPLES_DIR") or REPO_ROOT / "target" / "debug")
    path = directory / name
    if not path.is_file() or not os.access(path, os.X_OK):
        raise FileNotFoundError(
            f"example binary {name} not found at {path}: build it with "
            "`cargo build -p adze-examples` or point ADZE_EXAMPLES_DIR at it"
        )
    return path


def run_example(name: str, args: list[str], env: dict[str, str], timeout: float = 120) -> str:
    """Runs an example to completion and returns its stdout; a failure raises with stderr."""
    done = subprocess.run(
        [str(example_bin(name)), *args],
        env=env,
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    out = done.stdout.decode(errors="replace")
    if done.returncode != 0:
        raise AssertionError(
            f"{name} {' '.join(args)} exited {done.returncode}\nstdout: {out}\n"
            f"stderr: {done.stderr.decode(errors='replace')[-3000:]}"
        )
    return out


class RustProcess:
    """A long-running example (a worker), its stdout and stderr in `<workdir>/<name>.out`."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log_path = Path(workdir) / f"{name}.out"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(example_bin(name)), *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        report.register(self)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, count: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.output().count(text) >= count:
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}\n{self.output()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not print {text!r} {count}x in {timeout}s\n{self.output()[-3000:]}")

    def stop(self, timeout: float = 30) -> int:
        """SIGINT (the examples' Ctrl-C: drain, then exit) and wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        report.unregister(self)
        return self.proc.returncode

    def report_sections(self) -> list[tuple[str, str]]:
        return [(f"{self.name} output (tail)", report.tail(self.log_path, 60))]
