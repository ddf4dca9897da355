//! A task that does nothing but answer `{"ok": true}`: what runs per second measure.
//! Named like the conformance suite's Python `noop`.

use adze_sdk::{Context, Empty, Task, TaskError, Workflow};
use serde_json::{Value, json};

/// The workflow `noop` with its one task `noop`.
pub fn workflow() -> Workflow<Empty> {
    let mut workflow = Workflow::<Empty>::new("noop");
    workflow.add(Task::new("noop", |_: Empty, _ctx: Context| async {
        Ok::<Value, TaskError>(json!({ "ok": true }))
    }));
    workflow
}
