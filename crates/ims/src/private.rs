//! The data directory is the tenants' and the catalog's: only ims's own user may read it.
//! Modes are set when things are created, and tightened at start-up for data written by
//! an older version or by hand.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};

/// Creates the data directory (0700), or makes an existing one 0700.
pub fn data_dir(dir: &Path) -> Result<()> {
    ims_blob::private_dir(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Creates the SQLite catalog file empty with mode 0600 before SQLite opens it (its
/// `-wal` and `-shm` files take the database file's mode), or makes existing ones 0600.
pub fn catalog_file(path: &Path) -> Result<()> {
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{}{suffix}", path.display());
        match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("making {file} private")),
        }
    }
    Ok(())
}
