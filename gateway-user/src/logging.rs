//! Daemon logs, on stderr.
//!
//! - Format: human-readable when stderr is a terminal, JSON lines otherwise;
//!   `EDGEGW_LOG_FORMAT=json|human` forces one.
//! - Under journald (`$JOURNAL_STREAM` names our stderr) lines carry no
//!   timestamp: the journal stamps each line itself.
//! - Level: `EDGEGW_LOG` (a level or `tracing` filter directives, default
//!   `info`) at start; at runtime `edgegw log-level LEVEL` writes the new
//!   filter to `<runtime dir>/log-level` and sends SIGUSR2, and the daemon
//!   swaps the filter in without restarting.

use std::{io::IsTerminal, os::unix::fs::MetadataExt, sync::Mutex};

use tracing_subscriber::{
    EnvFilter, Layer, Registry, layer::SubscriberExt, reload, util::SubscriberInitExt,
};

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error(
        "invalid log level \"{0}\": use off, error, warn, info, debug, trace or directives such as \"info,edgegw=debug\""
    )]
    InvalidFilter(String),
    #[error("EDGEGW_LOG_FORMAT=\"{0}\" is not a log format; use json or human")]
    InvalidFormat(String),
    #[error("a logger is already installed in this process")]
    AlreadyInstalled,
    #[error("the logger is gone: cannot change the level")]
    Gone,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

/// Parses a level or filter directives strictly: a bare word must be a level
/// (EnvFilter alone would take a typo for a target name).
pub fn parse_filter(text: &str) -> Result<EnvFilter, LoggingError> {
    let text = text.trim();
    let invalid = || LoggingError::InvalidFilter(text.to_string());
    if text.is_empty() {
        return Err(invalid());
    }
    for directive in text.split(',') {
        let level = directive.rsplit('=').next().unwrap_or_default();
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(invalid());
        }
    }
    EnvFilter::try_new(text).map_err(|_| invalid())
}

/// The format chosen from `EDGEGW_LOG_FORMAT` and whether stderr is a terminal.
pub fn choose_format(
    forced: Option<&str>,
    stderr_is_terminal: bool,
) -> Result<Format, LoggingError> {
    match forced {
        Some("json") => Ok(Format::Json),
        Some("human") => Ok(Format::Human),
        Some(other) => Err(LoggingError::InvalidFormat(other.into())),
        None if stderr_is_terminal => Ok(Format::Human),
        None => Ok(Format::Json),
    }
}

/// True if `$JOURNAL_STREAM` ("DEV:INODE") is our stderr.
fn stderr_is_journal() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    value == format!("{}:{}", meta.dev(), meta.ino())
}

/// Changes the installed filter at runtime.
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    current: Mutex<String>,
}

impl LogControl {
    /// The filter in force, as text.
    pub fn current(&self) -> String {
        self.current.lock().expect("log level lock").clone()
    }

    /// Validates `text` and swaps it in.
    pub fn set(&self, text: &str) -> Result<(), LoggingError> {
        let filter = parse_filter(text)?;
        self.handle.reload(filter).map_err(|_| LoggingError::Gone)?;
        *self.current.lock().expect("log level lock") = text.trim().to_string();
        Ok(())
    }
}

/// Installs the process-wide logger.
pub fn init() -> Result<LogControl, LoggingError> {
    let level = std::env::var("EDGEGW_LOG").unwrap_or_else(|_| "info".into());
    let filter = parse_filter(&level)?;
    let terminal = std::io::stderr().is_terminal();
    let format = choose_format(std::env::var("EDGEGW_LOG_FORMAT").ok().as_deref(), terminal)?;
    let timestamps = !stderr_is_journal();

    let (filter, handle) = reload::Layer::new(filter);
    type Inner = tracing_subscriber::layer::Layered<reload::Layer<EnvFilter, Registry>, Registry>;
    let output: Box<dyn Layer<Inner> + Send + Sync> = match (format, timestamps) {
        (Format::Human, true) => Box::new(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(terminal),
        ),
        (Format::Human, false) => Box::new(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .without_time(),
        ),
        (Format::Json, true) => Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_writer(std::io::stderr),
        ),
        (Format::Json, false) => Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .without_time()
                .with_writer(std::io::stderr),
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .map_err(|_| LoggingError::AlreadyInstalled)?;
    Ok(LogControl {
        handle,
        current: Mutex::new(level.trim().to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_levels_or_directives() {
        for good in ["info", "DEBUG", "warn,edgegw=trace", "edgegw::proxy=debug"] {
            assert!(parse_filter(good).is_ok(), "{good}");
        }
        for bad in ["", "verbose", "inf", "edgegw=loud", "info,"] {
            let err = parse_filter(bad).unwrap_err().to_string();
            assert!(err.contains("use off, error"), "{bad}: {err}");
        }
    }

    #[test]
    fn json_unless_on_a_terminal_or_forced() {
        assert_eq!(choose_format(None, true).unwrap(), Format::Human);
        assert_eq!(choose_format(None, false).unwrap(), Format::Json);
        assert_eq!(choose_format(Some("json"), true).unwrap(), Format::Json);
        assert_eq!(choose_format(Some("human"), false).unwrap(), Format::Human);
        assert!(choose_format(Some("xml"), false).is_err());
    }
}
