"""A hatchet-sdk 1.43.1 worker serving one group of failure_defs.py's workflows.

Usage: failure_worker.py failures|one_slot
"""

import sys

from hatchet_sdk import Hatchet

from harness.records import capture_sdk_logs

import failure_defs

SLOTS = {"failures": 100, "one_slot": 1}

hatchet = Hatchet()
capture_sdk_logs()
workflows = failure_defs.define(hatchet)

if __name__ == "__main__":
    group = sys.argv[1]
    worker = hatchet.worker(
        f"adze-failures-{group.replace('_', '-')}",
        slots=SLOTS[group],
        workflows=getattr(workflows, group)(),
    )
    worker.start()
