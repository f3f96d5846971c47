//! Shared by the auth tests: a config file writer and a fake Keystone v3
//! (token issue + validation, the two calls gnocchid makes).

#![allow(dead_code)]

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Write `text` as `gnocchi.conf` in `dir`; returns its path.
pub(crate) fn write_config(dir: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("config dir");
    let path = dir.join("gnocchi.conf");
    std::fs::write(&path, text).expect("write config");
    path
}

pub(crate) const SERVICE_USER: &str = "gnocchi";
pub(crate) const SERVICE_PASSWORD: &str = "svc-pass";
const SERVICE_TOKEN: &str = "svc-token-1";

/// A user token the fake knows.
#[derive(Clone)]
pub(crate) struct FakeUser {
    pub user_id: &'static str,
    pub project_id: &'static str,
    pub roles: &'static [&'static str],
}

pub(crate) struct FakeKeystone {
    pub url: String,
    /// How many user-token validations reached the fake.
    pub validations: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeKeystone {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct FakeState {
    users: HashMap<String, FakeUser>,
    validations: Arc<AtomicUsize>,
}

fn token_body(u: &FakeUser) -> Value {
    json!({"token": {
        "methods": ["password"],
        "user": {"id": u.user_id, "name": u.user_id, "domain": {"id": "default", "name": "Default"}},
        "project": {"id": u.project_id, "name": u.project_id, "domain": {"id": "default", "name": "Default"}},
        "roles": u.roles.iter().map(|r| json!({"id": format!("id-{r}"), "name": r})).collect::<Vec<_>>(),
        "expires_at": "2200-01-01T00:00:00.000000Z",
        "issued_at": "2020-01-01T00:00:00.000000Z",
    }})
}

async fn issue(State(_): State<Arc<FakeState>>, body: axum::body::Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let user = v
        .pointer("/auth/identity/password/user/name")
        .and_then(Value::as_str);
    let pass = v
        .pointer("/auth/identity/password/user/password")
        .and_then(Value::as_str);
    if user != Some(SERVICE_USER) || pass != Some(SERVICE_PASSWORD) {
        return (StatusCode::UNAUTHORIZED, "bad credentials").into_response();
    }
    let svc = FakeUser {
        user_id: SERVICE_USER,
        project_id: "service",
        roles: &["service"],
    };
    (
        StatusCode::CREATED,
        [("X-Subject-Token", SERVICE_TOKEN)],
        axum::Json(token_body(&svc)),
    )
        .into_response()
}

async fn validate(State(st): State<Arc<FakeState>>, headers: HeaderMap) -> Response {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    if h("x-auth-token") != SERVICE_TOKEN {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    st.validations.fetch_add(1, Ordering::SeqCst);
    match st.users.get(h("x-subject-token")) {
        Some(u) => axum::Json(token_body(u)).into_response(),
        None => (StatusCode::NOT_FOUND, "Could not find token").into_response(),
    }
}

impl FakeKeystone {
    /// Serve on a free port; `users` maps token → user.
    pub(crate) async fn start(users: &[(&str, FakeUser)]) -> FakeKeystone {
        let validations = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(FakeState {
            users: users
                .iter()
                .map(|(t, u)| (t.to_string(), u.clone()))
                .collect(),
            validations: validations.clone(),
        });
        let app = Router::new()
            .route("/v3/auth/tokens", post(issue).get(validate))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeKeystone {
            url: format!("http://127.0.0.1:{port}/v3"),
            validations,
            task,
        }
    }

    /// A gnocchi.conf for keystone mode against this fake.
    pub(crate) fn config(&self, extra: &str) -> String {
        format!(
            "[api]\nauth_mode = keystone\n\n[keystone_authtoken]\nauth_url = {}\nwww_authenticate_uri = {}\nusername = {SERVICE_USER}\npassword = {SERVICE_PASSWORD}\nproject_name = service\nuser_domain_name = Default\nproject_domain_name = Default\n{extra}\n",
            self.url, self.url
        )
    }
}
