//! The `[catalog]` section: where the API-management catalog lives.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CatalogSection {
    /// The catalog file (YAML); a relative path is relative to the
    /// directory of this configuration file.
    file: PathBuf,
}

impl CatalogSection {
    pub(super) fn validate(&self) -> Result<PathBuf, String> {
        if self.file.as_os_str().is_empty() {
            return Err("catalog.file: empty; give the path of the catalog YAML file".into());
        }
        Ok(self.file.clone())
    }
}

/// `file` as seen from the directory of the configuration file at `config`.
pub(super) fn resolve(file: &Path, config: &Path) -> PathBuf {
    match config.parent() {
        Some(dir) if file.is_relative() => dir.join(file),
        _ => file.to_path_buf(),
    }
}
