"""Fixtures and reporting shared by conformance/sdk047 and conformance/sdk143.

Fixtures:
- `engine`: one `adze lite` per test module (default flags) with a token minted for it
- `make_engine(**flags)`: a fresh engine for this test only (kill/restart tests, short
  heartbeat timeouts); stopped at teardown
- `make_worker(script, ...)`: a worker subprocess using this venv's python; killed at
  teardown
- `namespace`: a unique HATCHET_CLIENT_NAMESPACE per test, so tests sharing an engine
  never see each other's workflows or events

A failing test's report gets a section per live engine (stderr tail) and worker (output
and records tail).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from . import measurements, report
from .engine import Engine
from .workers import WorkerProcess


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for obj in report.live():
            for title, text in obj.report_sections():
                rep.sections.append((title, text))


def pytest_terminal_summary(terminalreporter) -> None:
    lines = measurements.this_run()
    if lines:
        terminalreporter.section("measurements (not asserted)")
        for line in lines:
            terminalreporter.write_line(line)


class EngineUnderTest:
    """An engine plus the token the suite uses for it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.token = engine.mint_token()

    def env(self, namespace: str | None = None, token: str | None = None, **extra: str) -> dict[str, str]:
        return self.engine.sdk_env(token or self.token, namespace=namespace, extra=extra)

    def __getattr__(self, name: str):
        return getattr(self.engine, name)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineUnderTest]:
    eng = Engine(tmp_path_factory.mktemp("engine"))
    try:
        eng.start()
        yield EngineUnderTest(eng)
    finally:
        eng.close()


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[Callable[..., EngineUnderTest]]:
    made: list[Engine] = []

    def factory(name: str = "engine", **flags) -> EngineUnderTest:
        eng = Engine(tmp_path / name, name=name, **flags)
        made.append(eng)
        eng.start()
        return EngineUnderTest(eng)

    yield factory
    for eng in made:
        eng.close()


@pytest.fixture
def make_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    made: list[WorkerProcess] = []

    def factory(script: Path, env: dict[str, str], name: str = "worker", args: tuple[str, ...] = ()) -> WorkerProcess:
        w = WorkerProcess(script, env, tmp_path / "workers", name=name, args=args)
        made.append(w)
        return w.start()

    yield factory
    for w in made:
        w.close()


@pytest.fixture
def namespace() -> str:
    return f"t{uuid.uuid4().hex[:10]}"
