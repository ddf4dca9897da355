"""A hatchet-sdk 1.43.1 worker serving one group of defs.py's workflows.

Usage: worker.py general|one_slot|lost|replicas   (ADZE_SLOTS overrides the slot count)
"""

import os
import sys

from hatchet_sdk import Hatchet

from harness.records import capture_sdk_logs

import defs

GROUPS = {"general": 100, "one_slot": 1, "lost": 2, "replicas": 20}

hatchet = Hatchet()
capture_sdk_logs()
workflows = defs.define(hatchet)

if __name__ == "__main__":
    group = sys.argv[1]
    slots = int(os.environ.get("ADZE_SLOTS", GROUPS[group]))
    worker = hatchet.worker(
        f"adze-conformance-{group}",
        slots=slots,
        workflows=getattr(workflows, group)(),
    )
    worker.start()
