//! SQLite backups and restores through SQLite's own online backup API.
//!
//! Copying the file is wrong for a database in WAL mode: committed rows that
//! are still in the `-wal` are missing from the copy, and a leftover `-wal`
//! can be replayed over a file copied back in place. The backup API reads
//! and writes through SQLite's pager, so a backup holds every committed row
//! whatever the file is called, and a restore goes through the target's
//! journal or WAL like any other write, visible to every connection.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::FleetError;

/// How long a backup or restore waits for another connection's lock.
const BUSY: Duration = Duration::from_secs(60);

fn io_error(action: &'static str, path: &Path, e: impl std::fmt::Display) -> FleetError {
    FleetError::Io {
        action,
        path: path.to_owned(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Copies the database at `source` into a new file `dest` (which must not
/// exist), as one consistent snapshot of everything committed. Safe while
/// another connection holds the write lock: the backup only reads.
pub(crate) async fn back_up(source: &Path, dest: &Path) -> Result<(), FleetError> {
    let (source, dest) = (source.to_owned(), dest.to_owned());
    run_blocking(move || {
        if dest.exists() {
            return Err(io_error(
                "back up",
                &dest,
                "the backup file already exists; nothing was overwritten",
            ));
        }
        let src = Connection::open_with_flags(
            &source,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| io_error("open for backup", &source, e))?;
        src.busy_timeout(BUSY)
            .map_err(|e| io_error("open for backup", &source, e))?;
        let result = Connection::open(&dest)
            .and_then(|mut dst| copy_pages(&src, &mut dst))
            .map_err(|e| io_error("back up", &dest, e));
        if result.is_err() {
            remove_with_sides(&dest);
        }
        result
    })
    .await
}

/// Replaces the content of the live database `target` with the backup at
/// `backup`, through the target's own journal or WAL (no leftover `-wal` can
/// undo it), in one step that other connections see whole.
pub(crate) async fn restore(backup: &Path, target: &Path) -> Result<(), FleetError> {
    let (backup, target) = (backup.to_owned(), target.to_owned());
    run_blocking(move || {
        let mut dst = Connection::open_with_flags(
            &target,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| io_error("open for restore", &target, e))?;
        dst.busy_timeout(BUSY)
            .map_err(|e| io_error("open for restore", &target, e))?;
        let src = Connection::open_with_flags(
            &backup,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| io_error("open backup", &backup, e))?;
        copy_pages(&src, &mut dst).map_err(|e| io_error("restore", &target, e))
    })
    .await
}

/// Copies every page of `src` into `dst` in one step (rusqlite's own
/// `backup` copies 5 pages per 250 ms), retrying while a lock is held.
fn copy_pages(src: &Connection, dst: &mut Connection) -> rusqlite::Result<()> {
    let started = std::time::Instant::now();
    let backup = Backup::new(src, dst)?;
    loop {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked if started.elapsed() < BUSY => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some("the database stayed locked by another connection".into()),
                ))
            }
        }
    }
}

/// Deletes a backup file and the `-wal`/`-shm` SQLite may have made beside it.
pub(crate) fn remove_with_sides(path: &Path) {
    for side in sides(path) {
        let _ = std::fs::remove_file(side);
    }
    let _ = std::fs::remove_file(path);
}

/// `x-wal` and `x-shm` for a database file `x`, whatever its name.
pub(crate) fn sides(path: &Path) -> [PathBuf; 2] {
    let with = |suffix: &str| {
        let mut s = path.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    [with("-wal"), with("-shm")]
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FleetError> + Send + 'static,
) -> Result<T, FleetError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FleetError::Io {
            action: "run the SQLite backup",
            path: PathBuf::new(),
            source: std::io::Error::other(e.to_string()),
        })?
}
