//! A task: a typed `async fn(Input, Context) -> Result<Output, E>` with its options, and
//! the handle through which its output is read back in a typed way.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::context::Context;

/// How a task failed: a message for the run's error, and whether the engine may retry it.
///
/// Any `std::error::Error` converts into a retryable `TaskError`, so `?` works in tasks;
/// [`TaskError::non_retryable`] tells the engine not to spend the remaining retries.
pub struct TaskError {
    message: String,
    retryable: bool,
}

impl TaskError {
    /// A failure the engine retries if the task has retries left.
    pub fn new(message: impl Into<String>) -> Self {
        TaskError {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure that ends the task at once, whatever retries remain.
    pub fn non_retryable(message: impl Into<String>) -> Self {
        TaskError {
            message: message.into(),
            retryable: false,
        }
    }

    /// The message the run records.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the engine may retry the task.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for TaskError {
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message = format!("{message}: {cause}");
            source = cause.source();
        }
        TaskError::new(message)
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskError")
            .field("message", &self.message)
            .field("retryable", &self.retryable)
            .finish()
    }
}

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A task's body with its types erased: JSON input in, JSON output out.
pub(crate) type Handler =
    Arc<dyn Fn(Value, Context) -> BoxFuture<Result<Value, TaskError>> + Send + Sync>;

/// Names a task of a workflow and the type of its output, for
/// [`Context::parent_output`](crate::Context::parent_output) and
/// [`RunOutput::get`](crate::RunOutput::get).
pub struct TaskHandle<O> {
    name: String,
    output: PhantomData<fn() -> O>,
}

impl<O> TaskHandle<O> {
    /// The task's name within its workflow.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<O> Clone for TaskHandle<O> {
    fn clone(&self) -> Self {
        TaskHandle {
            name: self.name.clone(),
            output: PhantomData,
        }
    }
}

impl<O> fmt::Debug for TaskHandle<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskHandle({})", self.name)
    }
}

/// The per-task settings the engine supports today.
#[derive(Clone, Debug)]
pub(crate) struct TaskOptions {
    pub(crate) parents: Vec<String>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) schedule_timeout: Option<Duration>,
    pub(crate) retries: u32,
    pub(crate) slot_requests: BTreeMap<String, u32>,
}

/// A task of a workflow whose input is `I`, producing `O`. Add it with
/// [`Workflow::add`](crate::Workflow::add).
///
/// ```
/// use std::time::Duration;
/// use adze_sdk::{Context, Task, TaskError};
///
/// #[derive(serde::Deserialize)]
/// struct Order { id: u64 }
///
/// async fn charge(order: Order, _ctx: Context) -> Result<u64, TaskError> {
///     Ok(order.id)
/// }
///
/// let task = Task::new("charge", charge)
///     .timeout(Duration::from_secs(30))
///     .retries(3);
/// # let _ = task;
/// ```
pub struct Task<I, O> {
    pub(crate) name: String,
    pub(crate) options: TaskOptions,
    pub(crate) handler: Handler,
    types: PhantomData<fn(I) -> O>,
}

impl<I, O> Task<I, O>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + 'static,
{
    /// A task named `name` running `body`. By default it holds one `default` slot, may
    /// run 60 s (the engine's default) and is not retried.
    pub fn new<F, Fut, E>(name: impl Into<String>, body: F) -> Self
    where
        F: Fn(I, Context) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
        E: Into<TaskError>,
    {
        let body = Arc::new(body);
        let handler: Handler = Arc::new(move |input: Value, ctx: Context| {
            let body = body.clone();
            Box::pin(async move {
                let input: I = serde_json::from_value(input).map_err(|error| {
                    TaskError::non_retryable(format!(
                        "the run's input does not match the task's input type: {error}"
                    ))
                })?;
                let output = body(input, ctx).await.map_err(Into::into)?;
                serde_json::to_value(output).map_err(|error| {
                    TaskError::non_retryable(format!("the task's output is not JSON: {error}"))
                })
            })
        });
        Task {
            name: name.into(),
            options: TaskOptions {
                parents: Vec::new(),
                timeout: None,
                schedule_timeout: None,
                retries: 0,
                slot_requests: BTreeMap::new(),
            },
            handler,
            types: PhantomData,
        }
    }

    /// Runs only after `parent` has completed; its output is then available through
    /// [`Context::parent_output`](crate::Context::parent_output).
    pub fn parent<P>(mut self, parent: &TaskHandle<P>) -> Self {
        self.options.parents.push(parent.name.clone());
        self
    }

    /// How long one attempt may run, counted from its assignment to a worker. On expiry
    /// the task's [`Context::cancelled`](crate::Context::cancelled) fires and the attempt fails.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// How long the task may wait in the queue (recorded; the engine does not enforce it yet).
    pub fn schedule_timeout(mut self, timeout: Duration) -> Self {
        self.options.schedule_timeout = Some(timeout);
        self
    }

    /// How many times a failed attempt is retried.
    pub fn retries(mut self, retries: u32) -> Self {
        self.options.retries = retries;
        self
    }

    /// Asks for `units` of the worker's slot type `slot_type` instead of one `default`
    /// unit; several calls ask for several types at once.
    pub fn slot_request(mut self, slot_type: impl Into<String>, units: u32) -> Self {
        self.options.slot_requests.insert(slot_type.into(), units);
        self
    }

    pub(crate) fn handle(&self) -> TaskHandle<O> {
        TaskHandle {
            name: self.name.clone(),
            output: PhantomData,
        }
    }
}

/// Formats a duration the way the engine parses them (`"1500ms"`, `"30s"`).
pub(crate) fn duration_text(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_use_the_engines_units() {
        assert_eq!(duration_text(Duration::from_secs(90)), "90s");
        assert_eq!(duration_text(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn std_errors_become_retryable_task_errors_with_their_causes() {
        let error: TaskError = std::io::Error::other("disk full").into();
        assert!(error.is_retryable());
        assert_eq!(error.message(), "disk full");
        assert!(!TaskError::non_retryable("bad input").is_retryable());
    }
}
