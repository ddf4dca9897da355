//! The workflow of Hatchet's manual-slot-release page, in Rust: on `user:create`, a
//! resource-intensive part that holds the worker's slot, then `release_slot()`, then a
//! light part during which the next run may already start on the same one-slot worker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use adze_sdk::{Context, Task, TaskError, TaskHandle, Workflow};
use serde::{Deserialize, Serialize};

/// The event key that starts a run.
pub const EVENT: &str = "user:create";

/// The event's payload (any fields are accepted; `user` is shown in the output).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UserCreated {
    /// Who was created.
    #[serde(default)]
    pub user: String,
}

/// What the step returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Always `"success"`.
    pub status: String,
}

/// How long each part takes, and whether the slot is released between them.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// The resource-intensive part, holding the slot.
    pub heavy: Duration,
    /// The light tail.
    pub light: Duration,
    /// Whether to call `release_slot()` after the heavy part.
    pub release: bool,
}

impl Default for Shape {
    /// The page's shape: ten seconds of heavy work, then release, then five light ones.
    fn default() -> Self {
        Shape {
            heavy: Duration::from_secs(10),
            light: Duration::from_secs(5),
            release: true,
        }
    }
}

/// A moment in a step's life, reported to the [`Observer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The step started (the heavy part begins).
    Started,
    /// The heavy part is over; the slot is about to be released.
    Releasing,
    /// The light part begins.
    Light,
    /// The step is about to return.
    Finished,
}

/// Told about every phase of every run, with the run id and when it happened.
pub type Observer = Arc<dyn Fn(&str, Phase, Instant) + Send + Sync>;

/// Prints the phases the way the page's example does.
pub fn printing_observer() -> Observer {
    Arc::new(|run_id, phase, _| match phase {
        Phase::Started => println!("{run_id}: RESOURCE INTENSIVE PROCESS"),
        Phase::Releasing => println!("{run_id}: releasing the slot"),
        Phase::Light => println!("{run_id}: NON RESOURCE INTENSIVE PROCESS"),
        Phase::Finished => println!("{run_id}: done"),
    })
}

/// The workflow `user-workflow` with its one step, `step1`.
pub fn workflow(shape: Shape, observer: Observer) -> (Workflow<UserCreated>, TaskHandle<Status>) {
    let mut workflow = Workflow::<UserCreated>::new("user-workflow").on_event(EVENT);
    let step = workflow.add(Task::new(
        "step1",
        move |_user: UserCreated, ctx: Context| {
            let observer = observer.clone();
            async move {
                let run = ctx.workflow_run_id().to_string();
                observer(&run, Phase::Started, Instant::now());
                tokio::time::sleep(shape.heavy).await;
                if shape.release {
                    observer(&run, Phase::Releasing, Instant::now());
                    // Release the slot after the resource-intensive part, so that other
                    // steps can run on this worker.
                    ctx.release_slot().await?;
                }
                observer(&run, Phase::Light, Instant::now());
                tokio::time::sleep(shape.light).await;
                observer(&run, Phase::Finished, Instant::now());
                Ok::<_, TaskError>(Status {
                    status: "success".into(),
                })
            }
        },
    ));
    (workflow, step)
}
