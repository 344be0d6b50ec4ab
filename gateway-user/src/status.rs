//! The daemon's status file, `<runtime dir>/status.json`: written atomically
//! (temp file + rename) at start and whenever something in it changes, read
//! by `edgegw status` without any network endpoint. Removed on exit.

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
};

use nix::{
    errno::Errno,
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde::{Deserialize, Serialize};

/// Where the status file lives unless `--runtime-dir` or `$EDGEGW_RUNTIME_DIR` say otherwise.
pub const DEFAULT_RUNTIME_DIR: &str = "/run/edgegw";
const STATUS_FILE: &str = "status.json";

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(
        "cannot write runtime directory {dir}: {source}; make it writable (ReadWritePaths= under systemd) or choose another with --runtime-dir"
    )]
    NotWritable {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "edgegw is not running: no status file in {dir}; start it with `edgegw run` (or pass the daemon's --runtime-dir)"
    )]
    NotRunning { dir: PathBuf },
    #[error("edgegw is not running: pid {pid} in {path} has exited")]
    Exited { pid: u32, path: PathBuf },
    #[error("cannot read {path}: {message}")]
    Unreadable { path: PathBuf, message: String },
}

/// The runtime directory: the flag, else `$EDGEGW_RUNTIME_DIR`, else /run/edgegw.
pub fn runtime_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("EDGEGW_RUNTIME_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RUNTIME_DIR))
}

/// Everything `edgegw status` shows that only the daemon knows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub version: String,
    /// Unix seconds.
    pub started_at: u64,
    /// "starting", "serving" or "draining".
    pub state: String,
    pub config: ConfigStatus,
    /// None when XDP is off.
    pub xdp: Option<XdpStatus>,
    pub listeners: Vec<ListenerStatus>,
    /// Result of the last configuration load, reload or sync.
    pub last_sync: SyncResult,
    pub log_level: String,
    /// The control plane sync, for a managed gateway.
    #[serde(default)]
    pub control_plane: Option<SyncView>,
    /// The Redis of cluster rate limits, when `[redis]` is configured.
    #[serde(default)]
    pub redis: Option<RedisView>,
    /// Backend pools and their members' state (refreshed every second).
    #[serde(default)]
    pub pools: Vec<PoolView>,
    /// The response cache, when a cache policy is in service.
    #[serde(default)]
    pub cache: Option<CacheView>,
    /// Request analytics: the outbox and what could not be sent.
    #[serde(default)]
    pub analytics: Option<AnalyticsView>,
    /// The OTLP export, when `[telemetry.otlp]` is configured.
    #[serde(default)]
    pub telemetry: Option<TelemetryView>,
}

/// The OTLP export `edgegw status` shows: what could not be sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelemetryView {
    pub endpoint: String,
    pub spans_exported: u64,
    /// Dropped because the export queue was full.
    pub spans_dropped: u64,
    /// Lost in exports that failed (collector down, slow or erroring).
    pub spans_failed: u64,
    pub metric_exports_failed: u64,
    pub last_error: Option<String>,
}

/// What `edgegw status` shows of the response cache (`policy/cache`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheView {
    pub memory_bytes: u64,
    pub memory_capacity_bytes: u64,
    pub memory_entries: u64,
    pub hits: u64,
    pub misses: u64,
    pub stores: u64,
    pub evictions: u64,
    pub bypassed: u64,
    /// Of `bypassed`: because Redis was down or hung.
    pub bypassed_redis_down: u64,
}

/// Pools as `edgegw status` and the heartbeat show them (shared with the
/// control plane, which shows what heartbeats report).
pub use gateway_model::pool_status::{MemberView, PoolView};

/// What `edgegw status` and `/metrics` show of the analytics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyticsView {
    pub period_secs: u64,
    pub outbox_dir: Option<String>,
    pub outbox_batches: u64,
    pub outbox_bytes: u64,
    pub outbox_max_bytes: u64,
    pub sent_batches: u64,
    pub duplicate_batches: u64,
    pub refused_batches: u64,
    pub dropped_batches: u64,
    pub last_error: Option<String>,
}

/// The Redis link `edgegw status` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisView {
    pub url: String,
    /// "connecting", "ok", or "fallback" (cluster limits count locally).
    pub state: String,
    /// Unix seconds since the state holds.
    pub since: u64,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConfigStatus {
    pub path: PathBuf,
    /// "file", "control-plane" or "backup".
    pub source: String,
    /// Content hash of the configuration in force (FNV-1a, hex).
    pub version: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct XdpStatus {
    pub iface: String,
    pub mode: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListenerStatus {
    pub name: String,
    pub addr: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SyncResult {
    /// Unix seconds.
    pub at: u64,
    pub ok: bool,
    pub message: String,
}

/// A stable short version of a configuration's text.
pub fn content_version(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// The daemon's side: owns the file and rewrites it on every change.
pub struct StatusFile {
    dir: PathBuf,
    status: Mutex<Status>,
    /// False when another live daemon owns the file: this one then keeps
    /// its status to itself rather than overwrite the other's.
    owner: bool,
}

impl StatusFile {
    /// Creates the runtime directory and writes the first status; fails if
    /// the directory is not writable. If another live daemon already
    /// publishes there, this one warns and does not publish.
    pub fn create(dir: &Path, status: Status) -> Result<StatusFile, StatusError> {
        let not_writable = |source| StatusError::NotWritable {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(not_writable)?;
        let other = read_file(&dir.join(STATUS_FILE))
            .ok()
            .filter(|o| o.pid != std::process::id() && pid_alive(o.pid));
        if let Some(other) = &other {
            tracing::warn!(
                other_pid = other.pid,
                dir = %dir.display(),
                "another edgegw publishes its status here; this one does not (give it its own --runtime-dir)"
            );
            // Still prove the directory is writable.
            let probe = dir.join(format!(".probe.{}", std::process::id()));
            std::fs::write(&probe, b"").map_err(not_writable)?;
            let _ = std::fs::remove_file(&probe);
        } else {
            write_atomically(dir, &status).map_err(not_writable)?;
        }
        Ok(StatusFile {
            dir: dir.to_path_buf(),
            status: Mutex::new(status),
            owner: other.is_none(),
        })
    }

    /// Applies `change` and rewrites the file.
    pub fn update(&self, change: impl FnOnce(&mut Status)) {
        let mut status = self.status.lock().expect("status lock");
        change(&mut status);
        if !self.owner {
            return;
        }
        if let Err(err) = write_atomically(&self.dir, &status) {
            tracing::warn!(dir = %self.dir.display(), error = %err, "cannot update the status file");
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl StatusFile {
    /// Records the outcome of a configuration reload (SIGHUP) or sync: on
    /// success the new content version, on failure the reason (the version in
    /// force stays).
    pub fn record_reload(&self, source: &str, config_text: Result<&[u8], String>) {
        let at = crate::clock::now_secs();
        self.update(|s| match config_text {
            Ok(text) => {
                s.config.source = source.into();
                s.config.version = content_version(text);
                s.last_sync = SyncResult {
                    at,
                    ok: true,
                    message: format!("reloaded from {source}"),
                };
            }
            Err(message) => {
                s.last_sync = SyncResult {
                    at,
                    ok: false,
                    message,
                }
            }
        });
    }
}

impl Drop for StatusFile {
    fn drop(&mut self) {
        let path = self.dir.join(STATUS_FILE);
        // Only our own: a daemon started meanwhile may have taken over.
        if self.owner && read_file(&path).is_ok_and(|s| s.pid == std::process::id()) {
            let _ = std::fs::remove_file(path);
            // Leave no empty directory behind (systemd removes its own anyway).
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

fn write_atomically(dir: &Path, status: &Status) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    text.push(b'\n');
    crate::files::write_atomically(&dir.join(STATUS_FILE), &text)
}

fn read_file(path: &Path) -> Result<Status, StatusError> {
    let text = std::fs::read(path).map_err(|e| StatusError::Unreadable {
        path: path.into(),
        message: e.to_string(),
    })?;
    serde_json::from_slice(&text).map_err(|e| StatusError::Unreadable {
        path: path.into(),
        message: e.to_string(),
    })
}

/// The CLI's side: the status of the daemon using `dir`, if it is alive.
pub fn read(dir: &Path) -> Result<Status, StatusError> {
    let path = dir.join(STATUS_FILE);
    if !path.exists() {
        return Err(StatusError::NotRunning { dir: dir.into() });
    }
    let status = read_file(&path)?;
    if !pid_alive(status.pid) {
        return Err(StatusError::Exited {
            pid: status.pid,
            path,
        });
    }
    Ok(status)
}

/// The one process a status file's pid names. kill(2) reads 0 as our own
/// process group and negative pids (a u32 above i32::MAX) as other groups:
/// a damaged file must not turn a probe or a signal into one of those.
fn process(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|&pid| pid > 0)
        .map(Pid::from_raw)
}

/// True if a process with this pid exists (no signal probes without sending).
pub fn pid_alive(pid: u32) -> bool {
    let Some(pid) = process(pid) else {
        return false;
    };
    matches!(kill(pid, None), Ok(()) | Err(Errno::EPERM))
}

/// Sends `signal` (a signal number) to the daemon `pid`.
pub fn signal(pid: u32, signal: i32) -> std::io::Result<()> {
    let pid = process(pid).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("pid {pid} does not name one process"),
        )
    })?;
    kill(pid, Signal::try_from(signal)?)?;
    Ok(())
}

/// The sync view `edgegw status` and `/readyz` show.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncView {
    /// Control plane base URL.
    pub url: String,
    /// Version of the bundle in force.
    pub version: Option<u64>,
    /// Where it came from: "control-plane" or "backup".
    pub source: String,
    /// Unix seconds of the last successful exchange with the control plane.
    pub last_sync_at: Option<u64>,
    /// The last failure to fetch or apply a bundle; None once one applied.
    pub last_sync_error: Option<String>,
    /// The control plane refuses this gateway's token (its message).
    pub token_error: Option<String>,
    /// Unix seconds of the last acknowledged heartbeat.
    pub last_heartbeat_at: Option<u64>,
    pub last_heartbeat_error: Option<String>,
}

impl SyncView {
    /// One line for `/readyz`.
    pub fn summary(&self) -> String {
        let version = self.version.map_or("none".to_string(), |v| v.to_string());
        match (&self.token_error, &self.last_sync_error) {
            (Some(token), _) => {
                format!("sync: token rejected: {token} (serving version {version})")
            }
            (None, Some(err)) => format!("sync: error: {err} (serving version {version})"),
            (None, None) => format!("sync: ok, version {version} from {}", self.source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pid: u32) -> Status {
        Status {
            pid,
            version: "0.1.0".into(),
            started_at: 1,
            state: "serving".into(),
            config: ConfigStatus {
                path: "/etc/edgegw/edgegw.toml".into(),
                source: "file".into(),
                version: content_version(b"x"),
            },
            xdp: None,
            listeners: vec![],
            last_sync: SyncResult {
                at: 1,
                ok: true,
                message: "loaded".into(),
            },
            log_level: "info".into(),
            control_plane: None,
            redis: None,
            pools: Vec::new(),
            cache: None,
            analytics: None,
            telemetry: None,
        }
    }

    #[test]
    fn written_file_reads_back_and_is_removed_on_drop() {
        let dir = std::env::temp_dir().join(format!("edgegw-status-{}", std::process::id()));
        let file = StatusFile::create(&dir, sample(std::process::id())).unwrap();
        file.update(|s| s.state = "draining".into());
        assert_eq!(read(&dir).unwrap().state, "draining");
        drop(file);
        assert!(matches!(read(&dir), Err(StatusError::NotRunning { .. })));
        assert!(!dir.exists(), "empty runtime directory left behind");
    }

    #[test]
    fn a_second_daemon_does_not_overwrite_a_live_owner() {
        let dir = std::env::temp_dir().join(format!("edgegw-status2-{}", std::process::id()));
        // pid 1 is always alive: it stands for the other daemon.
        let owner = StatusFile::create(&dir, sample(1)).unwrap();
        let second = StatusFile::create(&dir, sample(std::process::id())).unwrap();
        second.update(|s| s.state = "draining".into());
        drop(second);
        assert_eq!(read(&dir).unwrap().pid, 1);
        assert_eq!(read(&dir).unwrap().state, "serving");
        drop(owner); // not our pid: the file stays until its owner exits.
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_single_process_pids_are_probed_or_signalled() {
        assert!(pid_alive(std::process::id()));
        assert!(pid_alive(1), "pid 1 exists (EPERM counts as alive)");
        // 0 is our process group, u32 values above i32::MAX negative pids.
        for pid in [0, u32::MAX, i32::MAX as u32 + 1] {
            assert!(!pid_alive(pid), "pid {pid}");
            let err = signal(pid, Signal::SIGUSR2 as i32).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "pid {pid}");
        }
        // A number that is no signal is refused before kill(2) runs.
        let err = signal(std::process::id(), 12_345).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::errno::Errno::EINVAL as i32));
    }

    #[test]
    fn reloads_update_version_or_keep_it_with_the_reason() {
        let dir = std::env::temp_dir().join(format!("edgegw-status3-{}", std::process::id()));
        let file = StatusFile::create(&dir, sample(std::process::id())).unwrap();
        file.record_reload("file", Ok(b"new"));
        let s = read(&dir).unwrap();
        assert_eq!(s.config.version, content_version(b"new"));
        assert!(s.last_sync.ok);
        file.record_reload("file", Err("c.toml: xdp.mode: unknown".into()));
        let s = read(&dir).unwrap();
        assert_eq!(s.config.version, content_version(b"new"));
        assert!(!s.last_sync.ok);
        assert_eq!(s.last_sync.message, "c.toml: xdp.mode: unknown");
    }

    #[test]
    fn content_version_changes_with_content() {
        assert_eq!(content_version(b"a"), content_version(b"a"));
        assert_ne!(content_version(b"a"), content_version(b"b"));
        assert_eq!(content_version(b"").len(), 16);
    }
}
