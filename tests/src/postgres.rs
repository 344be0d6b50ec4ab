//! A private PostgreSQL server for the control-plane tests: Debian's
//! binaries (`cargo xtask setup` installs `postgresql`), one server per
//! test binary, started on first use in a temporary directory owned by the
//! `postgres` user (PostgreSQL refuses to run as root), listening on a free
//! loopback port with its Unix socket in that directory. Each test gets
//! its own database (`create_database`), owned by a password-protected
//! role the control plane logs in as over TCP.
//!
//! Cleanup: when the test binary exits (libtest ends through `exit`), an
//! `atexit` handler stops the server and waits for it, then removes its
//! directory, so nothing is left once `cargo test` returns. If the binary
//! dies without running it (SIGKILL, abort), a small reaper process that
//! waits on a pipe whose only writer is the test binary sees the pipe
//! close and does the same.

use std::{
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Output, Stdio},
    sync::{
        Mutex, OnceLock,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use std::os::unix::process::CommandExt;

/// The role edgegw-cp logs in as.
pub const ROLE: &str = "edgegw";

/// The running server.
pub struct Server {
    /// Holds the server's directory: data, socket, log, password file.
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    uid: u32,
    gid: u32,
    /// The role's password, in a file edgegw-cp reads (`--db-password-file`).
    pub password_file: PathBuf,
    pub password: String,
    /// Kept so that the pipe closes only when this process ends.
    _reaper: Mutex<(Child, ChildStdin)>,
    server: Mutex<Child>,
}

/// One database on the server.
#[derive(Clone, Debug)]
pub struct Database {
    pub name: String,
    /// `postgres://edgegw@127.0.0.1:PORT/NAME` (no password: it comes from
    /// the password file or PGPASSWORD).
    pub url: String,
    /// The same over the server's Unix socket (`%2Ftmp%2F...:PORT`).
    pub socket_url: String,
}

static SERVER: OnceLock<Server> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// The server of this test binary, started on first use. Panics, naming
/// the fix, when PostgreSQL is not installed.
pub fn server() -> &'static Server {
    SERVER.get_or_init(Server::start)
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding the server.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/<version>/bin/postgres): run `cargo xtask setup`, which installs Debian's postgresql"
        )
    })
}

/// The numeric id of the `postgres` user (`id -u` / `id -g`).
fn postgres_id(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .expect("running id");
    assert!(
        out.status.success(),
        "no `postgres` user: run `cargo xtask setup` (Debian's postgresql package creates it)"
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Server {
    fn start() -> Server {
        let bin = bin_dir();
        let (uid, gid) = (postgres_id("-u"), postgres_id("-g"));
        let dir = std::env::temp_dir().join(format!("egw-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        // The reaper first, so that nothing started below outlives us.
        let reaper = reaper(&dir);
        let password = format!("pw{}x{}", std::process::id(), nanos());
        let password_file = dir.join("edgegw.password");
        std::fs::write(&password_file, format!("{password}\n")).unwrap();
        let data = dir.join("data");
        run(
            Command::new(bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth-local=peer",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-sync",
                ])
                .uid(uid)
                .gid(gid)
                .current_dir(&dir),
            "initdb",
        );
        // The superuser over the socket as the `postgres` user (peer); the
        // control plane's role with its password, over the socket too (a
        // control plane in a network namespace cannot reach 127.0.0.1).
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all postgres peer\nlocal all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        let log = dir.join("postgres.log");
        let mut attempt = 0;
        let (server, port) = loop {
            attempt += 1;
            let port = crate::process::free_port();
            let mut server = Command::new(bin.join("postgres"))
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-k"])
                .arg(&dir)
                .args([
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=300",
                ])
                .uid(uid)
                .gid(gid)
                .current_dir(&dir)
                .process_group(0)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("starting postgres");
            if wait_accepting(&bin, &dir, port, &mut server) {
                break (server, port);
            }
            assert!(
                attempt < 3,
                "postgres did not start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        let server = Server {
            dir,
            port,
            bin,
            uid,
            gid,
            password_file,
            password: password.clone(),
            _reaper: Mutex::new(reaper),
            server: Mutex::new(server),
        };
        register_stop_at_exit();
        server.psql(
            "postgres",
            &format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{password}'"),
        );
        server
    }

    /// Immediate shutdown (a throwaway server), waited for; the directory
    /// removed. Never panics: it runs at exit.
    fn stop(&self) {
        let mut server = self.server.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(None) = server.try_wait() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(server.id() as i32),
                nix::sys::signal::Signal::SIGQUIT,
            );
            let _ = server.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Runs `sql` as the superuser over the Unix socket; its output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = run(
            Command::new(self.bin.join("psql"))
                .arg("-h")
                .arg(&self.dir)
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    database,
                ])
                .args(["-v", "ON_ERROR_STOP=1", "-qtAc", sql])
                .uid(self.uid)
                .gid(self.gid)
                .current_dir(&self.dir),
            &format!("psql {sql:?}"),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A new, empty database owned by the control plane's role.
    pub fn create_database(&self) -> Database {
        let name = format!(
            "egw_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER {ROLE}"));
        let socket = self.dir.display().to_string().replace('/', "%2F");
        Database {
            url: format!("postgres://{ROLE}@127.0.0.1:{}/{name}", self.port),
            socket_url: format!("postgres://{ROLE}@{socket}:{}/{name}", self.port),
            name,
        }
    }
}

/// Digits that differ between runs, for the password.
fn nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

/// True once the server accepts connections; false if it exited (the port
/// was taken meanwhile).
fn wait_accepting(bin: &Path, dir: &Path, port: u16, server: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if server.try_wait().unwrap().is_some() {
            return false;
        }
        let ready = Command::new(bin.join("pg_isready"))
            .arg("-h")
            .arg(dir)
            .args(["-p", &port.to_string(), "-q"])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return true;
        }
        assert!(
            Instant::now() < deadline,
            "postgres not accepting after 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the reaper: on EOF of its stdin (this process gone) it stops
/// every postgres process whose data directory is `dir/data` (immediate
/// shutdown: a throwaway server) and removes `dir`.
fn reaper(dir: &Path) -> (Child, ChildStdin) {
    let script = r#"
        read _ignored
        pidfile="$1/data/postmaster.pid"
        if [ -f "$pidfile" ]; then
            pid=$(head -n 1 "$pidfile")
            kill -QUIT "$pid" 2>/dev/null
            while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
        fi
        rm -rf "$1"
    "#;
    let mut child = Command::new("sh")
        .args(["-c", script, "pg-reaper"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("starting the reaper (sh)");
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

extern "C" fn stop_at_exit() {
    if let Some(server) = SERVER.get() {
        server.stop();
    }
}

#[expect(
    unsafe_code,
    reason = "atexit(3): libtest offers no hook at the end of the test binary"
)]
fn register_stop_at_exit() {
    // SAFETY: `atexit` only records the function pointer; `stop_at_exit`
    // takes no arguments, touches only the initialised static and never
    // unwinds (`stop` ignores every error), as an exit handler must.
    let registered = unsafe { libc::atexit(stop_at_exit) };
    assert_eq!(registered, 0, "atexit failed: the reaper still cleans up");
}
