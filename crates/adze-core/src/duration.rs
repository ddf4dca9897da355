//! Durations as the SDKs write them: Go-style strings such as `"30s"`, `"5m"`, `"1h"`,
//! `"1h30m"` or `"500ms"`. A bare number is taken as seconds, as Hatchet does.

use std::time::Duration;

/// The longest duration accepted: a year. Deadlines are instants, and an absurd duration
/// must be refused here rather than overflow one later.
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// Parses a duration string, or says why it is not one.
pub fn parse(text: &str) -> Result<Duration, String> {
    let duration = parse_unbounded(text)?;
    if duration > MAX {
        return Err(format!(
            "{text:?} is longer than the longest allowed duration (8760h)"
        ));
    }
    Ok(duration)
}

fn parse_unbounded(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(|| format!("{text:?} has a number without a unit (use s, m or h)"))?;
        if digits == 0 {
            return Err(format!(
                "{text:?} is not a duration such as \"30s\", \"5m\" or \"1h\""
            ));
        }
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?} has a malformed number"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            unit => {
                return Err(format!(
                    "{text:?} has an unknown unit {unit:?} (use ms, s, m or h)"
                ));
            }
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(number * seconds_per_unit)
            .map_err(|_| format!("{text:?} is out of range"))?;
    }
    Ok(total)
}

/// Writes a duration the way the SDKs do: `"30s"`, `"5m"`, `"1h30m"`, `"500ms"`.
pub fn format(duration: Duration) -> String {
    let millis = duration.as_millis();
    if !millis.is_multiple_of(1000) {
        return format!("{millis}ms");
    }
    let seconds = millis / 1000;
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut text = String::new();
    for (value, unit) in [(hours, "h"), (minutes, "m"), (seconds, "s")] {
        if value > 0 {
            text.push_str(&format!("{value}{unit}"));
        }
    }
    if text.is_empty() { "0s".into() } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sdk_formats() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn formats_as_it_parses() {
        for text in ["30s", "5m", "1h", "1h30m", "500ms", "0s", "1m5s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }

    #[test]
    fn names_what_is_wrong() {
        assert!(parse("").is_err());
        assert!(parse("soon").unwrap_err().contains("soon"));
        assert!(parse("5x").unwrap_err().contains("unknown unit"));
        assert!(parse("5m3").unwrap_err().contains("without a unit"));
        assert!(
            parse("9999999999h")
                .unwrap_err()
                .contains("longest allowed")
        );
        assert!(parse("1e300s").is_err());
    }
}
