//! metricd.
