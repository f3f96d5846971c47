//! Sack leases within one process, shared by the network incoming drivers
//! (Redis, S3, Ceph, Swift).
//!
//! A network store cannot tell two `take`s of one process apart, so each
//! driver keeps here, per sack, who holds it and what the holder read (the
//! driver's own record of it: list lengths, object names, omap keys):
//! - a sack is leased to one `take` at a time; a second `take` gets an empty
//!   [`SackMeasures`] with token 0 (see [`empty`]);
//! - the lease lasts until its `commit` has removed what was read (so no
//!   `take` of this process reads what is being deleted) or its `release`;
//! - a second `commit` of the same token while the first is under way is
//!   refused (the first one still owns what was read);
//! - a `take` or `commit` whose future is dropped half-way ends its lease
//!   (the guards), so a cancelled request never leaves a sack leased forever.
//!
//! Across processes the stores offer no lock: metricd's coordination gives
//! each sack to one process.

use crate::{Result, SackMeasures, StorageError};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

struct Lease<R> {
    token: u64,
    /// What the take read: what the commit removes.
    read: R,
    /// A commit is under way: the sack stays leased until it is done.
    committing: bool,
}

/// The leases of one incoming store; `R` is what a take read.
pub(crate) struct Leases<R> {
    map: Mutex<HashMap<u32, Lease<R>>>,
    next_token: AtomicU64,
}

/// A sack with nothing taken: token 0, which `commit` and `release` accept
/// and ignore.
pub(crate) fn empty(sack: u32) -> SackMeasures {
    SackMeasures {
        sack,
        measures: HashMap::new(),
        token: 0,
    }
}

fn bad_token(taken: &SackMeasures) -> StorageError {
    StorageError::Backend(format!(
        "sack {} is not leased with token {}",
        taken.sack, taken.token
    ))
}

impl<R: Default> Leases<R> {
    pub(crate) fn new() -> Self {
        Leases {
            map: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(1),
        }
    }

    /// Lease `sack` to a new take, or `None` if it is leased already. The
    /// lease ends when the guard drops, unless the take [`finishes`](TakeGuard::finish).
    pub(crate) fn begin(&self, sack: u32) -> Option<TakeGuard<'_, R>> {
        let mut map = self.map.lock();
        if map.contains_key(&sack) {
            return None;
        }
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        map.insert(
            sack,
            Lease {
                token,
                read: R::default(),
                committing: false,
            },
        );
        Some(TakeGuard {
            end: EndLease {
                leases: self,
                sack,
                token,
            },
        })
    }

    /// Start the commit of `taken`: hands over what its take read. The lease
    /// ends when the returned guard drops, however the commit ends. `None`
    /// for an empty take (token 0, see [`empty`]): there is nothing to remove.
    pub(crate) fn start_commit(
        &self,
        taken: &SackMeasures,
    ) -> Result<Option<(R, EndLease<'_, R>)>> {
        if taken.token == 0 {
            return Ok(None);
        }
        let mut map = self.map.lock();
        match map.get_mut(&taken.sack) {
            Some(l) if l.token == taken.token && !l.committing => {
                l.committing = true;
                let read = std::mem::take(&mut l.read);
                Ok(Some((
                    read,
                    EndLease {
                        leases: self,
                        sack: taken.sack,
                        token: taken.token,
                    },
                )))
            }
            _ => Err(bad_token(taken)),
        }
    }

    /// End the lease of `taken` without a commit: what it read stays.
    /// `false` for an empty take (token 0), which held no lease.
    pub(crate) fn release(&self, taken: &SackMeasures) -> Result<bool> {
        if taken.token == 0 {
            return Ok(false);
        }
        let mut map = self.map.lock();
        match map.get(&taken.sack) {
            Some(l) if l.token == taken.token && !l.committing => {
                map.remove(&taken.sack);
                Ok(true)
            }
            _ => Err(bad_token(taken)),
        }
    }

    /// Whether `sack` is leased now (being processed by this process): the
    /// polling drivers do not report such a sack as new.
    pub(crate) fn is_leased(&self, sack: u32) -> bool {
        self.map.lock().contains_key(&sack)
    }

    fn end(&self, sack: u32, token: u64) {
        let mut map = self.map.lock();
        if map.get(&sack).is_some_and(|l| l.token == token) {
            map.remove(&sack);
        }
    }
}

/// Ends a lease when dropped (a commit's, or a take's that did not finish).
pub(crate) struct EndLease<'a, R: Default> {
    leases: &'a Leases<R>,
    sack: u32,
    token: u64,
}

impl<R: Default> Drop for EndLease<'_, R> {
    fn drop(&mut self) {
        self.leases.end(self.sack, self.token);
    }
}

/// A take in progress: dropping it ends the lease; `finish` keeps it.
pub(crate) struct TakeGuard<'a, R: Default> {
    end: EndLease<'a, R>,
}

impl<R: Default> TakeGuard<'_, R> {
    /// The take succeeded and read `read`: the sack stays leased until its
    /// commit or release.
    pub(crate) fn finish(
        self,
        read: R,
        measures: HashMap<uuid::Uuid, Vec<carbonara::Measure>>,
    ) -> SackMeasures {
        let (sack, token) = (self.end.sack, self.end.token);
        if let Some(l) = self.end.leases.map.lock().get_mut(&sack) {
            l.read = read;
        }
        std::mem::forget(self.end);
        SackMeasures {
            sack,
            measures,
            token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(sack: u32, token: u64) -> SackMeasures {
        SackMeasures {
            sack,
            measures: HashMap::new(),
            token,
        }
    }

    #[test]
    fn a_leased_sack_is_not_taken_twice() {
        let leases: Leases<Vec<u8>> = Leases::new();
        let first = leases.begin(3).expect("free");
        assert!(leases.begin(3).is_none());
        let t = first.finish(vec![1], HashMap::new());
        assert!(leases.begin(3).is_none(), "still leased until commit");
        leases.release(&t).expect("release");
        assert!(leases.begin(3).is_some());
    }

    #[test]
    fn a_dropped_take_ends_its_lease() {
        let leases: Leases<Vec<u8>> = Leases::new();
        drop(leases.begin(1).expect("free"));
        assert!(!leases.is_leased(1));
    }

    #[test]
    fn a_second_commit_of_one_token_is_refused_while_the_first_runs() {
        let leases: Leases<Vec<u8>> = Leases::new();
        let t = leases
            .begin(0)
            .expect("free")
            .finish(vec![7], HashMap::new());
        let (read, guard) = leases
            .start_commit(&t)
            .expect("first commit")
            .expect("a lease");
        assert_eq!(read, vec![7]);
        assert!(leases.start_commit(&t).is_err());
        assert!(leases.release(&t).is_err());
        assert!(leases.is_leased(0), "leased until the first commit ends");
        drop(guard);
        assert!(!leases.is_leased(0));
        assert!(leases.start_commit(&t).is_err(), "the lease is gone");
    }

    #[test]
    fn a_stale_token_is_refused() {
        let leases: Leases<Vec<u8>> = Leases::new();
        let t = leases
            .begin(2)
            .expect("free")
            .finish(vec![], HashMap::new());
        assert!(leases.start_commit(&taken(2, t.token + 1)).is_err());
        assert!(leases.release(&taken(2, t.token + 1)).is_err());
        assert!(leases.release(&t).expect("released"));
    }

    #[test]
    fn an_empty_take_commits_and_releases_as_a_no_op() {
        let leases: Leases<Vec<u8>> = Leases::new();
        let _held = leases.begin(4).expect("free");
        let none = empty(4);
        assert!(leases.start_commit(&none).expect("no error").is_none());
        assert!(!leases.release(&none).expect("no error"));
        assert!(leases.is_leased(4), "the holder's lease is untouched");
    }
}
