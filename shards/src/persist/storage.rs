//! Where Parquet files and manifests live: an `object_store` (the local filesystem under the
//! data directory, or memory), with durability the object store alone does not give.
//!
//! Invariant: [`Storage::put_durable`] returns only once the object is complete under its
//! name and, on the local filesystem, that name and its bytes survive a crash (the object
//! store writes a staging file and renames it, but syncs neither).
//!
//! Every call blocks the calling thread: it runs on persistence threads and at start-up,
//! never on a shard's executor.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_lite::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};

use super::PersistError;

/// An object store and, when it is the local filesystem, its root.
#[derive(Debug, Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
}

impl Storage {
    /// Objects as files under `root` (created if missing).
    pub fn local(root: PathBuf) -> Result<Self, PersistError> {
        std::fs::create_dir_all(&root).map_err(|source| PersistError::Io {
            what: format!("creating {}", root.display()),
            source,
        })?;
        let store = LocalFileSystem::new_with_prefix(&root).map_err(PersistError::Store)?;
        Ok(Storage {
            store: Arc::new(store),
            local_root: Some(root),
        })
    }

    /// Objects in memory: gone when the process ends.
    pub fn memory() -> Self {
        Storage {
            store: Arc::new(InMemory::new()),
            local_root: None,
        }
    }

    /// The object store, for readers.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// Writes `bytes` as `path` and makes it durable.
    pub fn put_durable(&self, path: &Path, bytes: Bytes) -> Result<(), PersistError> {
        futures_executor::block_on(self.store.put(path, PutPayload::from_bytes(bytes)))
            .map_err(PersistError::Store)?;
        if let Some(root) = &self.local_root {
            let file = root.join(path.as_ref());
            let sync = |p: &std::path::Path| std::fs::File::open(p).and_then(|f| f.sync_all());
            sync(&file)
                .and_then(|_| file.parent().map_or(Ok(()), sync))
                .map_err(|source| PersistError::Io {
                    what: format!("syncing {}", file.display()),
                    source,
                })?;
        }
        Ok(())
    }

    /// Where `path` is on the local file system, when objects are files there.
    pub fn local_file(&self, path: &Path) -> Option<std::path::PathBuf> {
        self.local_root
            .as_ref()
            .map(|root| root.join(path.as_ref()))
    }

    pub fn get(&self, path: &Path) -> Result<Bytes, PersistError> {
        futures_executor::block_on(async { self.store.get(path).await?.bytes().await })
            .map_err(PersistError::Store)
    }

    /// Deletes `path`; an object already gone is not an error.
    pub fn delete(&self, path: &Path) -> Result<(), PersistError> {
        match futures_executor::block_on(self.store.delete(path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(PersistError::Store(e)),
        }
    }

    /// Every object under `prefix`.
    pub fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>, PersistError> {
        futures_executor::block_on(async {
            let mut out = Vec::new();
            let mut s = self.store.list(Some(prefix));
            while let Some(m) = s.next().await {
                match m {
                    Ok(m) => out.push(m),
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(PersistError::Store(e)),
                }
            }
            Ok(out)
        })
    }
}
