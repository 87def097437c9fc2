//! Paths to the sample events and test images the project ships.

use std::path::PathBuf;

pub fn events_dir() -> PathBuf {
    crate::workspace_root().join("events")
}

pub fn event(function: &str, name: &str) -> String {
    let path = events_dir().join(function).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
