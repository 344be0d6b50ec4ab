//! `target/dist/SHA256SUMS`: the SHA-256 of every release artefact in
//! target/dist (tarballs, image archives, Debian packages), in the format
//! `sha256sum -c SHA256SUMS` checks. Rewritten whole by each packaging
//! command, so it always lists exactly the artefacts present.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use anyhow::Context;
use sha2::{Digest, Sha256};

pub const FILE: &str = "SHA256SUMS";

/// Artefacts are files whose names end in one of these.
const ARTEFACTS: [&str; 3] = [".tar.gz", ".tar", ".deb"];

/// Moves each finished artefact (written under a temporary name) to its
/// name in `dir` and rewrites `dir/SHA256SUMS`, holding a lock on
/// `dir/.lock` throughout: packaging commands running at once (the tests
/// do) never list a half-written file or a hash of a file since replaced.
pub fn publish(dir: &Path, moves: &[(PathBuf, PathBuf)]) -> anyhow::Result<PathBuf> {
    let lock_path = dir.join(".lock");
    let lock = std::fs::File::create(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    for (from, to) in moves {
        std::fs::rename(from, to)
            .with_context(|| format!("renaming {} to {}", from.display(), to.display()))?;
    }
    write(dir)
}

/// Rewrites `dir/SHA256SUMS` and returns its path.
fn write(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| ARTEFACTS.iter().any(|ext| n.ends_with(ext)))
        .collect();
    names.sort();
    let mut text = String::new();
    for name in &names {
        text.push_str(&format!("{}  {name}\n", sha256(&dir.join(name))?));
    }
    // Renamed into place: a reader never sees half a file.
    let path = dir.join(FILE);
    let tmp = dir.join(format!(".{FILE}.{}", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn sha256(path: &Path) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
