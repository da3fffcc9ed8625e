//! Security review F17: the SQLite database, its `-wal` and `-shm` files and the directories
//! Vestibule creates for them are private to its user, whatever the umask; a directory that
//! already existed keeps its mode.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use tempfile::TempDir;

use crate::support::TestServer;

/// The permission bits of `path`.
pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The database file and the `-wal` and `-shm` files SQLite keeps next to it.
pub fn database_files(db: &Path) -> [PathBuf; 3] {
    ["", "-wal", "-shm"].map(|suffix| PathBuf::from(format!("{}{suffix}", db.display())))
}

/// A server on the SQLite database `db`, after one write (a registration).
async fn server_after_a_write(db: &Path) -> TestServer {
    let url = format!("sqlite:{}", db.display());
    let server = TestServer::with(|config| config.database.url = url.as_str().into()).await;
    server.register("alice", "password123").await;
    server
}

#[tokio::test]
async fn the_database_and_the_directories_created_for_it_are_private() {
    let dir = TempDir::new().expect("temp dir");
    let data = dir.path().join("data");
    let db = data.join("nested").join("vestibule.db");
    let _server = server_after_a_write(&db).await;
    for created in [&data, &data.join("nested")] {
        assert_eq!(mode(created), 0o700, "{}", created.display());
    }
    for file in database_files(&db) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn an_existing_directory_keeps_its_mode() {
    let dir = TempDir::new().expect("temp dir");
    let data = dir.path().join("shared");
    std::fs::create_dir(&data).expect("create directory");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let db = data.join("vestibule.db");
    let _server = server_after_a_write(&db).await;
    assert_eq!(mode(&data), 0o755);
    for file in database_files(&db) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}
