//! Who is calling: credentials from the configured auth mode.
//!
//! `basic` (upstream's default): `Authorization: basic base64(user:password)`, the
//! password is ignored, the user name is the user id and `admin` is the admin.
//! `remoteuser`: the user name set by a trusted front proxy. Both give the
//! same credentials model; the creator recorded on new objects is the user name.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine as _;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Basic,
    RemoteUser,
}

impl std::str::FromStr for AuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "basic" => Ok(AuthMode::Basic),
            "remoteuser" => Ok(AuthMode::RemoteUser),
            other => Err(format!(
                "unsupported [api] auth_mode `{other}' (supported: basic, remoteuser)"
            )),
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Creds {
    pub(crate) user_id: String,
    pub(crate) project_id: Option<String>,
    pub(crate) roles: Vec<String>,
}

impl Creds {
    /// The identity stored as `creator` on what this caller creates.
    pub(crate) fn creator(&self) -> String {
        match &self.project_id {
            Some(p) => format!("{}:{}", self.user_id, p),
            None => self.user_id.clone(),
        }
    }
}

fn basic_user(value: &str) -> Option<String> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let user = decoded.split_once(':').map_or(decoded.as_str(), |(u, _)| u);
    (!user.is_empty()).then(|| user.to_string())
}

fn creds_for(user: String) -> Creds {
    let roles = if user == "admin" {
        vec!["admin".to_string()]
    } else {
        Vec::new()
    };
    Creds {
        user_id: user,
        project_id: None,
        roles,
    }
}

impl FromRequestParts<Arc<AppState>> for Creds {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let user = match state.config.auth_mode {
            AuthMode::Basic => header("authorization").and_then(basic_user),
            AuthMode::RemoteUser => header("remote-user")
                .or_else(|| header("x-remote-user"))
                .map(str::to_string),
        };
        user.map(creds_for).ok_or_else(ApiError::unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_gives_the_user_name() {
        assert_eq!(basic_user("basic Zm9vYmFyOg=="), Some("foobar".into()));
        assert_eq!(basic_user("Basic YWRtaW46"), Some("admin".into()));
        assert_eq!(basic_user(""), None);
        assert_eq!(basic_user("bearer xyz"), None);
        assert_eq!(basic_user("basic !!!"), None);
    }
}
