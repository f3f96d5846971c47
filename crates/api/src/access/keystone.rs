//! `auth_mode = keystone`: `X-Auth-Token` validated against a Keystone v3 API,
//! as keystonemiddleware's `auth_token` filter does in front of upstream.
//!
//! The service authenticates itself with the `[keystone_authtoken]` password
//! credentials (`POST /v3/auth/tokens`), then validates each user token with
//! `GET /v3/auth/tokens` + `X-Subject-Token`. Validated tokens are kept in a
//! bounded in-memory cache for `token_cache_time` (never past their expiry),
//! keyed by the token's SHA-256 so no token is held in clear. Tokens are never
//! logged.

use crate::access::creds::Creds;
use carbonara::time;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most; beyond, the oldest are dropped.
const CACHE_CAPACITY: usize = 10_000;
/// Renew the service token this long before it expires.
const RENEW_MARGIN: Duration = Duration::from_secs(60);

/// `[keystone_authtoken]`, with keystonemiddleware's option names.
#[derive(Clone)]
pub struct KeystoneConfig {
    /// Identity API (`auth_url`), with or without the trailing `/v3`.
    pub auth_url: String,
    /// What `WWW-Authenticate: Keystone uri="..."` announces
    /// (`www_authenticate_uri`, formerly `auth_uri`; default: `auth_url`).
    pub www_authenticate_uri: String,
    pub username: String,
    pub password: String,
    pub project_name: String,
    pub user_domain_name: String,
    pub user_domain_id: Option<String>,
    pub project_domain_name: String,
    pub project_domain_id: Option<String>,
    /// How long a validated token is trusted without asking again.
    pub token_cache_time: Duration,
    /// Per-request timeout towards Keystone (`http_connect_timeout`).
    pub http_timeout: Duration,
}

impl Default for KeystoneConfig {
    fn default() -> Self {
        KeystoneConfig {
            auth_url: String::new(),
            www_authenticate_uri: String::new(),
            username: String::new(),
            password: String::new(),
            project_name: String::new(),
            user_domain_name: "Default".into(),
            user_domain_id: None,
            project_domain_name: "Default".into(),
            project_domain_id: None,
            token_cache_time: Duration::from_secs(300),
            http_timeout: Duration::from_secs(10),
        }
    }
}

/// The password stays out of debug output (and so out of any log).
impl std::fmt::Debug for KeystoneConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneConfig")
            .field("auth_url", &self.auth_url)
            .field("www_authenticate_uri", &self.www_authenticate_uri)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("project_name", &self.project_name)
            .field("user_domain_name", &self.user_domain_name)
            .field("project_domain_name", &self.project_domain_name)
            .field("token_cache_time", &self.token_cache_time)
            .finish()
    }
}

/// Why a request could not be authenticated.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeystoneError {
    /// No, unknown, expired or revoked token: 401.
    InvalidToken,
    /// Keystone unreachable or refusing our service credentials: 503.
    Unavailable,
}

/// What Keystone said about a user token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenInfo {
    pub(crate) user_id: String,
    pub(crate) project_id: Option<String>,
    pub(crate) domain_id: Option<String>,
    pub(crate) roles: Vec<String>,
}

impl TokenInfo {
    pub(crate) fn creds(&self) -> Creds {
        Creds {
            user_id: self.user_id.clone(),
            project_id: self.project_id.clone(),
            domain_id: self.domain_id.clone(),
            roles: self.roles.clone(),
            scoped: true,
        }
    }
}

struct CacheEntry {
    info: TokenInfo,
    until: Instant,
}

pub struct Keystone {
    cfg: KeystoneConfig,
    /// `auth_url` ending in `/v3`, no trailing slash.
    v3: String,
    http: reqwest::Client,
    service_token: tokio::sync::Mutex<Option<(String, Instant)>>,
    cache: Mutex<HashMap<[u8; 32], CacheEntry>>,
}

/// `http://h:5000`, `http://h:5000/`, `http://h:5000/v3/` → `http://h:5000/v3`.
fn v3_url(auth_url: &str) -> String {
    let base = auth_url.trim().trim_end_matches('/');
    if base.ends_with("/v3") {
        base.to_string()
    } else {
        format!("{base}/v3")
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// `expires_at` (ISO 8601) → how long from now; `None` if unparsable.
fn remaining(expires_at: Option<&str>) -> Option<Duration> {
    let now = crate::wire::params::now();
    let at = time::parse_timestamp(expires_at?, now).ok()?;
    Some(Duration::from_nanos(
        u64::try_from(at.saturating_sub(now)).unwrap_or(0),
    ))
}

/// The `token` object of a validation answer.
pub(crate) fn token_info(body: &Value) -> Option<(TokenInfo, Option<Duration>)> {
    let token = body.get("token")?;
    let s = |v: &Value| v.as_str().map(str::to_string);
    let user_id = s(token.pointer("/user/id")?)?;
    let info = TokenInfo {
        user_id,
        project_id: token.pointer("/project/id").and_then(s),
        domain_id: token.pointer("/domain/id").and_then(s),
        roles: token
            .get("roles")
            .and_then(Value::as_array)
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| r.get("name").and_then(s))
                    .collect()
            })
            .unwrap_or_default(),
    };
    Some((
        info,
        remaining(token.get("expires_at").and_then(Value::as_str)),
    ))
}

impl Keystone {
    pub fn new(cfg: KeystoneConfig) -> Result<Keystone, String> {
        if cfg.auth_url.trim().is_empty() {
            return Err("[keystone_authtoken] auth_url (or www_authenticate_uri) must be set when [api] auth_mode = keystone".into());
        }
        if cfg.username.is_empty() || cfg.password.is_empty() {
            return Err(
                "[keystone_authtoken] username and password must be set when [api] auth_mode = keystone"
                    .into(),
            );
        }
        let http = reqwest::Client::builder()
            .timeout(cfg.http_timeout)
            .build()
            .map_err(|e| format!("keystone HTTP client: {e}"))?;
        Ok(Keystone {
            v3: v3_url(&cfg.auth_url),
            cfg,
            http,
            service_token: tokio::sync::Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The value of `WWW-Authenticate` on a 401.
    pub(crate) fn challenge(&self) -> String {
        let uri = if self.cfg.www_authenticate_uri.is_empty() {
            &self.cfg.auth_url
        } else {
            &self.cfg.www_authenticate_uri
        };
        format!("Keystone uri=\"{}\"", uri.replace('"', "%22"))
    }

    /// A request keystone did not answer: logged, then `Unavailable`.
    fn unreachable(&self, e: reqwest::Error) -> KeystoneError {
        tracing::error!(error = %e.without_url(), url = %self.v3, "keystone unreachable");
        KeystoneError::Unavailable
    }

    fn password_auth(&self) -> Value {
        let user_domain = match &self.cfg.user_domain_id {
            Some(id) => json!({"id": id}),
            None => json!({"name": self.cfg.user_domain_name}),
        };
        let project_domain = match &self.cfg.project_domain_id {
            Some(id) => json!({"id": id}),
            None => json!({"name": self.cfg.project_domain_name}),
        };
        json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.cfg.username, "domain": user_domain, "password": self.cfg.password,
            }}},
            "scope": {"project": {"name": self.cfg.project_name, "domain": project_domain}},
        }})
    }

    /// Our own token, fetched (again) when missing, near expiry or `renew`.
    async fn service_token(&self, renew: bool) -> Result<String, KeystoneError> {
        let mut slot = self.service_token.lock().await;
        if !renew
            && let Some((token, until)) = slot.as_ref()
            && Instant::now() + RENEW_MARGIN < *until
        {
            return Ok(token.clone());
        }
        let resp = self
            .http
            .post(format!("{}/auth/tokens?nocatalog", self.v3))
            .json(&self.password_auth())
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        if status.as_u16() != 201 {
            tracing::error!(%status, url = %self.v3, user = %self.cfg.username,
                "keystone refused the service credentials of [keystone_authtoken]");
            return Err(KeystoneError::Unavailable);
        }
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or(KeystoneError::Unavailable)?;
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let ttl = remaining(body.pointer("/token/expires_at").and_then(Value::as_str))
            .unwrap_or(Duration::from_secs(3600));
        *slot = Some((token.clone(), Instant::now() + ttl));
        Ok(token)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<TokenInfo> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match cache.get(key) {
            Some(e) if e.until > Instant::now() => Some(e.info.clone()),
            Some(_) => {
                cache.remove(key);
                None
            }
            None => None,
        }
    }

    fn remember(&self, key: [u8; 32], info: TokenInfo, until: Instant) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            let now = Instant::now();
            cache.retain(|_, e| e.until > now);
            while cache.len() >= CACHE_CAPACITY {
                let Some(oldest) = cache.iter().min_by_key(|(_, e)| e.until).map(|(k, _)| *k)
                else {
                    break;
                };
                cache.remove(&oldest);
            }
        }
        cache.insert(key, CacheEntry { info, until });
    }

    /// Who holds `token`?
    pub(crate) async fn validate(&self, token: &str) -> Result<TokenInfo, KeystoneError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(KeystoneError::InvalidToken);
        }
        let key = digest(token);
        if let Some(info) = self.cached(&key) {
            return Ok(info);
        }
        let mut renew = false;
        for _ in 0..2 {
            let service = self.service_token(renew).await?;
            let resp = self
                .http
                .get(format!("{}/auth/tokens?nocatalog", self.v3))
                .header("X-Auth-Token", service)
                .header("X-Subject-Token", token)
                .send()
                .await
                .map_err(|e| self.unreachable(e))?;
            match resp.status().as_u16() {
                200 => {
                    let body: Value = resp.json().await.map_err(|_| KeystoneError::Unavailable)?;
                    let (info, left) = token_info(&body).ok_or(KeystoneError::InvalidToken)?;
                    let ttl = left.map_or(self.cfg.token_cache_time, |l| {
                        l.min(self.cfg.token_cache_time)
                    });
                    self.remember(key, info.clone(), Instant::now() + ttl);
                    return Ok(info);
                }
                404 => return Err(KeystoneError::InvalidToken),
                // Our own token expired or was revoked: renew it once.
                401 | 403 if !renew => renew = true,
                status => {
                    tracing::error!(%status, url = %self.v3, "keystone token validation failed");
                    return Err(KeystoneError::Unavailable);
                }
            }
        }
        Err(KeystoneError::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_url_gets_v3() {
        assert_eq!(v3_url("http://h:5000"), "http://h:5000/v3");
        assert_eq!(v3_url("http://h:5000/v3/"), "http://h:5000/v3");
        assert_eq!(v3_url("http://h/identity/"), "http://h/identity/v3");
    }

    #[test]
    fn validation_answer_gives_the_credentials() {
        let body = json!({"token": {
            "user": {"id": "u1", "domain": {"id": "default"}},
            "project": {"id": "p1", "domain": {"id": "default"}},
            "roles": [{"id": "r", "name": "member"}, {"id": "r2", "name": "reader"}],
            "expires_at": "2200-01-01T00:00:00.000000Z",
        }});
        let (info, left) = token_info(&body).expect("info");
        assert_eq!(info.user_id, "u1");
        assert_eq!(info.project_id.as_deref(), Some("p1"));
        assert_eq!(info.roles, vec!["member".to_string(), "reader".to_string()]);
        assert!(left.is_some_and(|l| l > Duration::from_secs(3600)));
        assert_eq!(info.creds().creator(), "u1:p1");
        assert!(token_info(&json!({"token": {}})).is_none());
    }

    #[test]
    fn debug_hides_the_password() {
        let cfg = KeystoneConfig {
            password: "s3cret".into(),
            ..Default::default()
        };
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[test]
    fn cache_is_bounded_and_expires() {
        let ks = Keystone::new(KeystoneConfig {
            auth_url: "http://127.0.0.1:1".into(),
            username: "u".into(),
            password: "p".into(),
            ..Default::default()
        })
        .expect("keystone");
        let info = TokenInfo {
            user_id: "u".into(),
            project_id: None,
            domain_id: None,
            roles: vec![],
        };
        let later = Instant::now() + Duration::from_secs(60);
        for i in 0..(CACHE_CAPACITY + 10) {
            ks.remember(digest(&i.to_string()), info.clone(), later);
        }
        assert!(ks.cache.lock().expect("lock").len() <= CACHE_CAPACITY);
        ks.remember(digest("old"), info.clone(), Instant::now());
        assert_eq!(ks.cached(&digest("old")), None);
    }
}
