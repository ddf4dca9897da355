//! What a scenario measured, as JSON and as a Markdown table.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::ledger::Correctness;
use crate::stats::Percentiles;

/// One scenario's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    /// UTC, when the scenario ended.
    pub date: String,
    pub target: String,
    pub parameters: serde_json::Value,
    pub accepted: u64,
    /// Runs accepted per second while producing.
    pub accepted_per_s: f64,
    pub completed_tasks: u64,
    /// Task executions completed per second over the measured window (see `window`).
    pub completed_per_s: f64,
    /// What the completion rate is measured over.
    pub window: String,
    /// Creation stamp → root task start.
    pub event_to_start: Percentiles,
    /// Producer call → acknowledgement.
    pub trigger_ack: Percentiles,
    /// Release → next start on the same one-slot worker (the release scenario).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_to_start: Option<Percentiles>,
    /// Named durations in seconds (enqueue, restart to ready, …).
    pub phases: Vec<(String, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineFigures>,
    pub correctness: Correctness,
}

/// The engine process, when the bench started it.
#[derive(Debug, Clone, Serialize)]
pub struct EngineFigures {
    /// CPU over the measured window, in cores (1.0 = one core busy).
    pub cpu_cores: f64,
    pub cpu_seconds: f64,
    /// Engine CPU per completed task execution: steadier than rates on a shared machine.
    pub cpu_us_per_task: f64,
    pub peak_rss_mib: f64,
    /// Resident set at the scenario's most loaded moment (e.g. the whole backlog queued).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loaded_rss_mib: Option<f64>,
}

/// The figures every system in a comparison reports: what a peer script prints as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub system: String,
    pub count: u64,
    pub accepted_per_s: f64,
    pub completed_per_s: f64,
    pub event_to_start: Percentiles,
    pub ok: bool,
    #[serde(default)]
    pub missing: u64,
    #[serde(default)]
    pub duplicated: u64,
    #[serde(default)]
    pub notes: String,
}

impl Report {
    pub fn summary(&self, system: &str) -> Summary {
        Summary {
            system: system.to_string(),
            count: self.accepted,
            accepted_per_s: self.accepted_per_s,
            completed_per_s: self.completed_per_s,
            event_to_start: self.event_to_start.clone(),
            ok: self.correctness.ok,
            missing: self.correctness.missing,
            duplicated: self.correctness.duplicated,
            notes: String::new(),
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "### {} ({}, {})\n\n| figure | value |\n|---|---|\n",
            self.scenario, self.target, self.date
        );
        let mut row = |figure: &str, value: String| {
            let _ = writeln!(out, "| {figure} | {value} |");
        };
        row("runs accepted", self.accepted.to_string());
        row("accepted/s", format!("{:.0}", self.accepted_per_s));
        row("tasks completed", self.completed_tasks.to_string());
        row(
            &format!("completed tasks/s ({})", self.window),
            format!("{:.0}", self.completed_per_s),
        );
        row("event→start (ms)", latency(&self.event_to_start));
        row("trigger ack (ms)", latency(&self.trigger_ack));
        if let Some(release) = &self.release_to_start {
            row("release→next start (ms)", latency(release));
        }
        for (phase, seconds) in &self.phases {
            row(&format!("{phase} (s)"), format!("{seconds:.3}"));
        }
        if let Some(engine) = &self.engine {
            row(
                "engine CPU (cores)",
                format!("{:.2} ({:.1} s)", engine.cpu_cores, engine.cpu_seconds),
            );
            row(
                "engine CPU per task (µs)",
                format!("{:.0}", engine.cpu_us_per_task),
            );
            row(
                "engine peak RSS (MiB)",
                format!("{:.0}", engine.peak_rss_mib),
            );
            if let Some(loaded) = engine.loaded_rss_mib {
                row("engine RSS when loaded (MiB)", format!("{loaded:.0}"));
            }
        }
        let check = &self.correctness;
        row(
            "correctness",
            format!(
                "{} ({} of {} executions; {} missing, {} doubled, {} unknown)",
                if check.ok { "ok" } else { "FAILED" },
                check.executions,
                check.expected_executions,
                check.missing,
                check.duplicated,
                check.unknown
            ),
        );
        out
    }
}

fn latency(p: &Percentiles) -> String {
    if p.samples == 0 {
        return "–".into();
    }
    format!(
        "p50 {:.2} · p90 {:.2} · p99 {:.2} · max {:.2} (n={})",
        p.p50, p.p90, p.p99, p.max, p.samples
    )
}

/// Adze next to its peers, with Adze's ratio to each (above 1 is Adze ahead).
pub fn comparison_markdown(title: &str, adze: &Summary, peers: &[Summary]) -> String {
    let mut out = format!("### {title}\n\n| figure | {}", adze.system);
    for peer in peers {
        let _ = write!(out, " | {} | Adze ÷ {}", peer.system, peer.system);
    }
    out.push_str(" |\n|---|---");
    for _ in peers {
        out.push_str("|---|---");
    }
    out.push_str("|\n");
    // (figure, value, higher is better)
    type Figure = fn(&Summary) -> f64;
    let figures: [(&str, Figure, bool); 6] = [
        ("accepted/s", |s| s.accepted_per_s, true),
        ("completed tasks/s", |s| s.completed_per_s, true),
        ("event→start p50 (ms)", |s| s.event_to_start.p50, false),
        ("event→start p90 (ms)", |s| s.event_to_start.p90, false),
        ("event→start p99 (ms)", |s| s.event_to_start.p99, false),
        ("event→start max (ms)", |s| s.event_to_start.max, false),
    ];
    for (name, value, higher_is_better) in figures {
        let _ = write!(out, "| {name} | {}", number(value(adze)));
        for peer in peers {
            let (ours, theirs) = (value(adze), value(peer));
            let ratio = if higher_is_better {
                ours / theirs
            } else {
                theirs / ours
            };
            let _ = write!(out, " | {} | {}", number(theirs), ratio_text(ratio));
        }
        out.push_str(" |\n");
    }
    let _ = write!(out, "| correctness | {}", verdict(adze));
    for peer in peers {
        let _ = write!(out, " | {} | ", verdict(peer));
    }
    out.push_str(" |\n");
    out.push_str(
        "\nRatios are Adze's advantage: above 1× Adze is ahead (for latencies: peer ÷ Adze).\n",
    );
    out
}

fn number(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

fn ratio_text(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{ratio:.2}×")
    } else {
        "–".into()
    }
}

fn verdict(summary: &Summary) -> String {
    if summary.ok {
        "ok".into()
    } else {
        format!(
            "FAILED ({} missing, {} doubled)",
            summary.missing, summary.duplicated
        )
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_792), (2026, 12, 5));
    }
}
