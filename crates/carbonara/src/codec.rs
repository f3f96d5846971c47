//! The on-disk format of splits and raw buffers: compact and bit-exact.
//!
//! INTERFACE (implementation to be filled in): keep these signatures.

use crate::aggregated::{AggregatedTimeSerie, SplitKey};
use crate::bound::BoundTimeSerie;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("corrupt data: {0}")]
    Corrupt(&'static str),
}

/// Encode the points of one split (all inside `key`'s span).
pub fn encode_split(key: SplitKey, serie: &AggregatedTimeSerie) -> Vec<u8> {
    let _ = (key, serie);
    unimplemented!()
}

pub fn decode_split(key: SplitKey, bytes: &[u8]) -> Result<AggregatedTimeSerie, CodecError> {
    let _ = (key, bytes);
    unimplemented!()
}

/// Encode a raw buffer (block_size and back_window are not stored: they come from the policy).
pub fn encode_raw(raw: &BoundTimeSerie) -> Vec<u8> {
    let _ = raw;
    unimplemented!()
}

pub fn decode_raw(bytes: &[u8], block_size: i64, back_window: u64) -> Result<BoundTimeSerie, CodecError> {
    let _ = (bytes, block_size, back_window);
    unimplemented!()
}
