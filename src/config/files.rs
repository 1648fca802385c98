//! Sensu JSON config files: `-c FILE` and `-d DIR[,DIR]` (sensu-settings
//! `Loader#load_file` / `#load_directory`).
//!
//! Files are deep-merged in order: the config file, then each directory's `*.json`
//! files found recursively. Sensu globs in filesystem order; we sort, so two files that
//! set the same scalar give the same answer on every machine. Empty files are fine and
//! a UTF-8 byte-order mark is stripped; a file that is not valid JSON is fatal.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::ConfigError;

/// Read one config file. `Ok(None)` for an empty file.
pub fn read(path: &Path) -> Result<Option<Value>, ConfigError> {
    let bytes =
        std::fs::read(path).map_err(|e| ConfigError::File { path: path.to_path_buf(), problem: e.to_string() })?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ConfigError::File { path: path.to_path_buf(), problem: format!("invalid JSON: {e}") })?;
    if !value.is_object() {
        return Err(ConfigError::File { path: path.to_path_buf(), problem: "expected a JSON object".into() });
    }
    Ok(Some(value))
}

/// Every `*.json` file below `dir`, recursively, sorted by path.
pub fn json_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .map_err(|e| ConfigError::File { path: current.clone(), problem: e.to_string() })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
