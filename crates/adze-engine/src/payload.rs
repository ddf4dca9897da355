//! The action payload a worker receives with a task, in the shape Hatchet's SDKs parse:
//! `{"input": {..}, "parents": {"task": output}, "overrides": {}, "user_data": {},
//! "step_run_errors": {}, "triggered_by": "manual" | "event", "triggers": {}}`.

use serde_json::{Map, Value, json};

/// Builds the payload from the run's input, the outputs of the task's parents and, for
/// an on-failure task, the errors of the tasks that failed (`ctx.task_run_errors`).
pub fn action_payload<'a>(
    input: &str,
    parents: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    errors: impl IntoIterator<Item = (&'a str, &'a str)>,
    triggered_by_event: bool,
) -> String {
    let parents: Map<String, Value> = parents
        .into_iter()
        .map(|(name, output)| (name.to_string(), parse_or_null(output)))
        .collect();
    let errors: Map<String, Value> = errors
        .into_iter()
        .map(|(name, error)| (name.to_string(), Value::String(error.to_string())))
        .collect();
    json!({
        "input": parse_or_null(Some(input)),
        "parents": parents,
        "overrides": {},
        "user_data": {},
        "step_run_errors": errors,
        "triggered_by": if triggered_by_event { "event" } else { "manual" },
        "triggers": {},
    })
    .to_string()
}

/// Inputs and outputs were validated as JSON when accepted; a stored value that no
/// longer parses is passed on as null rather than failing the task.
fn parse_or_null(text: Option<&str>) -> Value {
    text.and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_input_and_parent_outputs() {
        let payload = action_payload(
            "{\"a\":1}",
            [("first", Some("{\"b\":2}"))],
            [("second", "boom")],
            true,
        );
        let value: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(value["input"]["a"], 1);
        assert_eq!(value["parents"]["first"]["b"], 2);
        assert_eq!(value["triggered_by"], "event");
        assert!(value["overrides"].is_object());
        assert_eq!(value["step_run_errors"]["second"], "boom");
    }
}
