//! Who is calling: credentials from the configured auth mode.
//!
//! `basic` (upstream's default): `Authorization: basic base64(user:password)`, the
//! password is ignored, the user name is the user id and `admin` is the admin.
//! `remoteuser`: the user name set by a trusted front proxy (`Remote-User` or
//! `X-Remote-User`). Both give the same credentials model; the creator recorded
//! on new objects is the user name, and listings are not filtered.
//! `keystone`: `X-Auth-Token` validated by Keystone (see `crate::access::keystone`);
//! creator `"<user_id>:<project_id>"`, listings filtered to the project.

use crate::AppState;
pub(crate) use crate::access::creds::Creds;
use crate::access::keystone::KeystoneError;
use crate::wire::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    Basic,
    RemoteUser,
    Keystone,
}

impl std::str::FromStr for AuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "basic" => Ok(AuthMode::Basic),
            "remoteuser" => Ok(AuthMode::RemoteUser),
            "keystone" => Ok(AuthMode::Keystone),
            other => Err(format!(
                "unsupported [api] auth_mode `{other}' (supported: basic, keystone, remoteuser)"
            )),
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
        domain_id: None,
        roles,
        scoped: false,
    }
}

/// 401, with the Keystone challenge in keystone mode.
fn unauthorized(state: &AppState) -> Response {
    let mut resp = ApiError::unauthorized().into_response();
    if let Some(ks) = &state.keystone
        && let Ok(v) = HeaderValue::from_str(&ks.challenge())
    {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

impl FromRequestParts<Arc<AppState>> for Creds {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Response> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let user = match state.config.auth_mode {
            AuthMode::Basic => header("authorization").and_then(basic_user),
            AuthMode::RemoteUser => header("remote-user")
                .or_else(|| header("x-remote-user"))
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string),
            AuthMode::Keystone => {
                let Some(ks) = &state.keystone else {
                    return Err(
                        ApiError::internal("keystone auth is not configured").into_response()
                    );
                };
                let Some(token) = header("x-auth-token") else {
                    return Err(unauthorized(state));
                };
                return match ks.validate(token).await {
                    Ok(info) => Ok(info.creds()),
                    Err(KeystoneError::InvalidToken) => Err(unauthorized(state)),
                    Err(KeystoneError::Unavailable) => {
                        Err(ApiError::identity_service_unavailable().into_response())
                    }
                };
            }
        };
        user.map(creds_for).ok_or_else(|| unauthorized(state))
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
