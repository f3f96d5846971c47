//! The embedded SQLite indexer (the all-in-one default).
//!
//! INTERFACE (implementation to be filled in): keep these signatures.

use crate::Result;

pub struct SqliteIndexer {
    _private: (),
}

impl SqliteIndexer {
    /// Open (creating if needed) the database at `path` (a file path or `:memory:`).
    pub async fn open(path: &str) -> Result<Self> {
        let _ = path;
        unimplemented!()
    }
}
