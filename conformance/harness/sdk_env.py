"""Point an SDK built in the test process at an engine.

Both SDK versions read their settings from `HATCHET_CLIENT_*` environment variables when a
client is built, so a client for a given engine is built inside this context.
"""

import contextlib
import os
from typing import Iterator

PREFIX = "HATCHET_CLIENT_"


@contextlib.contextmanager
def sdk_environment(env: dict[str, str]) -> Iterator[None]:
    """Replace the process's HATCHET_CLIENT_* variables with `env`'s for the block."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(PREFIX)}
    for k in saved:
        del os.environ[k]
    os.environ.update({k: v for k, v in env.items() if k.startswith(PREFIX)})
    try:
        yield
    finally:
        for k in [k for k in os.environ if k.startswith(PREFIX)]:
            del os.environ[k]
        os.environ.update(saved)
