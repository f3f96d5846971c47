//! A consistent hash ring over the live metricd members: which sacks a worker
//! processes.
//!
//! Each member is placed on a 64-bit ring at [`VNODES`] pseudo-random points
//! (virtual nodes, which even out the share each member gets); a sack hashes to
//! one point and belongs to the first `replicas` *distinct* members found walking
//! the ring clockwise from there. When a member joins it takes over only the
//! arcs just before its own points, and when one leaves only its arcs move to
//! their next member: every other sack keeps its workers, so a rebalance does not
//! make all workers drop their warm sacks at once.
//!
//! Every process must compute the same ring from the same member list, across
//! builds and machines, so the hash is a fixed algorithm implemented here
//! (FNV-1a, then MurmurHash3's 64-bit finaliser to spread FNV's weak high bits),
//! not `std`'s `DefaultHasher` whose algorithm may change between releases.
//!
//! Pure: no I/O, no clock, no randomness.

/// Points per member on the ring. With 128, members' shares stay within a few
/// tens of percent of each other for any group size metricd sees in practice.
pub const VNODES: usize = 128;

/// A stable 64-bit hash: FNV-1a with MurmurHash3's `fmix64` finaliser.
pub fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The ring: sorted points, each naming a member by index.
#[derive(Debug, Clone)]
pub struct HashRing {
    members: Vec<String>,
    points: Vec<(u64, u32)>,
}

impl HashRing {
    /// A ring over `members` (duplicates ignored, order irrelevant).
    pub fn new<S: AsRef<str>>(members: &[S]) -> HashRing {
        Self::with_vnodes(members, VNODES)
    }

    pub fn with_vnodes<S: AsRef<str>>(members: &[S], vnodes: usize) -> HashRing {
        let mut members: Vec<String> = members.iter().map(|m| m.as_ref().to_string()).collect();
        members.sort_unstable();
        members.dedup();
        let vnodes = vnodes.max(1);
        let mut points = Vec::with_capacity(members.len() * vnodes);
        let mut key = Vec::new();
        for (i, m) in members.iter().enumerate() {
            for v in 0..vnodes {
                key.clear();
                key.extend_from_slice(m.as_bytes());
                key.push(b'#');
                key.extend_from_slice(v.to_string().as_bytes());
                points.push((hash64(&key), i as u32));
            }
        }
        // Ties (astronomically rare) are broken by member so every process agrees.
        points.sort_unstable();
        HashRing { members, points }
    }

    /// The members, sorted and deduplicated.
    pub fn members(&self) -> &[String] {
        &self.members
    }

    /// The `min(replicas, members)` distinct members responsible for `key`,
    /// the primary first.
    pub fn nodes_for(&self, key: &[u8], replicas: usize) -> Vec<&str> {
        let want = replicas.min(self.members.len());
        let mut out: Vec<&str> = Vec::with_capacity(want);
        if want == 0 {
            return out;
        }
        let h = hash64(key);
        let start = self.points.partition_point(|&(p, _)| p < h);
        let mut seen = vec![false; self.members.len()];
        for i in 0..self.points.len() {
            let (_, m) = self.points[(start + i) % self.points.len()];
            if !seen[m as usize] {
                seen[m as usize] = true;
                out.push(&self.members[m as usize]);
                if out.len() == want {
                    break;
                }
            }
        }
        out
    }

    /// The members responsible for `sack`.
    pub fn sack_nodes(&self, sack: u32, replicas: usize) -> Vec<&str> {
        self.nodes_for(sack_key(sack).as_bytes(), replicas)
    }

    /// The sacks (ascending) among `0..nsacks` that `member` processes.
    pub fn sacks_for(&self, member: &str, nsacks: u32, replicas: usize) -> Vec<u32> {
        (0..nsacks)
            .filter(|&s| self.sack_nodes(s, replicas).contains(&member))
            .collect()
    }
}

fn sack_key(sack: u32) -> String {
    format!("gnocchi-sack-{sack}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn names(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("host{i}.{}", 1000 + i * 7))
            .collect()
    }

    #[test]
    fn hash_is_stable() {
        // Pinned: processes built at different times must agree on the ring.
        // (Values from an independent implementation of FNV-1a + fmix64.)
        assert_eq!(hash64(b""), 0xefd0_1f60_ba99_2926);
        assert_eq!(hash64(b"gnocchi-sack-0"), 0xa0f7_5af6_9108_94d1);
        assert_eq!(hash64(b"host0.1000#0"), 0x0e46_bd91_a395_e0b4);
    }

    #[test]
    fn every_sack_has_min_replicas_members_distinct() {
        for n in 1..=6 {
            let ring = HashRing::new(&names(n));
            for replicas in 1..=4 {
                let mut per_member: HashMap<String, usize> = HashMap::new();
                for s in 0..128 {
                    let nodes = ring.sack_nodes(s, replicas);
                    assert_eq!(nodes.len(), replicas.min(n));
                    let mut d = nodes.clone();
                    d.sort_unstable();
                    d.dedup();
                    assert_eq!(d.len(), nodes.len(), "replicas must be distinct");
                    for m in nodes {
                        *per_member.entry(m.to_string()).or_default() += 1;
                    }
                }
                // sacks_for agrees with sack_nodes, and covers every sack
                // exactly min(replicas, n) times.
                let total: usize = ring
                    .members()
                    .iter()
                    .map(|m| {
                        let mine = ring.sacks_for(m, 128, replicas);
                        assert_eq!(mine.len(), per_member.get(m).copied().unwrap_or(0));
                        mine.len()
                    })
                    .sum();
                assert_eq!(total, 128 * replicas.min(n));
            }
        }
    }

    #[test]
    fn load_is_balanced() {
        for n in [2, 3, 5, 8] {
            let ring = HashRing::new(&names(n));
            let sacks = 4096u32;
            let mean = f64::from(sacks) / n as f64;
            for m in ring.members() {
                let got = ring.sacks_for(m, sacks, 1).len() as f64;
                assert!(
                    (got - mean).abs() / mean < 0.3,
                    "{n} members: {m} has {got} sacks, mean {mean}"
                );
            }
        }
    }

    #[test]
    fn joining_moves_only_sacks_to_the_newcomer() {
        let before = HashRing::new(&names(4));
        let mut grown = names(4);
        grown.push("newcomer.1".into());
        let after = HashRing::new(&grown);
        let mut moved = 0;
        for s in 0..1024 {
            let (b, a) = (before.sack_nodes(s, 1)[0], after.sack_nodes(s, 1)[0]);
            if a != b {
                assert_eq!(a, "newcomer.1", "sack {s} moved between old members");
                moved += 1;
            }
        }
        // About 1/5 of the sacks move, not a reshuffle.
        assert!((100..=320).contains(&moved), "{moved} sacks moved");
        // With replicas, the old members keep every sack except those the
        // newcomer now also serves.
        for s in 0..1024 {
            let b = before.sack_nodes(s, 3);
            let a = after.sack_nodes(s, 3);
            let lost: Vec<_> = b.iter().filter(|m| !a.contains(m)).collect();
            assert!(lost.len() <= 1);
            if !lost.is_empty() {
                assert!(a.contains(&"newcomer.1"));
            }
        }
    }

    #[test]
    fn leaving_moves_only_the_leavers_sacks() {
        let all = names(5);
        let before = HashRing::new(&all);
        let after = HashRing::new(&all[..4]);
        let gone = all[4].as_str();
        for s in 0..1024 {
            let (b, a) = (before.sack_nodes(s, 1)[0], after.sack_nodes(s, 1)[0]);
            if b != gone {
                assert_eq!(a, b, "sack {s} moved although its member stayed");
            }
        }
    }

    #[test]
    fn order_and_duplicates_do_not_matter() {
        let mut m = names(4);
        let a = HashRing::new(&m);
        m.reverse();
        m.push(m[0].clone());
        let b = HashRing::new(&m);
        for s in 0..256 {
            assert_eq!(a.sack_nodes(s, 2), b.sack_nodes(s, 2));
        }
        assert!(HashRing::new::<String>(&[]).sack_nodes(1, 3).is_empty());
    }
}
