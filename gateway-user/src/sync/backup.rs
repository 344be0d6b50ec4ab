//! Backups of applied bundles, for a start while the control plane is
//! unreachable.
//!
//! Each applied bundle is `bundle-<version>.json` in the backup directory:
//! a first line `sha256:<hex of the rest>`, then the bundle exactly as the
//! control plane served it. Written atomically (temp file in the same
//! directory, fsync, rename, fsync of the directory), so a crash leaves the
//! old generation or the new one, never half of one; the newest N are kept.
//! A truncated or tampered file fails its checksum and is skipped, loudly.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::files::write_atomically;

const PREFIX: &str = "bundle-";
const SUFFIX: &str = ".json";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("cannot write backup {path}: {source}; check that the backup_dir is writable")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "control_plane.backup_dir {dir} is not writable ({source}): without backups the gateway cannot start while the control plane is unreachable; make it writable (a read-write volume: podman -v NAME:{dir}, Kubernetes: readOnly: false; on a host: owned by the daemon's user) or set backup_dir to a writable directory"
    )]
    NotWritable {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Checks at startup that backups can be written to `dir` (creating it if
/// needed), so that a read-only volume is one clear error now rather than
/// a gateway that cannot start from its backup during the next outage.
pub fn check_writable(dir: &Path) -> Result<(), BackupError> {
    let probe = dir.join(format!(".writable.{}.tmp", std::process::id()));
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|source| BackupError::NotWritable {
            dir: dir.to_path_buf(),
            source,
        })
}

/// Stores the bundle `text` of `version` and keeps the newest `keep`.
pub fn store(dir: &Path, version: u64, text: &str, keep: usize) -> Result<PathBuf, BackupError> {
    let path = dir.join(format!("{PREFIX}{version}{SUFFIX}"));
    let sum = hex(&Sha256::digest(text.as_bytes()));
    let content = format!("sha256:{sum}\n{text}");
    write_atomically(&path, content.as_bytes()).map_err(|source| BackupError::Write {
        path: path.clone(),
        source,
    })?;
    for (_, old) in generations(dir).into_iter().skip(keep) {
        let _ = std::fs::remove_file(old);
    }
    Ok(path)
}

/// The backups in `dir`, newest version first.
pub fn generations(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name
                .strip_prefix(PREFIX)?
                .strip_suffix(SUFFIX)?
                .parse()
                .ok()?;
            Some((version, entry.path()))
        })
        .collect();
    out.sort_by_key(|g| std::cmp::Reverse(g.0));
    out
}

/// The bundle text of one backup, if its checksum holds.
pub fn read(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let (head, body) = text
        .split_once('\n')
        .ok_or("truncated: no checksum line".to_string())?;
    let want = head
        .strip_prefix("sha256:")
        .ok_or("no \"sha256:\" checksum line".to_string())?;
    if hex(&Sha256::digest(body.as_bytes())) != want {
        return Err("checksum mismatch (truncated or modified)".into());
    }
    Ok(body.to_string())
}

/// The newest backup that passes its checksum and `accept` (the gateway's
/// own validation), with its version; every rejected one is logged at
/// error level with the reason and what is used instead.
pub fn newest_valid<T>(
    dir: &Path,
    mut accept: impl FnMut(&str) -> Result<T, String>,
) -> Option<(u64, PathBuf, T)> {
    let all = generations(dir);
    for (i, (version, path)) in all.iter().enumerate() {
        let checked = read(path).and_then(|text| accept(&text));
        match checked {
            Ok(value) => return Some((*version, path.clone(), value)),
            Err(reason) => {
                let fallback = all
                    .get(i + 1)
                    .map(|(_, p)| format!("falling back to {}", p.display()))
                    .unwrap_or_else(|| "no older backup to fall back to".into());
                tracing::error!(
                    "backup {} is corrupt ({reason}); {fallback}",
                    path.display()
                );
            }
        }
    }
    None
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("edgegw-backup-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn an_unwritable_backup_dir_is_one_clear_error() {
        let d = dir("writable");
        check_writable(&d).unwrap();
        assert!(d.is_dir());
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            0,
            "probe left behind"
        );
        // A file where the directory should be: not writable as a directory.
        let file = d.join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = check_writable(&file).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "control_plane.backup_dir {} is not writable (",
                file.display()
            )) && err.contains("readOnly: false")
                && !err.contains('\n'),
            "{err}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn keeps_the_newest_generations_and_verifies_them() {
        let d = dir("keep");
        for v in [3, 10, 7, 12] {
            store(&d, v, &format!("{{\"version\": {v}}}"), 3).unwrap();
        }
        let versions: Vec<u64> = generations(&d).iter().map(|g| g.0).collect();
        assert_eq!(versions, [12, 10, 7]);
        assert_eq!(
            read(&d.join("bundle-12.json")).unwrap(),
            "{\"version\": 12}"
        );
        // No temp file is left behind.
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 3);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_corrupt_newest_falls_back_to_the_previous_generation() {
        let d = dir("corrupt");
        store(&d, 1, "one", 5).unwrap();
        store(&d, 2, "two", 5).unwrap();
        store(&d, 3, "three", 5).unwrap();
        let newest = d.join("bundle-3.json");
        let text = std::fs::read_to_string(&newest).unwrap();
        std::fs::write(&newest, &text[..text.len() - 2]).unwrap();
        // Version 2 passes its checksum but not the caller's validation.
        let got = newest_valid(&d, |t| {
            if t == "two" {
                Err("invalid".into())
            } else {
                Ok(t.to_string())
            }
        });
        assert_eq!(got.map(|g| (g.0, g.2)), Some((1, "one".to_string())));
        assert!(read(&newest).unwrap_err().contains("checksum mismatch"));
        std::fs::write(d.join("bundle-4.json"), "no checksum").unwrap();
        assert!(read(&d.join("bundle-4.json")).is_err());
        assert!(newest_valid(&dir("none"), |t| Ok::<_, String>(t.to_string())).is_none());
        let _ = std::fs::remove_dir_all(&d);
    }
}
