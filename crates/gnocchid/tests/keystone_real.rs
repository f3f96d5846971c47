//! Keystone mode against a REAL Keystone: projects, users and tokens made via
//! its v3 API, then gnocchid validating those tokens.
//!
//! Needs `GNOCCHI_TEST_KEYSTONE_URL` (e.g. `http://127.0.0.1:5000/v3`); skips
//! with a message when unset. Start one with `eval "$(scripts/keystone-test-up.sh)"`
//! (see docs/auth.md). The bootstrap admin is `admin` in project `admin`,
//! domain Default, password `GNOCCHI_TEST_KEYSTONE_ADMIN_PASSWORD` (default `s3cret`).

mod auth_support;
mod common;

use auth_support::write_config;
use common::Server;
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Ks {
    c: reqwest::Client,
    url: String,
    admin: String,
}

async fn password_token(
    c: &reqwest::Client,
    url: &str,
    user: &str,
    password: &str,
    project: Value,
) -> String {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": project},
    }});
    let resp = c
        .post(format!("{url}/auth/tokens"))
        .json(&body)
        .send()
        .await
        .expect("keystone auth");
    assert_eq!(resp.status(), 201, "keystone refused {user}");
    resp.headers()["x-subject-token"]
        .to_str()
        .expect("token")
        .to_string()
}

impl Ks {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self
            .c
            .request(method, format!("{}{path}", self.url))
            .header("X-Auth-Token", &self.admin);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("keystone request");
        let st = resp.status();
        (st, resp.json().await.unwrap_or(Value::Null))
    }

    async fn create(&self, path: &str, key: &str, body: Value) -> String {
        let (st, v) = self
            .call(reqwest::Method::POST, path, Some(json!({key: body})))
            .await;
        assert_eq!(st, 201, "create {path}: {v}");
        v[key]["id"].as_str().expect("id").to_string()
    }

    async fn member_role(&self) -> String {
        let (_, v) = self
            .call(reqwest::Method::GET, "/roles?name=member", None)
            .await;
        match v["roles"].as_array().and_then(|r| r.first()) {
            Some(r) => r["id"].as_str().expect("id").to_string(),
            None => {
                self.create("/roles", "role", json!({"name": "member"}))
                    .await
            }
        }
    }
}

struct GnocchiApi {
    c: reqwest::Client,
    base: String,
}

impl GnocchiApi {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut r = self
            .c
            .request(method, format!("{}{path}", self.base))
            .header("Accept", "application/json");
        if let Some(t) = token {
            r = r.header("X-Auth-Token", t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.expect("gnocchi request")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn real_keystone_tokens_scope_gnocchi() {
    let Ok(url) = std::env::var("GNOCCHI_TEST_KEYSTONE_URL") else {
        eprintln!(
            "skipping real_keystone_tokens_scope_gnocchi: GNOCCHI_TEST_KEYSTONE_URL is unset \
             (start one with `eval \"$(scripts/keystone-test-up.sh)\"`, see docs/auth.md)"
        );
        return;
    };
    let url = url.trim_end_matches('/').to_string();
    let admin_password =
        std::env::var("GNOCCHI_TEST_KEYSTONE_ADMIN_PASSWORD").unwrap_or_else(|_| "s3cret".into());
    let c = common::client();
    let admin = password_token(
        &c,
        &url,
        "admin",
        &admin_password,
        json!({"name": "admin", "domain": {"id": "default"}}),
    )
    .await;
    let ks = Ks {
        c: c.clone(),
        url: url.clone(),
        admin: admin.clone(),
    };

    // Two projects, a member user in each.
    let suffix = format!("{}-{}", std::process::id(), common::free_port());
    let role = ks.member_role().await;
    let mut users = Vec::new();
    for tag in ["a", "b"] {
        let project = ks
            .create(
                "/projects",
                "project",
                json!({"name": format!("gnocchi-test-{tag}-{suffix}"), "domain_id": "default"}),
            )
            .await;
        let name = format!("gnocchi-user-{tag}-{suffix}");
        let password = format!("pw-{suffix}");
        let user = ks
            .create(
                "/users",
                "user",
                json!({"name": name, "password": password, "domain_id": "default"}),
            )
            .await;
        let (st, _) = ks
            .call(
                reqwest::Method::PUT,
                &format!("/projects/{project}/users/{user}/roles/{role}"),
                None,
            )
            .await;
        assert_eq!(st, 204);
        let token = password_token(&c, &url, &name, &password, json!({"id": project})).await;
        users.push((project, user, token));
    }
    let (pa, ua, ta) = users[0].clone();
    let (_pb, _ub, tb) = users[1].clone();

    // gnocchid authenticating as the bootstrap admin; no cache, so a
    // revocation shows at once.
    let dir = common::temp_dir("keystone-real");
    let conf = write_config(
        &dir.join("etc"),
        &format!(
            "[api]\nauth_mode = keystone\n[keystone_authtoken]\nauth_url = {url}\nusername = admin\npassword = {admin_password}\n\
             project_name = admin\nuser_domain_name = Default\nproject_domain_name = Default\ntoken_cache_time = 0\n"
        ),
    );
    let s = Server::start_in(
        dir.join("data"),
        &["--config-file", conf.to_str().expect("path")],
    );
    let api = GnocchiApi {
        c: c.clone(),
        base: s.base.clone(),
    };

    let resp = api
        .send(reqwest::Method::GET, "/v1/resource/generic", None, None)
        .await;
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        format!("Keystone uri=\"{url}\"").as_str()
    );
    let resp = api
        .send(
            reqwest::Method::GET,
            "/v1/resource/generic",
            Some("not-a-token"),
            None,
        )
        .await;
    assert_eq!(resp.status(), 401);

    let rid = "dddddddd-0000-4000-8000-000000000004";
    let resp = api
        .send(reqwest::Method::POST, "/v1/resource/generic", Some(&ta), Some(json!({"id": rid, "project_id": pa, "metrics": {"cpu": {"archive_policy_name": "low"}}})))
        .await;
    assert_eq!(resp.status(), 201);
    let r: Value = resp.json().await.expect("json");
    assert_eq!(r["creator"], format!("{ua}:{pa}"));

    let listed: Value = api
        .send(
            reqwest::Method::GET,
            "/v1/resource/generic",
            Some(&ta),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    let listed: Value = api
        .send(
            reqwest::Method::GET,
            "/v1/resource/generic",
            Some(&tb),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed, json!([]));
    let resp = api
        .send(
            reqwest::Method::GET,
            &format!("/v1/resource/generic/{rid}"),
            Some(&tb),
            None,
        )
        .await;
    assert_eq!(resp.status(), 404);
    let metric = r["metrics"]["cpu"].as_str().expect("metric");
    let resp = api
        .send(
            reqwest::Method::GET,
            &format!("/v1/metric/{metric}"),
            Some(&tb),
            None,
        )
        .await;
    assert_eq!(resp.status(), 403);
    let metrics: Value = api
        .send(reqwest::Method::GET, "/v1/metric", Some(&tb), None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(metrics, json!([]));
    // The bootstrap admin has the admin role: everything.
    let resp = api
        .send(
            reqwest::Method::GET,
            &format!("/v1/resource/generic/{rid}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(resp.status(), 200);
    let resp = api
        .send(reqwest::Method::GET, "/v1/status", Some(&admin), None)
        .await;
    assert_eq!(resp.status(), 200);
    let resp = api
        .send(reqwest::Method::GET, "/v1/status", Some(&ta), None)
        .await;
    assert_eq!(resp.status(), 403);

    // Revoked in Keystone → refused by gnocchid.
    let resp = c
        .delete(format!("{url}/auth/tokens"))
        .header("X-Auth-Token", &admin)
        .header("X-Subject-Token", &ta)
        .send()
        .await
        .expect("revoke");
    assert_eq!(resp.status(), 204);
    let resp = api
        .send(
            reqwest::Method::GET,
            "/v1/resource/generic",
            Some(&ta),
            None,
        )
        .await;
    assert_eq!(resp.status(), 401);

    // Best-effort cleanup of what this test made in Keystone.
    for (project, user, _) in &users {
        ks.call(reqwest::Method::DELETE, &format!("/users/{user}"), None)
            .await;
        ks.call(
            reqwest::Method::DELETE,
            &format!("/projects/{project}"),
            None,
        )
        .await;
    }
}
