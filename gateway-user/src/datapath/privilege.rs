//! Checking, before touching anything, that this process may load and
//! attach XDP programs; and, when the kernel refuses, saying what to change
//! where the daemon runs: on a host, in a container (podman, Docker), or in
//! a Kubernetes pod.

use std::path::Path;

use super::DatapathError;

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// The effective capability set of this process, from /proc/self/status.
fn effective_caps() -> Option<u64> {
    let hex = status_field("CapEff:")?;
    u64::from_str_radix(&hex, 16).ok()
}

/// A field of /proc/self/status.
fn status_field(name: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim().to_string())
}

/// True if a seccomp filter is installed on this process (mode 2), as
/// container runtimes and systemd's SystemCallFilter do.
fn seccomp_filtered() -> bool {
    status_field("Seccomp:").as_deref() == Some("2")
}

/// True inside a container: podman writes /run/.containerenv, podman,
/// systemd-nspawn and LXC set `container`, and Kubernetes sets
/// KUBERNETES_SERVICE_HOST in every pod. (Not /.dockerenv: hosts made from
/// Docker images keep it on their root.)
pub fn in_container() -> bool {
    Path::new("/run/.containerenv").exists()
        || std::env::var_os("container").is_some()
        || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
}

fn has_xdp_caps(caps: u64) -> bool {
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    has(CAP_NET_ADMIN) && (has(CAP_BPF) || has(CAP_SYS_ADMIN))
}

/// Fails with one clear error unless the process has CAP_NET_ADMIN and
/// CAP_BPF (or CAP_SYS_ADMIN, which implies it on older kernels).
pub fn check() -> Result<(), DatapathError> {
    let Some(caps) = effective_caps() else {
        return Ok(()); // cannot tell; the syscalls will say.
    };
    if has_xdp_caps(caps) {
        Ok(())
    } else {
        Err(not_permitted("attaching XDP"))
    }
}

/// The error for a refused XDP operation, with the fix for where this
/// process runs.
pub fn not_permitted(action: &'static str) -> DatapathError {
    let caps_held = effective_caps().is_some_and(has_xdp_caps);
    DatapathError::NotPermitted {
        action,
        fix: fix(in_container(), caps_held, seccomp_filtered()),
    }
}

fn fix(container: bool, caps_held: bool, seccomp: bool) -> String {
    const OFF: &str = "or set xdp.mode = \"off\" to run the proxy without XDP";
    match (container, caps_held && seccomp) {
        (true, true) => format!(
            "the capabilities are held but a seccomp filter refuses bpf(): the container runtime's default profile allows it only with CAP_SYS_ADMIN (podman before 4.4, containerd before 1.7); run the container with --security-opt seccomp=unconfined (Kubernetes: securityContext.seccompProfile.type: Unconfined) or a profile that allows bpf, {OFF}"
        ),
        (true, false) => format!(
            "start the container with --cap-add=BPF,PERFMON,NET_ADMIN (Kubernetes: securityContext.capabilities.add: [BPF, PERFMON, NET_ADMIN]; SYS_ADMIN instead of BPF and PERFMON on kernels before 5.8), not --privileged, {OFF}"
        ),
        (false, true) => format!(
            "the capabilities are held but a seccomp filter refuses bpf(): allow it (systemd: SystemCallFilter=bpf, as the shipped unit does), {OFF}"
        ),
        (false, false) => {
            "run as root or grant CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN (CAP_SYS_ADMIN also mounts bpffs)".into()
        }
    }
}

/// The fix when /sys/fs/bpf is no bpffs and mounting one failed.
pub fn bpffs_fix(root: &str) -> String {
    if in_container() {
        format!(
            "{root} in this container is not the host's BPF filesystem: mount it into the container (on the host `mount -t bpf bpf {root}`, then podman run -v {root}:{root}; Kubernetes: a hostPath volume at {root}), so that XDP state outlives the container"
        )
    } else {
        format!("mount it with `mount -t bpf bpf {root}` as root")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fix_names_the_flags_of_where_the_daemon_runs() {
        let host = fix(false, false, false);
        assert!(host.starts_with("run as root or grant CAP_BPF"), "{host}");
        let container = fix(true, false, true);
        assert!(
            container.contains("--cap-add=BPF,PERFMON,NET_ADMIN")
                && container.contains("capabilities.add")
                && container.contains("not --privileged"),
            "{container}"
        );
        let seccomp = fix(true, true, true);
        assert!(
            seccomp.contains("seccomp=unconfined") && seccomp.contains("seccompProfile"),
            "{seccomp}"
        );
        assert!(fix(false, true, true).contains("SystemCallFilter=bpf"));
        // Capabilities held and no filter: nothing in the way that we know
        // of, so the host's general advice.
        assert_eq!(fix(false, true, false), host);
        for text in [host, container, seccomp] {
            assert!(!text.contains('\n'));
        }
    }
}
