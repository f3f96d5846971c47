//! Local aggregate store: splits and raw buffers in one embedded redb file.
//!
//! INTERFACE (implementation to be filled in): keep these signatures.

use crate::Result;
use std::path::Path;

pub struct LocalAggregates {
    _private: (),
}

impl LocalAggregates {
    pub fn open(path: &Path) -> Result<Self> {
        let _ = path;
        unimplemented!()
    }
}
