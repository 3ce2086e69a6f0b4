//! Files a service keeps outside its database (jobs' photos), behind one trait, [`BlobStore`]:
//! put, get and delete whole files by key. Keys are ids the service generated (`pho_…`), never
//! a name from a person, so a key can never climb out of the store.
//!
//! [`DiskStore`] keeps one file per key in a directory (`[photos] dir`). A put writes a temporary
//! file in the same directory, flushes it to disk, then renames it over the key: a crash leaves
//! either the whole file or none (and at worst a `.tmp-…` file, which is never read). Object storage
//! (S3) is a later implementation of the same trait (ADR 0012).
//!
//! The trait is synchronous (plain file I/O); async callers use [`Blobs`], which runs each call on
//! the blocking pool like the database does.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::config::Environment;

/// The largest photo a service accepts (jobs checks it; the portal stops reading past it).
pub const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A key that is not a generated id: a bug in the caller, refused before touching the disk.
    #[error("not a valid blob key: {0:?}")]
    BadKey(String),
    /// The store could not read or write (disk full, permissions, a missing mount).
    #[error("blob store failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("blob store task failed: {0}")]
    Task(String),
}

/// Whole files by key. Implementations must make `put` atomic (all or nothing) and `delete`
/// idempotent (deleting a missing key is fine).
pub trait BlobStore: Send + Sync + 'static {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError>;
    /// `None` when there is no file under `key`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError>;
    fn delete(&self, key: &str) -> Result<(), BlobError>;
}

/// Where a service keeps its files (`[photos]` for jobs).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobConfig {
    /// The directory, created when missing. Relative paths are read from the working directory
    /// (scripts/run starts services at the repository root and sets it to `.omneuro/data/photos`);
    /// production needs an absolute path.
    #[serde(default = "default_photo_dir")]
    pub dir: String,
}

fn default_photo_dir() -> String {
    ".omneuro/data/photos".into()
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self {
            dir: default_photo_dir(),
        }
    }
}

/// A key is a generated id: ASCII letters, digits and `_`, 1 to 64 characters.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One file per key in a directory.
#[derive(Debug, Clone)]
pub struct DiskStore {
    dir: PathBuf,
}

impl DiskStore {
    /// The store in `dir`; nothing is touched until the first put (see [`DiskStore::prepare`]).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// From config: in production the directory must be absolute, and is made (and checked
    /// writable) at start-up so a bad mount stops the service instead of failing uploads.
    pub fn from_config(cfg: &BlobConfig, environment: Environment) -> Result<Self, BlobError> {
        let dir = PathBuf::from(&cfg.dir);
        if cfg.dir.trim().is_empty() {
            return Err(BlobError::Io(std::io::Error::other(
                "[photos] dir is empty; set it to a directory",
            )));
        }
        let store = Self::new(dir);
        if environment == Environment::Production {
            if !store.dir.is_absolute() {
                return Err(BlobError::Io(std::io::Error::other(format!(
                    "[photos] dir must be an absolute path in production, not {:?}",
                    cfg.dir
                ))));
            }
            store.prepare()?;
        }
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes the directory and proves it writable (a temporary file written and removed).
    pub fn prepare(&self) -> Result<(), BlobError> {
        std::fs::create_dir_all(&self.dir)?;
        let probe = self
            .dir
            .join(format!(".tmp-probe-{}", crate::ids::new_id("p")));
        std::fs::write(&probe, b"")?;
        std::fs::remove_file(&probe)?;
        Ok(())
    }

    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        if !valid_key(key) {
            return Err(BlobError::BadKey(key.to_owned()));
        }
        Ok(self.dir.join(key))
    }
}

impl BlobStore for DiskStore {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError> {
        let path = self.path(key)?;
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self
            .dir
            .join(format!(".tmp-{key}-{}", crate::ids::new_id("t")));
        let written = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, &path)?;
            // The rename itself is durable once the directory is flushed.
            if let Ok(d) = std::fs::File::open(&self.dir) {
                let _ = d.sync_all();
            }
            Ok::<_, std::io::Error>(())
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        match std::fs::read(self.path(key)?) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn delete(&self, key: &str) -> Result<(), BlobError> {
        match std::fs::remove_file(self.path(key)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A [`BlobStore`] for async code: each call runs on the blocking pool.
#[derive(Clone)]
pub struct Blobs(Arc<dyn BlobStore>);

impl Blobs {
    pub fn new(store: impl BlobStore) -> Self {
        Self(Arc::new(store))
    }

    pub async fn put(&self, key: String, bytes: Vec<u8>) -> Result<(), BlobError> {
        let s = self.0.clone();
        crate::db::blocking(move || s.put(&key, &bytes))
            .await
            .map_err(|e| BlobError::Task(e.to_string()))?
    }

    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, BlobError> {
        let s = self.0.clone();
        crate::db::blocking(move || s.get(&key))
            .await
            .map_err(|e| BlobError::Task(e.to_string()))?
    }

    pub async fn delete(&self, key: String) -> Result<(), BlobError> {
        let s = self.0.clone();
        crate::db::blocking(move || s.delete(&key))
            .await
            .map_err(|e| BlobError::Task(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn disk_store_puts_gets_and_deletes_whole_files() {
        let tmp = Tmp(std::env::temp_dir().join(crate::ids::new_id("blobs")));
        // The directory does not exist yet: the first put makes it.
        let store = DiskStore::new(tmp.0.join("photos"));
        assert_eq!(store.get("pho_a").unwrap(), None);
        store.put("pho_a", b"first").unwrap();
        assert_eq!(store.get("pho_a").unwrap().as_deref(), Some(&b"first"[..]));
        // A second put replaces the file whole; no temporary file is left behind.
        store.put("pho_a", b"second, longer").unwrap();
        assert_eq!(
            store.get("pho_a").unwrap().as_deref(),
            Some(&b"second, longer"[..])
        );
        store.put("pho_b", b"").unwrap();
        assert_eq!(files(store.dir()), ["pho_a", "pho_b"]);
        store.delete("pho_a").unwrap();
        store.delete("pho_a").unwrap();
        assert_eq!(files(store.dir()), ["pho_b"]);
        store.prepare().unwrap();
        assert_eq!(files(store.dir()), ["pho_b"]);
    }

    #[test]
    fn keys_are_ids_never_paths() {
        let tmp = Tmp(std::env::temp_dir().join(crate::ids::new_id("blobs")));
        let store = DiskStore::new(&tmp.0);
        for bad in [
            "",
            "../x",
            "a/b",
            ".tmp-x",
            "x.jpg",
            "a\0b",
            &"a".repeat(65),
        ] {
            assert!(
                matches!(store.put(bad, b"x"), Err(BlobError::BadKey(_))),
                "{bad:?}"
            );
            assert!(store.get(bad).is_err(), "{bad:?}");
            assert!(store.delete(bad).is_err(), "{bad:?}");
        }
        assert!(files(&tmp.0).is_empty());
    }

    #[test]
    fn a_failed_put_leaves_nothing() {
        let tmp = Tmp(std::env::temp_dir().join(crate::ids::new_id("blobs")));
        let store = DiskStore::new(&tmp.0);
        // A directory where the file should go: the rename fails, the temporary file goes.
        std::fs::create_dir_all(tmp.0.join("pho_dir").join("inside")).unwrap();
        assert!(store.put("pho_dir", b"x").is_err());
        assert_eq!(files(&tmp.0), ["pho_dir"]);
    }

    #[test]
    fn production_needs_an_absolute_writable_dir() {
        let rel = BlobConfig {
            dir: "relative/photos".into(),
        };
        assert!(DiskStore::from_config(&rel, Environment::Production).is_err());
        assert!(DiskStore::from_config(&rel, Environment::Development).is_ok());
        let empty = BlobConfig { dir: " ".into() };
        assert!(DiskStore::from_config(&empty, Environment::Development).is_err());
        let tmp = Tmp(std::env::temp_dir().join(crate::ids::new_id("blobs")));
        let abs = BlobConfig {
            dir: tmp.0.to_string_lossy().into_owned(),
        };
        assert!(DiskStore::from_config(&abs, Environment::Production).is_ok());
        assert!(tmp.0.is_dir());
    }

    #[tokio::test]
    async fn blobs_run_on_the_blocking_pool() {
        let tmp = Tmp(std::env::temp_dir().join(crate::ids::new_id("blobs")));
        let b = Blobs::new(DiskStore::new(&tmp.0));
        b.put("pho_x".into(), vec![1, 2, 3]).await.unwrap();
        assert_eq!(b.get("pho_x".into()).await.unwrap(), Some(vec![1, 2, 3]));
        b.delete("pho_x".into()).await.unwrap();
        assert_eq!(b.get("pho_x".into()).await.unwrap(), None);
    }
}
