//! Reading scenario files, within limits: a scenario is a small text file,
//! so asyncsim reads regular files only (a folder, a pipe or a device such
//! as `/dev/zero` is refused before it is opened) and at most
//! [`MAX_SCENARIO_BYTES`], so no input can make it read forever or fill
//! the memory.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;

/// The largest scenario file asyncsim reads: 16 MiB.
pub const MAX_SCENARIO_BYTES: u64 = 16 * 1024 * 1024;

/// The text of the scenario file at `path`.
pub fn read_scenario(path: &Path) -> Result<String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read scenario {shown}"))?;
    if meta.is_dir() {
        bail!("cannot read scenario {shown}: it is a folder, not a scenario file");
    }
    if !meta.is_file() {
        bail!("cannot read scenario {shown}: it is not a regular file (a pipe, a socket or a device); asyncsim reads scenario files only");
    }
    let too_big = |bytes: u64| {
        format!(
            "cannot read scenario {shown}: it is {:.1} MiB, and scenario files are read up to {} MiB",
            bytes as f64 / 1024.0 / 1024.0,
            MAX_SCENARIO_BYTES / 1024 / 1024
        )
    };
    if meta.len() > MAX_SCENARIO_BYTES {
        bail!(too_big(meta.len()));
    }
    let file = std::fs::File::open(path).with_context(|| format!("cannot read scenario {shown}"))?;
    let mut bytes = Vec::new();
    // The file may have grown since we looked: read one byte past the cap.
    file.take(MAX_SCENARIO_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read scenario {shown}"))?;
    if bytes.len() as u64 > MAX_SCENARIO_BYTES {
        bail!(too_big(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "cannot read scenario {shown}: it is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}
