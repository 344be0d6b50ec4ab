//! The on-disk outbox: one file per batch the control plane has not
//! accepted yet, named so that names sort oldest first, written
//! atomically (temp file, rename). Bounded in bytes: when a new batch
//! would exceed `max_bytes`, the oldest batches are dropped (and counted)
//! first. Nothing is lost within the bound, across restarts included.

use std::{
    fs, io,
    path::{Path, PathBuf},
    sync::Mutex,
};

use gateway_model::analytics::Batch;

pub struct Outbox {
    dir: PathBuf,
    max_bytes: u64,
    /// Serialises the roller's writes with the sender's deletes.
    lock: Mutex<()>,
}

/// What the outbox holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub batches: u64,
    pub bytes: u64,
}

impl Outbox {
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Outbox> {
        fs::create_dir_all(dir)?;
        Ok(Outbox {
            dir: dir.to_path_buf(),
            max_bytes,
            lock: Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The batch files, oldest first, with their sizes.
    fn files(&self) -> io::Result<Vec<(PathBuf, u64)>> {
        let mut files: Vec<(PathBuf, u64)> = fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| Some((e.path(), e.metadata().ok()?.len())))
            .collect();
        files.sort();
        Ok(files)
    }

    /// Writes `batch`; how many batches were dropped to stay in bounds
    /// (the new one too, if it alone is larger than the bound).
    pub fn push(&self, batch: &Batch) -> io::Result<u64> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let body = serde_json::to_vec(batch).expect("a batch serialises");
        // Start first (zero-padded): names sort by period, then id.
        let name = format!("{:012}-{}.json", batch.start, batch.id);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        fs::write(&tmp, &body)?;
        fs::rename(&tmp, self.dir.join(&name))?;
        let files = self.files()?;
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        let mut dropped = 0;
        for (path, len) in files {
            if total <= self.max_bytes {
                break;
            }
            fs::remove_file(&path)?;
            total -= len;
            dropped += 1;
        }
        Ok(dropped)
    }

    /// The oldest batch: its file and content.
    pub fn oldest(&self) -> io::Result<Option<(PathBuf, Vec<u8>)>> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        match self.files()?.into_iter().next() {
            Some((path, _)) => fs::read(&path).map(|body| Some((path, body))),
            None => Ok(None),
        }
    }

    /// Deletes a batch the control plane accepted or refused for good.
    pub fn remove(&self, path: &Path) -> io::Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn usage(&self) -> Usage {
        let files = self.files().unwrap_or_default();
        Usage {
            batches: files.len() as u64,
            bytes: files.iter().map(|f| f.1).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(start: i64, rows: usize) -> Batch {
        Batch {
            id: format!("i-{start}-1"),
            start,
            period_secs: 60,
            rows: vec![Default::default(); rows],
            ..Batch::default()
        }
    }

    #[test]
    fn batches_come_out_oldest_first_and_the_bound_drops_the_oldest() {
        let dir = std::env::temp_dir().join(format!("edgegw-outbox-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let size = serde_json::to_vec(&batch(60, 20)).unwrap().len() as u64;
        let outbox = Outbox::open(&dir, size * 3 + size / 2).unwrap();
        for start in [180, 60, 120] {
            assert_eq!(outbox.push(&batch(start, 20)).unwrap(), 0);
        }
        assert_eq!(outbox.usage().batches, 3);
        let (path, body) = outbox.oldest().unwrap().unwrap();
        let first: Batch = serde_json::from_slice(&body).unwrap();
        assert_eq!(first.start, 60);
        // A fourth exceeds the bound: the oldest goes, counted.
        assert_eq!(outbox.push(&batch(240, 20)).unwrap(), 1);
        assert!(!path.exists());
        assert_eq!(outbox.usage().batches, 3);
        outbox.remove(&outbox.oldest().unwrap().unwrap().0).unwrap();
        let next: Batch = serde_json::from_slice(&outbox.oldest().unwrap().unwrap().1).unwrap();
        assert_eq!(next.start, 180);
        // Reopened (a restart): the same batches.
        assert_eq!(Outbox::open(&dir, 1 << 20).unwrap().usage().batches, 2);
        fs::remove_dir_all(&dir).unwrap();
    }
}
