//! The node's ephemeral port range, which `[dos] unprotected_ports = "drop"`
//! lets replies reach.

use std::{
    ops::RangeInclusive,
    path::{Path, PathBuf},
};

/// Where the kernel keeps the node's ephemeral port range (per network
/// namespace; it applies to IPv6 too).
const EPHEMERAL_RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

#[derive(Debug, thiserror::Error)]
#[error("reading the ephemeral port range from {path}: {source}")]
pub struct EphemeralRangeError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The node's ephemeral port range, as this process's network namespace
/// has it.
pub fn ephemeral_ports() -> Result<RangeInclusive<u16>, EphemeralRangeError> {
    read_port_range(Path::new(EPHEMERAL_RANGE))
}

/// The port range in `path` ("32768\t60999").
fn read_port_range(path: &Path) -> Result<RangeInclusive<u16>, EphemeralRangeError> {
    let io = |source| EphemeralRangeError {
        path: path.into(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut bounds = text.split_whitespace().map(str::parse::<u16>);
    match (bounds.next(), bounds.next(), bounds.next()) {
        (Some(Ok(lo)), Some(Ok(hi)), None) if 0 < lo && lo <= hi => Ok(lo..=hi),
        _ => Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("expected two ports, found {:?}", text.trim()),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ephemeral_range_is_read_or_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("edgegw-range-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("range");
        for (text, want) in [
            ("32768\t60999\n", Some(32768..=60999)),
            ("1024 1024", Some(1024..=1024)),
            ("60999 32768", None),
            ("0 100", None),
            ("32768", None),
            ("a b", None),
            ("1 2 3", None),
        ] {
            std::fs::write(&file, text).unwrap();
            match (read_port_range(&file), want) {
                (Ok(r), Some(w)) => assert_eq!(r, w),
                (Err(e), None) => {
                    let e = e.to_string();
                    assert!(
                        e.contains("ephemeral port range") && e.contains("range"),
                        "{e}"
                    )
                }
                (got, want) => panic!("{text:?}: {got:?}, want {want:?}"),
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
        // The real one, as the daemon reads it.
        let real = ephemeral_ports().unwrap();
        assert!(!real.is_empty());
    }
}
