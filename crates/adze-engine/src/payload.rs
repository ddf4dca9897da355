//! The action payload a worker receives with a task, in the shape Hatchet's SDKs parse:
//! `{"input": {..}, "parents": {"task": output}, "overrides": {}, "user_data": {},
//! "step_run_errors": {}, "triggered_by": "manual" | "event", "triggers": {}}`.
//!
//! Built by splicing the stored JSON texts into the frame rather than parsing them into
//! values and serializing them again: this runs for every task start, on the tenant
//! actor's thread.

use serde::de::IgnoredAny;

/// Builds the payload from the run's input, the outputs of the task's parents and, for
/// an on-failure task, the errors of the tasks that failed (`ctx.task_run_errors`).
pub fn action_payload<'a>(
    input: &str,
    parents: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    errors: impl IntoIterator<Item = (&'a str, &'a str)>,
    triggered_by_event: bool,
) -> String {
    let mut payload = String::with_capacity(input.len() + 160);
    payload.push_str("{\"input\":");
    payload.push_str(json_or_null(Some(input)));
    payload.push_str(",\"parents\":{");
    for (index, (name, output)) in parents.into_iter().enumerate() {
        if index > 0 {
            payload.push(',');
        }
        push_string(&mut payload, name);
        payload.push(':');
        payload.push_str(json_or_null(output));
    }
    payload.push_str("},\"overrides\":{},\"user_data\":{},\"step_run_errors\":{");
    for (index, (name, error)) in errors.into_iter().enumerate() {
        if index > 0 {
            payload.push(',');
        }
        push_string(&mut payload, name);
        payload.push(':');
        push_string(&mut payload, error);
    }
    payload.push_str("},\"triggered_by\":");
    payload.push_str(if triggered_by_event {
        "\"event\""
    } else {
        "\"manual\""
    });
    payload.push_str(",\"triggers\":{}}");
    payload
}

/// Appends `text` as a JSON string.
fn push_string(payload: &mut String, text: &str) {
    payload.push_str(&serde_json::to_string(text).expect("a string always serializes"));
}

/// Inputs and outputs were validated as JSON when accepted; a stored value that no
/// longer parses is passed on as null rather than failing the task. Checking costs no
/// allocation: the text is read, not built into a value.
fn json_or_null(text: Option<&str>) -> &str {
    match text {
        Some(text) if serde_json::from_str::<IgnoredAny>(text).is_ok() => text,
        _ => "null",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

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

    #[test]
    fn broken_texts_become_null_and_names_are_escaped() {
        let parents = [("a\"b", Some("{oops")), ("second", None)];
        let payload = action_payload("not json", parents, [], false);
        let value: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(value["input"], Value::Null);
        assert_eq!(value["parents"]["a\"b"], Value::Null);
        assert_eq!(value["parents"]["second"], Value::Null);
        assert_eq!(value["triggered_by"], "manual");
    }
}
