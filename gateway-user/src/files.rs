//! Files written whole or not at all: a temporary file, synced, renamed
//! over the old one, and the directory synced, so that a crash or power
//! loss leaves the old file or the new one, never a torn one.

use std::{io::Write, path::Path};

/// Writes `bytes` to `path` atomically and durably (creating its directory).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
