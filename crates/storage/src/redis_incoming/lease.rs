//! Leases within one process: a sack is leased to one `take` at a time until
//! its commit's trim is done, and a `take` or `commit` whose future is
//! dropped half-way ends its lease (the guard).

use super::{RedisIncoming, bad_token};
use crate::{Result, SackMeasures};
use parking_lot::Mutex;
use std::collections::HashMap;

pub(super) struct Lease {
    pub(super) token: u64,
    /// Per metric id as stored (normally a uuid): list elements and measures read.
    pub(super) read: Vec<(String, u64, u64)>,
    /// A commit is under way: the sack stays leased until it is done.
    pub(super) committing: bool,
}

/// Ends a lease when dropped, unless disarmed: a `take` or `commit` whose
/// future is dropped half-way does not leave its sack leased forever.
pub(super) struct LeaseGuard<'a> {
    leases: &'a Mutex<HashMap<u32, Lease>>,
    sack: u32,
    token: u64,
    pub(super) armed: bool,
}

impl Drop for LeaseGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut leases = self.leases.lock();
            if leases
                .get(&self.sack)
                .is_some_and(|l| l.token == self.token)
            {
                leases.remove(&self.sack);
            }
        }
    }
}

impl RedisIncoming {
    /// Drop the lease of `taken` if it is the current one.
    pub(super) fn end_lease(&self, taken: &SackMeasures) -> Result<Lease> {
        let mut leases = self.leases.lock();
        match leases.get(&taken.sack) {
            Some(l) if l.token == taken.token && !l.committing => {
                Ok(leases.remove(&taken.sack).expect("checked"))
            }
            _ => Err(bad_token(taken)),
        }
    }

    pub(super) fn guard(&self, sack: u32, token: u64) -> LeaseGuard<'_> {
        LeaseGuard {
            leases: &self.leases,
            sack,
            token,
            armed: true,
        }
    }
}
