//! How the API's write paths use the ingest service ([`gnocchi_ingest`]):
//! each route decodes its body into a [`Request`], then [`write`] plans it,
//! has the [`Authorizer`] check the whole plan against the policy rules, and
//! only then creates and appends. A request refused for any part of it
//! writes nothing.

use crate::AppState;
use crate::access::auth::Creds;
use crate::access::policy::Target;
use crate::access::targets::{metric_target, resource_target};
use crate::wire::error::{ApiError, ApiResult};
use gnocchi_index::{AttrValue, Metric, NewResource};
use gnocchi_ingest::{Plan, Request, Written};
use std::collections::HashMap;
use uuid::Uuid;

/// SPEC §1.7: the UUID of a resource id as a client writes it.
pub(crate) fn resource_uuid(id: &str, creator: Option<&str>) -> Result<Uuid, String> {
    gnocchi_index::resource_uuid(id, creator.unwrap_or(""))
}

/// Plan `request`, check it with `auth`, then write it.
pub(crate) async fn write(
    state: &AppState,
    auth: &mut Authorizer<'_>,
    request: Request,
) -> ApiResult<Written> {
    state.ingest.write(request, |plan| auth.check(plan)).await
}

/// The policy checks of a write plan. "post measures" decisions are memoized
/// per (creator, resource): the target renders the whole metric (archive
/// policy included) and costs more than the rest of a measure's ingestion,
/// and upstream's rules and ours only look at `creator`, `created_by_*` and
/// the resource's ownership. A policy file keying "post measures" on other
/// metric fields would need this memo removed.
pub(crate) struct Authorizer<'s> {
    state: &'s AppState,
    creds: &'s Creds,
    decided: HashMap<(Option<String>, Option<Uuid>), bool>,
}

impl<'s> Authorizer<'s> {
    pub(crate) fn new(state: &'s AppState, creds: &'s Creds) -> Self {
        Authorizer {
            state,
            creds,
            decided: HashMap::new(),
        }
    }

    /// 403 unless the caller may post measures to `metric`.
    pub(crate) fn post_measures(&mut self, metric: &Metric) -> ApiResult<()> {
        let key = (metric.creator.clone(), metric.resource_id);
        let allowed = match self.decided.get(&key) {
            Some(a) => *a,
            None => {
                let a =
                    self.state
                        .policy
                        .allowed("post measures", self.creds, &metric_target(metric));
                self.decided.insert(key, a);
                a
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    fn enforce(&self, rule: &str, target: &Target) -> ApiResult<()> {
        self.state.policy.enforce(rule, self.creds, target)
    }

    /// Upstream's 4xx for the plan's problems, then every creation and every
    /// metric written to against the rules.
    pub(crate) fn check(&mut self, plan: &Plan) -> ApiResult<()> {
        if let Some(e) = ApiError::from_problems(&plan.problems) {
            return Err(e);
        }
        for t in &plan.new_resource_types {
            let mut target = Target::new();
            target.insert("name".into(), Some(t.name.clone()));
            target.insert("state".into(), Some("creating".into()));
            self.enforce("create resource type", &target)?;
        }
        for r in &plan.new_resources {
            self.enforce("create resource", &new_resource_target(r))?;
        }
        for g in &plan.grown_resources {
            self.enforce("update resource", &resource_target(&g.resource))?;
        }
        for m in &plan.new_metrics {
            let new = &m.metric;
            let mut target = Target::new();
            target.insert("creator".into(), new.creator.clone());
            target.insert(
                "archive_policy_name".into(),
                Some(new.archive_policy_name.clone()),
            );
            target.insert("resource_id".into(), new.resource_id.map(|r| r.to_string()));
            target.insert(
                "original_resource_id".into(),
                Some(m.original_resource_id.clone()),
            );
            target.insert("name".into(), new.name.clone());
            target.insert("unit".into(), new.unit.clone());
            self.enforce("create metric", &target)?;
        }
        for a in &plan.appends {
            self.post_measures(&a.metric)?;
        }
        Ok(())
    }
}

/// What "create resource" sees of a resource a write protocol creates.
fn new_resource_target(r: &NewResource) -> Target {
    let mut target = Target::new();
    target.insert("id".into(), Some(r.id.to_string()));
    target.insert("resource_type".into(), Some(r.resource_type.clone()));
    target.insert("creator".into(), r.creator.clone());
    target.insert(
        "original_resource_id".into(),
        Some(r.original_resource_id.clone()),
    );
    for (k, v) in &r.attributes {
        if let AttrValue::String(s) = v {
            target.insert(k.clone(), Some(s.clone()));
        }
    }
    target
}

#[cfg(test)]
mod tests {
    use crate::ApiConfig;
    use crate::language::remote_write::encode_write_request;
    use crate::test_support::TestApi;
    use axum::http::StatusCode;
    use serde_json::json;

    /// An API whose policy refuses to create the resource `original_id`;
    /// new metrics get the archive policy `p` (rule `all`).
    async fn api_refusing(original_id: &str) -> TestApi {
        let api = TestApi::start_with(ApiConfig {
            policy_overrides: vec![(
                "create resource".into(),
                format!("not '{original_id}':%(original_resource_id)s"),
            )],
            ..Default::default()
        })
        .await;
        api.policy_60s("p", &["mean"]).await;
        let rule = json!({"name": "all", "metric_pattern": "*", "archive_policy_name": "p"});
        api.expect(
            StatusCode::CREATED,
            "POST",
            "/v1/archive_policy_rule",
            Some(rule),
        )
        .await;
        api
    }

    async fn assert_nothing_created(api: &TestApi, rtype: &str) {
        api.get(StatusCode::NOT_FOUND, &format!("/v1/resource_type/{rtype}"))
            .await;
        assert_eq!(
            api.get(StatusCode::OK, "/v1/resource/generic").await,
            json!([])
        );
        assert_eq!(api.get(StatusCode::OK, "/v1/metric").await, json!([]));
    }

    /// The refused resource comes second: the first must not be created either.
    #[tokio::test]
    async fn unauthorized_influxdb_write_creates_nothing() {
        let api = api_refusing("refused").await;
        let body = "cpu,host=web1 usage=1 1500000000000000000\n\
                    cpu,host=refused usage=2 1500000000000000000\n";
        let (status, text) = api
            .post_raw("/v1/influxdb/write?db=telegraf", "text/plain", body.into())
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
        assert_nothing_created(&api, "telegraf").await;
        // Without the refused resource, the same write goes through.
        let body = "cpu,host=web1 usage=1 1500000000000000000\n";
        let (status, text) = api
            .post_raw("/v1/influxdb/write?db=telegraf", "text/plain", body.into())
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{text}");
        let resources = api.get(StatusCode::OK, "/v1/resource/telegraf").await;
        assert_eq!(resources[0]["original_resource_id"], "web1");
    }

    #[tokio::test]
    async fn unauthorized_prometheus_write_creates_nothing() {
        let api = api_refusing("j@refused").await;
        let raw = encode_write_request(&[
            (
                vec![("__name__", "up"), ("job", "j"), ("instance", "web1")],
                vec![(1500, 1.0)],
            ),
            (
                vec![("__name__", "up"), ("job", "j"), ("instance", "refused")],
                vec![(1500, 1.0)],
            ),
        ]);
        let body = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let (status, text) = api
            .post_raw("/v1/prometheus/write", "application/x-protobuf", body)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
        assert_nothing_created(&api, "prometheus").await;
    }
}
