//! Durations as operators write them: "90s", "10m", "1h", "2d".

use std::time::Duration;

/// Longest accepted duration (a year): keeps expiries far from overflow.
const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("\"{s}\" is not a duration such as \"90s\", \"10m\", \"1h\" or \"2d\"");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(bad());
    }
    // All digits: a parse failure can only be an overflow.
    let n: u64 = num
        .parse()
        .map_err(|_| format!("\"{s}\": the duration must be at most 366d"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86400),
        _ => return Err(bad()),
    };
    match secs.map(Duration::from_secs) {
        Some(d) if d.is_zero() => Err(format!("\"{s}\": the duration must be at least 1s")),
        Some(d) if d <= MAX => Ok(d),
        _ => Err(format!("\"{s}\": the duration must be at most 366d")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_errors() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172800)));
        for bad in [
            "",
            "10",
            "m",
            "1x",
            "-1h",
            "1.5h",
            "0s",
            "99999999999999999999d",
            "400d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
