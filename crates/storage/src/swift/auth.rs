//! Getting a token and the storage URL, the three ways upstream's
//! swiftclient does: tempauth-style v1 (`X-Auth-User`/`X-Auth-Key`), Keystone
//! v3 password auth (the storage URL taken from the token's catalog), or a
//! pre-authenticated token (`swift_preauthtoken`, with `swift_url`).
//!
//! `swift_url`, when set, replaces whatever storage URL the login returns.

use super::SwiftOptions;
use super::client::count_request;
use crate::{Result, StorageError};
use serde_json::{Value, json};

/// A token and the account URL it works on.
#[derive(Clone, Debug)]
pub(super) struct Session {
    pub(super) storage_url: String,
    pub(super) token: String,
}

fn status_error(target: &str, status: reqwest::StatusCode, body: &str) -> StorageError {
    let body = body.trim();
    StorageError::SwiftStatus {
        request: "login".into(),
        target: target.to_string(),
        status: status.as_u16(),
        detail: if body.is_empty() {
            String::new()
        } else {
            format!(": {}", body.chars().take(200).collect::<String>())
        },
    }
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Log in with the options' credentials.
pub(super) async fn login(http: &reqwest::Client, o: &SwiftOptions) -> Result<Session> {
    let mut session = match o.auth_version.trim_start_matches(['v', 'V']) {
        "1" | "1.0" => v1(http, o).await?,
        "3" | "3.0" => v3(http, o).await?,
        other => {
            return Err(StorageError::Backend(format!(
                "swift: swift_auth_version {other} is not supported (1: tempauth and compatible, 3: Keystone v3)"
            )));
        }
    };
    if let Some(url) = o.url.as_ref().filter(|u| !u.is_empty()) {
        session.storage_url = url.clone();
    }
    session.storage_url = session.storage_url.trim_end_matches('/').to_string();
    Ok(session)
}

/// v1: `GET <authurl>` with `X-Auth-User` and `X-Auth-Key`; the answer's
/// `X-Storage-Url` and `X-Auth-Token` headers.
async fn v1(http: &reqwest::Client, o: &SwiftOptions) -> Result<Session> {
    count_request();
    let r = http
        .get(&o.authurl)
        .header("X-Auth-User", &o.user)
        .header("X-Auth-Key", &o.key)
        .send()
        .await
        .map_err(|source| StorageError::Swift {
            what: format!("login at {}", o.authurl),
            source,
        })?;
    let status = r.status();
    if !status.is_success() {
        let body = r.text().await.unwrap_or_default();
        return Err(status_error(&o.authurl, status, &body));
    }
    match (header(&r, "x-storage-url"), header(&r, "x-auth-token")) {
        (Some(storage_url), Some(token)) => Ok(Session { storage_url, token }),
        _ => Err(StorageError::Backend(format!(
            "swift: the login at {} answered without X-Storage-Url and X-Auth-Token",
            o.authurl
        ))),
    }
}

/// The Keystone interface of an upstream `swift_endpoint_type`.
pub(super) fn interface(endpoint_type: &str) -> &str {
    match endpoint_type {
        "publicURL" => "public",
        "internalURL" => "internal",
        "adminURL" => "admin",
        other => other,
    }
}

/// `<authurl>/auth/tokens`, whether `authurl` ends with `/v3` or not.
pub(super) fn v3_tokens_url(authurl: &str) -> String {
    let base = authurl.trim_end_matches('/');
    if base.ends_with("/v3") {
        format!("{base}/auth/tokens")
    } else {
        format!("{base}/v3/auth/tokens")
    }
}

/// The URL of the first endpoint of `service_type` with this interface (and
/// region, when one is asked) in a v3 token's catalog.
pub(super) fn pick_endpoint(
    token: &Value,
    service_type: &str,
    interface: &str,
    region: Option<&str>,
) -> Option<String> {
    let catalog = token.get("token")?.get("catalog")?.as_array()?;
    catalog
        .iter()
        .filter(|s| s.get("type").and_then(Value::as_str) == Some(service_type))
        .filter_map(|s| s.get("endpoints")?.as_array())
        .flatten()
        .filter(|e| e.get("interface").and_then(Value::as_str) == Some(interface))
        .find(|e| {
            region.is_none_or(|want| {
                ["region_id", "region"]
                    .iter()
                    .any(|k| e.get(*k).and_then(Value::as_str) == Some(want))
            })
        })
        .and_then(|e| e.get("url")?.as_str().map(str::to_string))
}

/// v3: `POST <authurl>/auth/tokens`, password of `swift_user` in
/// `swift_user_domain_name`, scoped to `swift_project_name` in
/// `swift_project_domain_name`; the token is the `X-Subject-Token` header,
/// the storage URL the catalog's `swift_service_type` endpoint of the
/// interface `swift_endpoint_type` names (in `swift_region`, if set).
async fn v3(http: &reqwest::Client, o: &SwiftOptions) -> Result<Session> {
    let url = v3_tokens_url(&o.authurl);
    let mut auth = json!({
        "identity": {
            "methods": ["password"],
            "password": {"user": {
                "name": o.user,
                "domain": {"name": o.user_domain_name},
                "password": o.key,
            }},
        }
    });
    if let Some(project) = o.project_name.as_ref().filter(|p| !p.is_empty()) {
        auth["scope"] = json!({"project": {
            "name": project,
            "domain": {"name": o.project_domain_name},
        }});
    }
    count_request();
    let r = http
        .post(&url)
        .json(&json!({ "auth": auth }))
        .send()
        .await
        .map_err(|source| StorageError::Swift {
            what: format!("login at {url}"),
            source,
        })?;
    let status = r.status();
    let token = header(&r, "x-subject-token");
    let body = r.text().await.map_err(|source| StorageError::Swift {
        what: format!("reading the answer of {url}"),
        source,
    })?;
    if !status.is_success() {
        return Err(status_error(&url, status, &body));
    }
    let Some(token) = token else {
        return Err(StorageError::Backend(format!(
            "swift: Keystone at {url} answered without X-Subject-Token"
        )));
    };
    if let Some(storage_url) = o.url.clone().filter(|u| !u.is_empty()) {
        return Ok(Session { storage_url, token });
    }
    let parsed: Value =
        serde_json::from_str(&body).map_err(|source| StorageError::CorruptFile {
            path: format!("the token of {url}"),
            source,
        })?;
    let region = o.region.as_deref().filter(|r| !r.is_empty());
    let interface = interface(&o.endpoint_type);
    match pick_endpoint(&parsed, &o.service_type, interface, region) {
        Some(storage_url) => Ok(Session { storage_url, token }),
        None => Err(StorageError::Backend(format!(
            "swift: the Keystone catalog has no {} endpoint with interface {interface}{}",
            o.service_type,
            region
                .map(|r| format!(" in region {r}"))
                .unwrap_or_default()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_endpoint_is_picked_by_type_interface_and_region() {
        let token = json!({"token": {"catalog": [
            {"type": "identity", "endpoints": [
                {"interface": "public", "region_id": "r1", "url": "http://k/v3"}]},
            {"type": "object-store", "endpoints": [
                {"interface": "admin", "region_id": "r1", "url": "http://s/admin"},
                {"interface": "public", "region_id": "r1", "url": "http://s1/v1/AUTH_p"},
                {"interface": "public", "region_id": "r2", "url": "http://s2/v1/AUTH_p"},
                {"interface": "internal", "region": "r2", "url": "http://i2/v1/AUTH_p"}]},
        ]}});
        let pick = |i, r| pick_endpoint(&token, "object-store", i, r);
        assert_eq!(pick("public", None).as_deref(), Some("http://s1/v1/AUTH_p"));
        assert_eq!(
            pick("public", Some("r2")).as_deref(),
            Some("http://s2/v1/AUTH_p")
        );
        assert_eq!(
            pick(interface("internalURL"), Some("r2")).as_deref(),
            Some("http://i2/v1/AUTH_p")
        );
        assert_eq!(
            pick(interface("adminURL"), None).as_deref(),
            Some("http://s/admin")
        );
        assert_eq!(pick("public", Some("r3")), None);
        assert_eq!(
            v3_tokens_url("http://k:5000/v3/"),
            "http://k:5000/v3/auth/tokens"
        );
        assert_eq!(
            v3_tokens_url("http://k:5000"),
            "http://k:5000/v3/auth/tokens"
        );
    }
}
