//! The node's Redis, where cluster-scoped rate limits (`scope: cluster`)
//! lease their budget (`policy/cluster_limit.rs`) and external response
//! caches keep their entries (`policy/cache`; while Redis is down they
//! are bypassed). The settings come from
//! the node's `[redis]` or, without one, from the control plane's bundle;
//! `RedisSlot` holds the link in use, a build asks it for the link of its
//! settings (the same link while they are unchanged, a new one when they
//! change) and the commit of that build puts it in service.
//!
//! Failure handling: a command that errors or does not answer within
//! `command_timeout` marks Redis down at once. While it is down, no request
//! waits on Redis: cluster limits count on each gateway's local counters
//! (the documented fallback), a warning is logged (at most every 10 s),
//! the status file shows it (`edgegw status`) and
//! `edgegw_redis_up`/`edgegw_cluster_limit_fallback_total` report it. A
//! background task pings Redis with exponential backoff (0.25 s to 10 s)
//! and, once it answers, counting resumes in Redis.

use std::{
    path::Path,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use gateway_model::config::Redis as RedisConfig;
use redis::{
    IntoConnectionInfo,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use crate::status::{RedisView, StatusFile};

#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    #[error(
        "cannot read redis.password_file {path}: {source}; write the Redis password into that file, or remove password_file"
    )]
    PasswordFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("redis.password_file {path} is empty; write the Redis password into it")]
    EmptyPassword { path: String },
    #[error(
        "redis TLS files: {0}; give PEM files in redis.ca_file, client_cert_file and client_key_file"
    )]
    Tls(String),
    #[error(
        "cannot read redis.{field} {path}: {source}; give a readable PEM file, or remove {field}"
    )]
    TlsFile {
        field: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("redis.url \"{url}\": {message}; use redis://HOST:PORT or rediss://HOST:PORT")]
    Url { url: String, message: String },
}

/// Grants up to ARGV[1] calls of the window counted in KEYS[1], never past
/// the limit ARGV[2]; the first grant sets the key's expiry (ARGV[3] ms).
/// Returns {granted, used after the grant}.
const LEASE: &str = r"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local grant = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - used)
if grant <= 0 then return {0, used} end
local after = redis.call('INCRBY', KEYS[1], grant)
if after == grant then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return {grant, after}
";

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Warnings while Redis stays down are at most this often.
const LOG_EVERY_MS: u64 = 10_000;

/// Redis is down, erred or did not answer within the command timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

pub struct RedisLink {
    /// The settings it was made from: a build with the same keeps it.
    config: RedisConfig,
    url: String,
    manager: ConnectionManager,
    script: redis::Script,
    command_timeout: Duration,
    up: AtomicBool,
    /// Wakes the watcher when a command failed.
    failed: tokio::sync::Notify,
    /// Calls of cluster limits counted locally because Redis was down.
    fallback_calls: AtomicU64,
    /// Leases granted by Redis (one per share, not per call).
    leases: AtomicU64,
    /// Failed commands and pings.
    errors: AtomicU64,
    view: Mutex<RedisView>,
    status: OnceLock<Arc<StatusFile>>,
    /// Replaced by a link of other settings: its watcher stops.
    closed: AtomicBool,
}

impl RedisLink {
    /// The link described by `config`; connects in the background (call
    /// inside the node's tokio runtime). A Redis that is down at start is
    /// not an error: the gateway serves, counting locally, until it answers.
    pub fn start(config: &RedisConfig) -> Result<Arc<RedisLink>, RedisSetupError> {
        let mut info =
            config
                .url
                .as_str()
                .into_connection_info()
                .map_err(|e| RedisSetupError::Url {
                    url: config.url.clone(),
                    message: e.to_string(),
                })?;
        if let Some(path) = &config.password_file {
            let password = read_password(path)?;
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let client = if config.tls {
            redis::Client::build_with_tls(info, tls_files(config)?)
                .map_err(|e| RedisSetupError::Tls(e.to_string()))?
        } else {
            redis::Client::open(info).map_err(|e| RedisSetupError::Url {
                url: config.url.clone(),
                message: e.to_string(),
            })?
        };
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.command_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(2));
        let manager =
            ConnectionManager::new_lazy_with_config(client, manager_config).map_err(|e| {
                RedisSetupError::Url {
                    url: config.url.clone(),
                    message: e.to_string(),
                }
            })?;
        let link = Arc::new(RedisLink {
            config: config.clone(),
            url: config.url.clone(),
            manager,
            script: redis::Script::new(LEASE),
            command_timeout: config.command_timeout,
            up: AtomicBool::new(false),
            failed: tokio::sync::Notify::new(),
            fallback_calls: AtomicU64::new(0),
            leases: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            view: Mutex::new(RedisView {
                url: config.url.clone(),
                state: "connecting".into(),
                since: crate::clock::now_secs(),
                last_error: None,
            }),
            status: OnceLock::new(),
            closed: AtomicBool::new(false),
        });
        tokio::spawn(
            link.clone()
                .watch(config.connect_timeout + config.command_timeout),
        );
        Ok(link)
    }

    /// How long one command may take.
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// Whether cluster limits count in Redis now.
    pub fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Leases up to `want` calls of `limit` in the window counted under
    /// `key` (expiring after `ttl`): `(granted, used)`; `None` when Redis is
    /// down, errs or does not answer within the command timeout.
    pub async fn lease(
        &self,
        key: &str,
        want: u64,
        limit: u64,
        ttl: Duration,
    ) -> Option<(u64, u64)> {
        if !self.up() {
            return None;
        }
        let mut conn = self.manager.clone();
        let mut call = self.script.key(key);
        call.arg(want).arg(limit).arg(ttl.as_millis() as u64);
        let answer = tokio::time::timeout(
            self.command_timeout,
            call.invoke_async::<(u64, u64)>(&mut conn),
        )
        .await;
        match answer {
            Ok(Ok(granted)) => {
                self.leases.fetch_add(1, Ordering::Relaxed);
                Some(granted)
            }
            Ok(Err(e)) if !e.is_timeout() => {
                self.down(e.to_string());
                None
            }
            // The connection manager's response timeout is the same one.
            Ok(Err(_)) | Err(_) => {
                self.down(format!(
                    "no answer within {} ms (redis.command_timeout_ms)",
                    self.command_timeout.as_millis()
                ));
                None
            }
        }
    }

    /// `GET key` for the response cache: `Err` when Redis is down, errs or
    /// does not answer in time (the caller bypasses the cache).
    pub async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, Unavailable> {
        self.command(redis::cmd("GET").arg(key)).await
    }

    /// `SET key value PX ttl`; `false` when Redis could not store it.
    pub async fn set_bytes(&self, key: &str, value: &[u8], ttl: Duration) -> bool {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key)
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        self.command::<()>(&cmd).await.is_ok()
    }

    /// `DEL key`; `false` when Redis could not be asked.
    pub async fn delete(&self, key: &str) -> bool {
        self.command::<()>(redis::cmd("DEL").arg(key)).await.is_ok()
    }

    /// One command, within the command timeout; a failure marks Redis
    /// down (no later request waits on it until a ping succeeds).
    async fn command<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, Unavailable> {
        if !self.up() {
            return Err(Unavailable);
        }
        let mut conn = self.manager.clone();
        let answer =
            tokio::time::timeout(self.command_timeout, cmd.query_async::<T>(&mut conn)).await;
        match answer {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if !e.is_timeout() => {
                self.down(e.to_string());
                Err(Unavailable)
            }
            Ok(Err(_)) | Err(_) => {
                self.down(format!(
                    "no answer within {} ms (redis.command_timeout_ms)",
                    self.command_timeout.as_millis()
                ));
                Err(Unavailable)
            }
        }
    }

    /// One call of a cluster limit counted locally (Redis down).
    pub fn count_fallback(&self) {
        self.fallback_calls.fetch_add(1, Ordering::Relaxed);
    }

    fn down(&self, error: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if self.up.swap(false, Ordering::AcqRel) {
            self.set_view("fallback", Some(error.clone()));
            tracing::error!(
                url = %self.url,
                %error,
                "Redis failed: cluster rate limits now count locally on this gateway (each gateway admits up to the limit) and external response caches are bypassed until Redis answers again; check that Redis runs and [redis] url"
            );
            self.failed.notify_one();
        }
    }

    /// Out of service (its settings were replaced): the watcher ends and
    /// the link is dropped once the last gateway that used it is.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.up.store(false, Ordering::Release);
        self.failed.notify_one();
    }

    /// Pings while Redis is down, with backoff; waits for a failure
    /// while it is up; ends when the link is closed.
    async fn watch(self: Arc<Self>, ping_timeout: Duration) {
        let mut backoff = Duration::ZERO;
        let mut last_log = 0u64;
        let mut first = true;
        while !self.closed.load(Ordering::Acquire) {
            if self.up() {
                self.failed.notified().await;
                backoff = MIN_BACKOFF;
                last_log = crate::clock::now_secs() * 1000;
                continue;
            }
            tokio::time::sleep(backoff).await;
            if self.closed.load(Ordering::Acquire) {
                break;
            }
            let mut conn = self.manager.clone();
            let ping = tokio::time::timeout(
                ping_timeout,
                redis::cmd("PING").query_async::<String>(&mut conn),
            )
            .await;
            let error = match ping {
                Ok(Ok(_)) => {
                    self.set_view("ok", None);
                    self.up.store(true, Ordering::Release);
                    tracing::info!(url = %self.url, "Redis answers: cluster rate limits count in Redis");
                    first = false;
                    continue;
                }
                Ok(Err(e)) if !e.is_timeout() => e.to_string(),
                Ok(Err(_)) | Err(_) => {
                    format!("no answer within {} ms", ping_timeout.as_millis())
                }
            };
            self.errors.fetch_add(1, Ordering::Relaxed);
            self.set_view("fallback", Some(error.clone()));
            let now = crate::clock::now_secs() * 1000;
            if first || now.saturating_sub(last_log) >= LOG_EVERY_MS {
                tracing::error!(
                    url = %self.url,
                    %error,
                    retry_in_ms = backoff.max(MIN_BACKOFF).as_millis() as u64,
                    "Redis unreachable: cluster rate limits count locally on this gateway; check that Redis runs and [redis] url, password_file"
                );
                last_log = now;
                first = false;
            }
            backoff = (backoff * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
        }
    }

    /// Changes the view (not after close: the link in service owns the
    /// status entry); written to the status file under the view's lock,
    /// so that `publish_to` never misses a change.
    fn set_view(&self, state: &str, error: Option<String>) {
        let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        if view.state != state {
            view.state = state.into();
            view.since = crate::clock::now_secs();
        }
        if error.is_some() {
            view.last_error = error;
        }
        if let Some(status) = self
            .status
            .get()
            .filter(|_| !self.closed.load(Ordering::Acquire))
        {
            let published = view.clone();
            status.update(|s| s.redis = Some(published));
        }
    }

    /// From now on, changes are written to `status` (`edgegw status`).
    pub fn publish_to(&self, status: Arc<StatusFile>) {
        let view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        let published = view.clone();
        status.update(|s| s.redis = Some(published));
        let _ = self.status.set(status);
    }

    /// Prometheus lines.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "# HELP edgegw_redis_up Whether cluster rate limits count in Redis (0: local fallback).\n# TYPE edgegw_redis_up gauge\nedgegw_redis_up {}\n\
             # HELP edgegw_cluster_limit_fallback_total Calls of cluster rate limits counted locally because Redis was down.\n# TYPE edgegw_cluster_limit_fallback_total counter\nedgegw_cluster_limit_fallback_total {}\n\
             # HELP edgegw_redis_leases_total Budget shares leased from Redis by cluster rate limits.\n# TYPE edgegw_redis_leases_total counter\nedgegw_redis_leases_total {}\n\
             # HELP edgegw_redis_errors_total Redis commands and pings that failed or timed out.\n# TYPE edgegw_redis_errors_total counter\nedgegw_redis_errors_total {}\n",
            u8::from(self.up()),
            self.fallback_calls.load(Ordering::Relaxed),
            self.leases.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        );
    }
}

/// The link in service, if the node has a Redis (`[redis]` or the
/// bundle's `redis`), replaced when a committed build brings other settings.
#[derive(Default)]
pub struct RedisSlot {
    current: Mutex<Option<Arc<RedisLink>>>,
    status: OnceLock<Arc<StatusFile>>,
}

impl RedisSlot {
    /// The link for `config`: the one in service when its settings are the
    /// same (its connection and state carry over), else a new one, which
    /// serves once `install`ed.
    pub fn link_for(
        &self,
        config: Option<&RedisConfig>,
    ) -> Result<Option<Arc<RedisLink>>, RedisSetupError> {
        let Some(config) = config else {
            return Ok(None);
        };
        if let Some(link) = self.current().as_ref().filter(|l| l.config == *config) {
            return Ok(Some(link.clone()));
        }
        RedisLink::start(config).map(Some)
    }

    /// Puts `link` in service; the one it replaces is closed.
    pub fn install(&self, link: Option<Arc<RedisLink>>) {
        let mut current = self.current();
        let same = match (&*current, &link) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            return;
        }
        if let Some(old) = current.take() {
            old.close();
        }
        match &link {
            Some(new) => {
                tracing::info!(url = %new.url, "cluster rate limits count in this Redis");
                if let Some(status) = self.status.get() {
                    new.publish_to(status.clone());
                }
            }
            None => {
                if let Some(status) = self.status.get() {
                    status.update(|s| s.redis = None);
                }
            }
        }
        *current = link;
    }

    /// A link made by `link_for` that will not serve (its build failed);
    /// the one in service is left alone.
    pub fn discard(&self, link: &Arc<RedisLink>) {
        if !self
            .current()
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, link))
        {
            link.close();
        }
    }

    /// The link in service.
    pub fn get(&self) -> Option<Arc<RedisLink>> {
        self.current().clone()
    }

    /// From now on, the link in service reports to `status`.
    pub fn publish_to(&self, status: Arc<StatusFile>) {
        if let Some(link) = self.get() {
            link.publish_to(status.clone());
        }
        let _ = self.status.set(status);
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Option<Arc<RedisLink>>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The CA and client certificate files of a `rediss://` link; without
/// `ca_file`, the redis crate trusts the system's CA certificates
/// (rustls-native-certs), as the backends do.
fn tls_files(config: &RedisConfig) -> Result<redis::TlsCertificates, RedisSetupError> {
    let read = |field: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| RedisSetupError::TlsFile {
            field,
            path: path.display().to_string(),
            source,
        })
    };
    let client_tls = match &config.client_cert {
        Some((cert, key)) => Some(redis::ClientTlsConfig {
            client_cert: read("client_cert_file", cert)?,
            client_key: read("client_key_file", key)?,
        }),
        None => None,
    };
    Ok(redis::TlsCertificates {
        client_tls,
        root_cert: match &config.ca_file {
            Some(path) => Some(read("ca_file", path)?),
            None => None,
        },
    })
}

fn read_password(path: &Path) -> Result<String, RedisSetupError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| RedisSetupError::PasswordFile {
        path: shown.clone(),
        source,
    })?;
    let password = text.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        return Err(RedisSetupError::EmptyPassword { path: shown });
    }
    Ok(password.to_string())
}
