//! The requests both Swift drivers send: one `reqwest` client (kept-alive
//! connections, `swift_timeout`, TLS options), the session (token and
//! storage URL) renewed once when Swift answers 401, full container
//! listings, and bulk deletes.
//!
//! # Renewal
//!
//! Tokens expire (tempauth's `token_life`, Keystone's `expiration`) and can
//! be revoked; a daemon must not fail from then on. Any request answered 401
//! logs in again (once for all the requests that saw the same token: the
//! first one to get the renewal lock logs in, the others reuse its token) and
//! is sent again, once. The bulk middleware answers 200 and lists a 401 per
//! object instead; that too renews and sends the batch again.
//!
//! # Bulk delete
//!
//! `POST <storage URL>?bulk-delete`, `Content-Type: text/plain`, one
//! url-quoted `/<container>/<object>` per line, `Accept: application/json`;
//! at most the cluster's `max_deletes_per_request` (from `/info`, 10000 if
//! it does not say) per request. An object already gone is counted as "not
//! found", which is success.

use super::SwiftOptions;
use super::auth::{Session, login};
use crate::{Result, StorageError};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, Response, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// HTTP requests sent to Swift and its auth service by this process (for
/// the benchmark's requests per measure).
pub fn requests_sent() -> u64 {
    REQUESTS.load(Ordering::Relaxed)
}

pub(super) fn count_request() {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
}

/// Characters kept as they are in a container name (a path segment).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':');
/// In an object name `/` stays (as Python's `quote`, which bulk delete lines use).
const OBJECT: &AsciiSet = &SEGMENT.remove(b'/');

/// The bulk middleware's default `max_deletes_per_request`.
const DEFAULT_MAX_DELETES: usize = 10_000;
/// Objects per listing page (Swift's maximum).
const LIST_LIMIT: usize = 10_000;

/// One object of a listing, `bytes` its size.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) bytes: u64,
}

/// What a `PUT` of an object did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Put {
    Stored,
    /// The container does not exist.
    NoContainer,
    /// `If-None-Match: *` and the object exists.
    Exists,
}

struct Current {
    session: Option<Arc<Session>>,
    generation: u64,
}

pub(super) struct SwiftClient {
    http: reqwest::Client,
    options: SwiftOptions,
    current: parking_lot::Mutex<Current>,
    renewing: tokio::sync::Mutex<()>,
    max_deletes: usize,
    pub(super) parallel: usize,
}

fn send_error(what: String) -> impl FnOnce(reqwest::Error) -> StorageError {
    move |source| StorageError::Swift { what, source }
}

/// An unexpected answer, with the start of its body.
pub(super) async fn unexpected(request: &str, target: &str, r: Response) -> StorageError {
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    let body = body.trim();
    StorageError::SwiftStatus {
        request: request.to_string(),
        target: target.to_string(),
        status,
        detail: if body.is_empty() {
            String::new()
        } else {
            format!(": {}", body.chars().take(200).collect::<String>())
        },
    }
}

fn target(container: &str, object: Option<&str>) -> String {
    match object {
        Some(o) => format!("{container}/{o}"),
        None => container.to_string(),
    }
}

impl SwiftClient {
    /// Build the HTTP client, log in (or take the pre-authenticated token),
    /// and read the cluster's bulk delete limit.
    pub(super) async fn connect(options: SwiftOptions) -> Result<Self> {
        let parallel = super::PARALLEL;
        let mut builder = reqwest::Client::builder()
            .pool_max_idle_per_host(parallel)
            .danger_accept_invalid_certs(options.auth_insecure);
        if options.timeout > 0 {
            // Per connection attempt and per read, as swiftclient applies
            // it (a bulk delete of many objects takes long, but its answer
            // keeps coming).
            let t = Duration::from_secs(options.timeout);
            builder = builder.connect_timeout(t).read_timeout(t);
        }
        if let Some(path) = options.cacert.as_ref().filter(|c| !c.is_empty()) {
            let pem = std::fs::read(path)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(send_error(format!("reading swift_cacert {path}")))?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder
            .build()
            .map_err(send_error("building the HTTP client".into()))?;
        let preauth = match (&options.url, &options.preauthtoken) {
            (Some(url), Some(token)) if !url.is_empty() && !token.is_empty() => {
                Some(Arc::new(Session {
                    storage_url: url.trim_end_matches('/').to_string(),
                    token: token.clone(),
                }))
            }
            _ => None,
        };
        let mut client = SwiftClient {
            http,
            options,
            current: parking_lot::Mutex::new(Current {
                session: preauth,
                generation: 1,
            }),
            renewing: tokio::sync::Mutex::new(()),
            max_deletes: DEFAULT_MAX_DELETES,
            parallel,
        };
        let (session, _) = client.session().await?;
        client.max_deletes = client.bulk_limit(&session.storage_url).await;
        Ok(client)
    }

    /// The storage URL of the current session.
    pub(super) async fn storage_url(&self) -> Result<String> {
        Ok(self.session().await?.0.storage_url.clone())
    }

    /// The bulk middleware's `max_deletes_per_request`, from `GET /info`.
    async fn bulk_limit(&self, storage_url: &str) -> usize {
        let Ok(info) = url::Url::parse(storage_url).and_then(|u| u.join("/info")) else {
            return DEFAULT_MAX_DELETES;
        };
        count_request();
        let r = match self.http.get(info.clone()).send().await {
            Ok(r) if r.status().is_success() => r,
            _ => return DEFAULT_MAX_DELETES,
        };
        let v: Value = r.json().await.unwrap_or_default();
        match v.get("bulk_delete") {
            None => {
                tracing::warn!(
                    %info,
                    "Swift does not list the bulk middleware: deleting metrics and processed measures needs it (add `bulk` to the proxy pipeline)"
                );
                DEFAULT_MAX_DELETES
            }
            Some(b) => b
                .get("max_deletes_per_request")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0)
                .unwrap_or(DEFAULT_MAX_DELETES),
        }
    }

    /// The current session and its generation, logging in if there is none.
    async fn session(&self) -> Result<(Arc<Session>, u64)> {
        let generation = {
            let cur = self.current.lock();
            if let Some(s) = &cur.session {
                return Ok((s.clone(), cur.generation));
            }
            cur.generation
        };
        self.renew(generation).await
    }

    /// Log in again, unless another request already did since `seen`.
    async fn renew(&self, seen: u64) -> Result<(Arc<Session>, u64)> {
        let _one = self.renewing.lock().await;
        {
            let cur = self.current.lock();
            if cur.generation != seen
                && let Some(s) = &cur.session
            {
                return Ok((s.clone(), cur.generation));
            }
        }
        let session = Arc::new(login(&self.http, &self.options).await?);
        let mut cur = self.current.lock();
        cur.generation += 1;
        cur.session = Some(session.clone());
        tracing::debug!(url = %session.storage_url, "logged in to Swift");
        Ok((session, cur.generation))
    }

    fn url(storage_url: &str, container: &str, object: Option<&str>) -> String {
        let mut url = format!("{storage_url}/{}", utf8_percent_encode(container, SEGMENT));
        if let Some(o) = object {
            url.push('/');
            url.extend(utf8_percent_encode(o, OBJECT));
        }
        url
    }

    /// Send the request `build` makes for a session; on a 401, log in again
    /// and send it once more.
    async fn call(
        &self,
        what: impl Fn() -> String,
        build: impl Fn(&reqwest::Client, &Session) -> reqwest::RequestBuilder,
    ) -> Result<Response> {
        let (session, generation) = self.session().await?;
        count_request();
        let r = build(&self.http, &session)
            .header("X-Auth-Token", &session.token)
            .send()
            .await
            .map_err(send_error(what()))?;
        if r.status() != StatusCode::UNAUTHORIZED {
            return Ok(r);
        }
        tracing::info!("Swift refused the token (401): logging in again");
        let (session, _) = self.renew(generation).await?;
        count_request();
        build(&self.http, &session)
            .header("X-Auth-Token", &session.token)
            .send()
            .await
            .map_err(send_error(what()))
    }

    /// A request on a container or an object.
    async fn request(
        &self,
        method: Method,
        container: &str,
        object: Option<&str>,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Result<Response> {
        self.call(
            || format!("{method} {}", target(container, object)),
            |http, s| {
                let mut rb = http
                    .request(method.clone(), Self::url(&s.storage_url, container, object))
                    .query(query);
                for (k, v) in headers {
                    rb = rb.header(*k, *v);
                }
                if let Some(b) = &body {
                    // Swift refuses a PUT without a length (411), and
                    // reqwest sends none for an empty body.
                    rb = rb
                        .header(reqwest::header::CONTENT_LENGTH, b.len())
                        .body(b.clone());
                }
                rb
            },
        )
        .await
    }

    /// Create a container (with `swift_storage_policy`); an existing one is fine.
    pub(super) async fn put_container(&self, container: &str) -> Result<()> {
        let policy = self
            .options
            .storage_policy
            .as_deref()
            .filter(|p| !p.is_empty());
        let headers: Vec<(&str, &str)> = policy
            .map(|p| ("X-Storage-Policy", p))
            .into_iter()
            .collect();
        let r = self
            .request(Method::PUT, container, None, &[], &headers, None)
            .await?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(unexpected("PUT", container, r).await)
        }
    }

    /// Delete a container: `Ok(false)` if it still holds objects (409); a
    /// missing one is fine.
    pub(super) async fn delete_container(&self, container: &str) -> Result<bool> {
        let r = self
            .request(Method::DELETE, container, None, &[], &[], None)
            .await?;
        match r.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(true),
            StatusCode::CONFLICT => Ok(false),
            _ => Err(unexpected("DELETE", container, r).await),
        }
    }

    /// The number of objects in a container (`None`: no such container).
    pub(super) async fn object_count(&self, container: &str) -> Result<Option<u64>> {
        let r = self
            .request(Method::HEAD, container, None, &[], &[], None)
            .await?;
        match r.status() {
            s if s.is_success() => Ok(Some(
                r.headers()
                    .get("x-container-object-count")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(unexpected("HEAD", container, r).await),
        }
    }

    /// `PUT` an object (`create_only`: `If-None-Match: *`).
    pub(super) async fn put_object(
        &self,
        container: &str,
        object: &str,
        data: Bytes,
        create_only: bool,
    ) -> Result<Put> {
        let headers: &[(&str, &str)] = if create_only {
            &[("If-None-Match", "*")]
        } else {
            &[]
        };
        let r = self
            .request(
                Method::PUT,
                container,
                Some(object),
                &[],
                headers,
                Some(data),
            )
            .await?;
        match r.status() {
            s if s.is_success() => Ok(Put::Stored),
            StatusCode::NOT_FOUND => Ok(Put::NoContainer),
            StatusCode::PRECONDITION_FAILED => Ok(Put::Exists),
            _ => Err(unexpected("PUT", &target(container, Some(object)), r).await),
        }
    }

    /// `GET` an object (`None`: it or its container does not exist).
    pub(super) async fn get_object(
        &self,
        container: &str,
        object: &str,
    ) -> Result<Option<Vec<u8>>> {
        let r = self
            .request(Method::GET, container, Some(object), &[], &[], None)
            .await?;
        match r.status() {
            s if s.is_success() => Ok(Some(
                r.bytes()
                    .await
                    .map_err(send_error(format!("GET {container}/{object}")))?
                    .to_vec(),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(unexpected("GET", &target(container, Some(object)), r).await),
        }
    }

    /// `GET` each object, [`SwiftClient::parallel`] at a time, in the order given.
    pub(super) async fn get_all(
        &self,
        objects: Vec<(String, String)>,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        futures::stream::iter(objects)
            .map(|(c, o)| async move { self.get_object(&c, &o).await })
            .buffered(self.parallel)
            .try_collect()
            .await
    }

    /// `PUT` each object, [`SwiftClient::parallel`] at a time; a missing
    /// container is created and the object sent again.
    ///
    /// The proxy caches "no such container" (for a tenth of
    /// `recheck_container_existence`, 6 s by default), and a `PUT` racing the
    /// container's creation can put that answer back in the cache after the
    /// creation cleared it; so the container `PUT` (which clears the cache
    /// again) and the object `PUT` are retried, backing off, for up to about
    /// 13 s.
    pub(super) async fn put_all(&self, objects: Vec<(String, String, Vec<u8>)>) -> Result<()> {
        futures::stream::iter(objects)
            .map(|(c, o, data)| async move {
                let data = Bytes::from(data);
                let mut wait = Duration::from_millis(50);
                while self.put_object(&c, &o, data.clone(), false).await? == Put::NoContainer {
                    if wait > Duration::from_secs(8) {
                        return Err(StorageError::Backend(format!(
                            "swift: container {c} was created but {o} cannot be written to it (404)"
                        )));
                    }
                    self.put_container(&c).await?;
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Ok(())
            })
            .buffer_unordered(self.parallel)
            .try_collect::<()>()
            .await
    }

    /// Every object of a container (under `prefix`), page after page;
    /// `None`: no such container.
    pub(super) async fn list(
        &self,
        container: &str,
        prefix: Option<&str>,
    ) -> Result<Option<Vec<Entry>>> {
        let mut out = Vec::new();
        let mut marker = String::new();
        loop {
            let limit = LIST_LIMIT.to_string();
            let mut query = vec![("format", "json"), ("limit", limit.as_str())];
            if !marker.is_empty() {
                query.push(("marker", marker.as_str()));
            }
            if let Some(p) = prefix {
                query.push(("prefix", p));
            }
            let r = self
                .request(Method::GET, container, None, &query, &[], None)
                .await?;
            match r.status() {
                StatusCode::NOT_FOUND => return Ok(None),
                StatusCode::NO_CONTENT => return Ok(Some(out)),
                s if s.is_success() => {}
                _ => return Err(unexpected("GET", container, r).await),
            }
            let page: Vec<Value> = r
                .json()
                .await
                .map_err(send_error(format!("listing {container}")))?;
            let n = page.len();
            for v in page {
                let Some(Value::String(name)) = v.get("name") else {
                    continue;
                };
                let bytes = v.get("bytes").and_then(Value::as_u64).unwrap_or(0);
                out.push(Entry {
                    name: name.clone(),
                    bytes,
                });
            }
            match out.last() {
                Some(last) if n >= LIST_LIMIT => marker = last.name.clone(),
                _ => return Ok(Some(out)),
            }
        }
    }

    /// Delete these `(container, object)`s with the bulk middleware, up to
    /// the cluster's limit per request, a few requests at a time.
    pub(super) async fn bulk_delete(&self, objects: Vec<(String, String)>) -> Result<()> {
        if objects.is_empty() {
            return Ok(());
        }
        let bodies: Vec<Bytes> = objects
            .chunks(self.max_deletes)
            .map(|chunk| {
                let mut body = String::new();
                for (c, o) in chunk {
                    let line = format!("/{c}/{o}");
                    body.extend(utf8_percent_encode(&line, OBJECT));
                    body.push('\n');
                }
                Bytes::from(body)
            })
            .collect();
        futures::stream::iter(bodies)
            .map(|body| self.bulk_delete_one(body))
            .buffer_unordered(4)
            .try_collect::<()>()
            .await
    }

    async fn bulk_delete_one(&self, body: Bytes) -> Result<()> {
        let mut renewed = false;
        loop {
            let (_, generation) = self.session().await?;
            let r = self
                .call(
                    || "bulk-delete".to_string(),
                    |http, s| {
                        http.post(format!("{}?bulk-delete", s.storage_url))
                            .header("Content-Type", "text/plain")
                            .header("Accept", "application/json")
                            .body(body.clone())
                    },
                )
                .await?;
            if !r.status().is_success() {
                return Err(unexpected("bulk-delete", "the account", r).await);
            }
            let v: Value = r
                .json()
                .await
                .map_err(send_error("reading the bulk-delete answer".into()))?;
            let errors: Vec<(String, String)> = v
                .get("Errors")
                .and_then(Value::as_array)
                .map(|errors| {
                    errors
                        .iter()
                        .filter_map(|e| {
                            let e = e.as_array()?;
                            Some((
                                e.first()?.as_str()?.to_string(),
                                e.get(1)?.as_str()?.to_string(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let status = v
                .get("Response Status")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let unauthorized =
                status.starts_with("401") || errors.iter().any(|(_, s)| s.starts_with("401"));
            if unauthorized && !renewed {
                // The middleware deletes each object as a sub-request, so an
                // expired token shows here rather than as the answer's status.
                tracing::info!("Swift refused the token in a bulk delete: logging in again");
                self.renew(generation).await?;
                renewed = true;
                continue;
            }
            let failed: Vec<&(String, String)> = errors
                .iter()
                .filter(|(_, s)| !s.starts_with("404"))
                .collect();
            if let Some((name, st)) = failed.first() {
                return Err(StorageError::SwiftStatus {
                    request: "bulk-delete".into(),
                    target: name.clone(),
                    status: st
                        .split_whitespace()
                        .next()
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0),
                    detail: format!(": {st} ({} objects not deleted)", failed.len()),
                });
            }
            if !(status.is_empty() || status.starts_with('2') || status.starts_with("404")) {
                return Err(StorageError::SwiftStatus {
                    request: "bulk-delete".into(),
                    target: "the account".into(),
                    status: status
                        .split_whitespace()
                        .next()
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0),
                    detail: format!(": {status}"),
                });
            }
            return Ok(());
        }
    }
}
