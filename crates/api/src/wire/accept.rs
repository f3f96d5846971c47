//! `Accept` header negotiation, shared by content negotiation and error
//! rendering.

/// Quality the `Accept` header gives to `offer` (most specific matching range wins).
pub(crate) fn accept_quality(accept: &str, offer: &str) -> f32 {
    let (otype, osub) = offer.split_once('/').unwrap_or((offer, ""));
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in parts {
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        let (mtype, msub) = media.split_once('/').unwrap_or((media.as_str(), ""));
        let specificity = if mtype == otype && msub == osub {
            3
        } else if mtype == otype && msub == "*" {
            2
        } else if mtype == "*" && msub == "*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map(|(_, q)| q).unwrap_or(0.0)
}
