//! Shell-style globs as Python's `fnmatch.fnmatch` on POSIX (case-sensitive):
//! `*`, `?`, `[seq]`, `[!seq]`: the language of archive policy rules'
//! `metric_pattern` (and of metric name wildcards in `/v1/aggregates`).
//! Here, next to [`ArchivePolicyRule`](crate::ArchivePolicyRule), so every
//! place that picks a new metric's archive policy matches names the same way.

pub fn fnmatch(name: &str, pattern: &str) -> bool {
    let n: Vec<char> = name.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    matches(&n, &p)
}

fn matches(n: &[char], p: &[char]) -> bool {
    // Iterative matcher with backtracking on the last `*` (linear in practice).
    let (mut ni, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    ni += 1;
                    pi += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, next)) = class(&p[pi..], n[ni]) {
                        if ok {
                            ni += 1;
                            pi += next;
                            continue;
                        }
                    } else if n[ni] == '[' {
                        ni += 1;
                        pi += 1;
                        continue;
                    }
                }
                c if c == n[ni] => {
                    ni += 1;
                    pi += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Match `c` against the class at the start of `p` (`[...]`). Returns (matched,
/// length of the class) or `None` when the bracket is not closed (a literal `[`).
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = p.get(i) == Some(&'!');
    if negate {
        i += 1;
    }
    let start = i;
    let mut matched = false;
    while i < p.len() {
        if p[i] == ']' && i > start {
            return Some((matched != negate, i + 1));
        }
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::fnmatch;

    #[test]
    fn globs_match_like_python_fnmatch() {
        assert!(fnmatch("disk.foo.bar", "disk.foo.*"));
        assert!(fnmatch("disk.io", "disk.*"));
        assert!(fnmatch("", "*"));
        assert!(!fnmatch("cpu", "disk.*"));
        assert!(fnmatch("cpu1", "cpu?"));
        assert!(fnmatch("cpu1", "cpu[0-9]"));
        assert!(!fnmatch("cpux", "cpu[!a-z]"));
        assert!(fnmatch("a[b", "a[b"));
        assert!(fnmatch("abcabc", "*abc"));
    }
}
