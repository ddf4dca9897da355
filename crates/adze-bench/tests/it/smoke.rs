use std::path::PathBuf;
use std::process::Command;

/// The `adze` binary the smoke run starts: `ADZE_BIN`, or the one built next to this
/// test's target directory (`cargo build -p adze`, which scripts/test.sh runs first).
fn adze_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("ADZE_BIN") {
        return PathBuf::from(path);
    }
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_adze-bench"));
    let binary = bench.with_file_name("adze");
    assert!(
        binary.exists(),
        "no adze binary at {}: run `cargo build -p adze` first or set ADZE_BIN",
        binary.display()
    );
    binary
}

#[test]
fn every_scenario_runs_each_task_exactly_once() {
    let output = Command::new(env!("CARGO_BIN_EXE_adze-bench"))
        .args(["--format", "json", "smoke", "--adze"])
        .arg(adze_binary())
        .output()
        .expect("running adze-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "adze-bench smoke failed:\n{stderr}"
    );
    let reports: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("adze-bench prints JSON");
    let reports = reports.as_array().expect("a list of reports");
    let scenarios: Vec<&str> = reports
        .iter()
        .map(|report| report["scenario"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        scenarios,
        ["steady", "dag", "fanout", "backlog", "release", "restart"]
    );
    for report in reports {
        let check = &report["correctness"];
        assert_eq!(check["ok"], true, "{}: {check}", report["scenario"]);
        assert_eq!(check["executions"], check["expected_executions"]);
        assert!(check["expected_executions"].as_u64().unwrap_or(0) > 0);
    }
    // Printed, never asserted: the numbers of a debug build on a shared machine.
    for report in reports {
        println!(
            "MEASURE: smoke {} completed/s {:.0}",
            report["scenario"], report["completed_per_s"]
        );
    }
}
