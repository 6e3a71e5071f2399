//! A catalog for each test: SQLite in a temp dir, or, when `IMS_TEST_DATABASE_URL` is set,
//! a fresh PostgreSQL database on that server, dropped at the end of the test.

#![allow(dead_code, clippy::unwrap_used)]

use ims_db::{Catalog, scratch};

/// A catalog that cleans up after itself.
pub struct TestCatalog {
    /// The catalog.
    pub db: Catalog,
    /// Its URL (to open a second pool, as a second node would).
    pub url: String,
    scratch: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestCatalog {
    /// A fresh, migrated catalog on the backend the environment selects.
    pub async fn new() -> TestCatalog {
        let dir = tempfile::tempdir().unwrap();
        let (url, scratch) = match scratch::server_url() {
            Some(server) => (
                scratch::create(&server, "ims_db_test").await.unwrap(),
                Some(server),
            ),
            None => (ims_db::sqlite_url(&dir.path().join("c.sqlite")), None),
        };
        TestCatalog {
            db: Catalog::connect(&url).await.unwrap(),
            url,
            scratch,
            _dir: dir,
        }
    }

    /// Whether this test runs on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.scratch.is_some()
    }
}

impl Drop for TestCatalog {
    fn drop(&mut self) {
        let Some(server) = self.scratch.clone() else {
            return;
        };
        let url = self.url.clone();
        // Drop may run inside the test's runtime: a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            if let Err(e) = rt.block_on(scratch::drop(&server, &url)) {
                eprintln!("could not drop test database {url}: {e}");
            }
        })
        .join();
    }
}

/// A new qcow2 volume of `project` created `at` seconds after a fixed instant (so tests
/// order volumes by creation without sleeping).
pub fn volume(project: &str, name: &str, size: u64, at: i64) -> ims_domain::volume::Volume {
    ims_domain::volume::Volume::new(
        ims_domain::volume::VolumeId::new(),
        project,
        name.into(),
        size,
        ims_domain::volume::VolumeFormat::Qcow2,
        time::OffsetDateTime::from_unix_timestamp(1_700_000_000 + at).unwrap(),
    )
}
