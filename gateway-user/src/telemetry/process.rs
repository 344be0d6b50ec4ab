//! Process metrics in the Prometheus client libraries' names, read from
//! `/proc/self`, and `edgegw_build_info`.

use std::fmt::Write;

/// The commit the binary was built from (`build.rs`: `$EDGEGW_COMMIT`,
/// else `git rev-parse`, else "unknown").
pub const COMMIT: &str = env!("EDGEGW_COMMIT");

/// Appends `edgegw_build_info` and the `process_*` series to `out`.
pub fn render(out: &mut String) {
    let _ = write!(
        out,
        "# HELP edgegw_build_info The running binary's version and commit.\n# TYPE edgegw_build_info gauge\nedgegw_build_info{{version=\"{}\",commit=\"{COMMIT}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    let Some(p) = Process::read() else {
        return;
    };
    let _ = write!(
        out,
        "# HELP process_cpu_seconds_total User and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}\n\
         # HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}\n\
         # HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds {}\n\
         # HELP process_max_fds Maximum number of open file descriptors.\n# TYPE process_max_fds gauge\nprocess_max_fds {}\n\
         # HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {}\n",
        p.cpu_seconds, p.resident_bytes, p.open_fds, p.max_fds, p.start_time
    );
}

struct Process {
    cpu_seconds: f64,
    resident_bytes: u64,
    open_fds: usize,
    max_fds: u64,
    start_time: f64,
}

impl Process {
    fn read() -> Option<Process> {
        let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .filter(|t| *t > 0)? as f64;
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .filter(|p| *p > 0)? as u64;
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which may hold spaces: state is 3.
        let rest = &stat[stat.rfind(')')? + 2..];
        let field = |n: usize| rest.split_whitespace().nth(n - 3);
        let start: f64 = field(22)?.parse().ok()?;
        let rss: u64 = field(24)?.parse().ok()?;
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok())?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
        let max_fds = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(0, |(soft, _)| soft);
        // getrusage counts in microseconds; /proc's utime and stime in
        // clock ticks (10 ms), which reads 0 for a quiet gateway.
        let usage =
            nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).ok()?;
        let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        Some(Process {
            cpu_seconds: seconds(usage.user_time()) + seconds(usage.system_time()),
            resident_bytes: rss * page,
            open_fds,
            max_fds,
            start_time: boot + start / ticks,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_build_info_and_plausible_process_metrics() {
        let mut out = String::new();
        super::render(&mut out);
        assert!(out.contains("edgegw_build_info{version=\""), "{out}");
        let value = |name: &str| -> f64 {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} missing from\n{out}"))
                .parse()
                .unwrap()
        };
        assert!(value("process_resident_memory_bytes") > 1e5);
        assert!(value("process_open_fds") >= 3.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = value("process_start_time_seconds");
        assert!(
            start <= now + 1.0 && start > now - 86400.0 * 365.0,
            "{start}"
        );
        assert!(value("process_cpu_seconds_total") >= 0.0);
    }
}
