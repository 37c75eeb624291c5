//! Go's duration syntax (`300ms`, `1.5s`, `2m30s`, `1h`), which SCRC's `RUNNER_TIME_LIMIT` uses, so that an SCRC
//! deployment's environment keeps working. Negative durations are refused: no limit here can be negative.

use std::time::Duration;

/// Parses a Go duration string. A bare `0` is accepted, as in Go.
///
/// # Errors
/// A message saying what is wrong with `text`.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if text.starts_with('-') {
        return Err("a duration cannot be negative".into());
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit after {rest:?} (use ns, us, ms, s, m or h)"))?;
        let (number, after) = rest.split_at(number_len);
        let value: f64 = number.parse().map_err(|_| format!("{number:?} is not a number"))?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let seconds_per_unit = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("unknown unit {other:?} (use ns, us, ms, s, m or h)")),
        };
        total += value * seconds_per_unit;
        rest = after;
    }
    Duration::try_from_secs_f64(total).map_err(|_| "duration out of range".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let ms = |text| parse_go_duration(text).map(|d| d.as_millis());
        assert_eq!(ms("5s"), Ok(5000));
        assert_eq!(ms("2m30s"), Ok(150_000));
        assert_eq!(ms("1.5s"), Ok(1500));
        assert_eq!(ms("300ms"), Ok(300));
        assert_eq!(ms("1h"), Ok(3_600_000));
        assert_eq!(ms("0"), Ok(0));
        assert_eq!(ms("1500us"), Ok(1));
    }

    #[test]
    fn refuses_what_go_refuses_and_negative_values() {
        for bad in ["", "5", "5 s", "5x", "-1s", "s", "1.2.3s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
