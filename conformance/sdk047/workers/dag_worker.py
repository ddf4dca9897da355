"""A two-step DAG and a failing step in hatchet-sdk 0.47.1's class syntax."""

from hatchet_sdk import Context, Hatchet

from harness.records import capture_sdk_logs

hatchet = Hatchet(debug=True)
capture_sdk_logs()


@hatchet.workflow()
class DagFlow:
    @hatchet.step()
    def first(self, context: Context):
        return {"doubled": context.workflow_input()["n"] * 2}

    @hatchet.step(parents=["first"])
    def second(self, context: Context):
        seen = context.step_output("first")
        return {"from_first": seen["doubled"], "plus_one": seen["doubled"] + 1}


@hatchet.workflow()
class Failing:
    @hatchet.step()
    def explode(self, context: Context):
        raise RuntimeError("deliberate failure from a 0.47.1 step")


if __name__ == "__main__":
    worker = hatchet.worker("dag-worker", max_runs=4)
    worker.register_workflow(DagFlow())
    worker.register_workflow(Failing())
    worker.start()
