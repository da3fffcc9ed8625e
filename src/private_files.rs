//! Files and directories Vestibule creates for itself (the SQLite database and its directory,
//! the directory of a generated configuration) are its user's alone, whatever the umask:
//! directories `rwx------` (0700), files `rw-------` (0600). What already exists keeps its mode.

use std::{fs, io, path::Path};

/// Mode of a directory Vestibule creates.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;
/// Mode of a file Vestibule creates.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents, each with mode 0700; a directory that already exists
/// keeps its mode.
pub(crate) fn create_dir_all(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Creates `path` as an empty file with mode 0600 unless it exists; an existing file is left
/// as it is.
pub(crate) fn create_file(path: &Path) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}
