//! Multi-tenancy: what a keystone caller may see.
//!
//! In keystone mode, a caller whom a listing rule does not allow
//! unconditionally sees only what the rule would grant their project: resources
//! whose `project_id` is theirs (if the rule grants on `project_id`) or created
//! by their project (if it grants on `created_by_project_id`); metrics created
//! by their project or attached to a resource of their project. If the rule
//! grants neither, 403 `Insufficient privileges`. Single resources another
//! project owns answer 404, hiding their existence. Basic and remoteuser modes
//! filter nothing, as upstream.

use crate::access::auth::Creds;
use crate::access::policy::{Policy, Target};
use crate::wire::error::{ApiError, ApiResult};
use gnocchi_index::{CmpOp, Filter, FilterValue, MetricVisibility};

fn insufficient() -> ApiError {
    ApiError::insufficient_privileges()
}

fn target(pairs: &[(&str, Option<&str>)]) -> Target {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect()
}

/// The filter restricting a resource listing or search under `rule`;
/// `None`: the caller may see every resource.
pub(crate) fn resource_filter(
    policy: &Policy,
    rule: &str,
    creds: &Creds,
    resource_type: &str,
) -> ApiResult<Option<Filter>> {
    if !creds.scoped {
        return Ok(None);
    }
    let rtype = Some(resource_type);
    if policy.allowed(rule, creds, &target(&[("resource_type", rtype)])) {
        return Ok(None);
    }
    let project = creds.project_id.as_deref();
    let mut any = Vec::new();
    if policy.allowed(
        rule,
        creds,
        &target(&[("resource_type", rtype), ("project_id", project)]),
    ) {
        any.push(Filter::Compare {
            op: CmpOp::Eq,
            field: "project_id".into(),
            value: project.map_or(FilterValue::Null, |p| FilterValue::String(p.into())),
        });
    }
    if policy.allowed(
        rule,
        creds,
        &target(&[("resource_type", rtype), ("created_by_project_id", project)]),
    ) {
        any.push(match project.filter(|p| !p.is_empty()) {
            Some(p) => Filter::Like {
                field: "creator".into(),
                pattern: FilterValue::String(format!("%:{}", like_escape(p))),
            },
            None => Filter::Compare {
                op: CmpOp::Eq,
                field: "creator".into(),
                value: FilterValue::Null,
            },
        });
    }
    if any.is_empty() {
        return Err(insufficient());
    }
    Ok(Some(Filter::Or(any)))
}

/// Keystone ids are hex; anything else is matched literally where it can be.
fn like_escape(p: &str) -> String {
    // The index's LIKE has no escape character: drop the wildcards rather
    // than let a project id widen the match.
    p.replace(['%', '_'], "")
}

/// `filter` AND the caller's restriction.
pub(crate) fn restrict(filter: Option<Filter>, restriction: Option<Filter>) -> Option<Filter> {
    match (filter, restriction) {
        (f, None) => f,
        (None, r) => r,
        (Some(f), Some(r)) => Some(Filter::And(vec![r, f])),
    }
}

/// `filter` restricted to the resources of `resource_type` the caller may see
/// under `rule` (a listing, a search or a batch delete).
pub(crate) fn restrict_resources(
    policy: &Policy,
    rule: &str,
    creds: &Creds,
    resource_type: &str,
    filter: Option<Filter>,
) -> ApiResult<Option<Filter>> {
    let restriction = resource_filter(policy, rule, creds, resource_type)?;
    Ok(restrict(filter, restriction))
}

/// The restriction of a metric listing under `rule`; `None`: every metric.
pub(crate) fn metric_visibility(
    policy: &Policy,
    rule: &str,
    creds: &Creds,
) -> ApiResult<Option<MetricVisibility>> {
    if !creds.scoped || policy.allowed(rule, creds, &Target::new()) {
        return Ok(None);
    }
    let project = creds.project_id.as_deref();
    let mut v = MetricVisibility::default();
    if let Some(p) = project {
        if policy.allowed(rule, creds, &target(&[("created_by_project_id", project)])) {
            v.created_by_project = Some(p.to_string());
        }
        if policy.allowed(rule, creds, &target(&[("resource.project_id", project)])) {
            v.resource_project = Some(p.to_string());
        }
    }
    if v.created_by_project.is_none() && v.resource_project.is_none() {
        return Err(insufficient());
    }
    Ok(Some(v))
}

/// `rule` on one resource: 403 if denied, except that a keystone caller whose
/// project could see some resources gets `not_found` instead, as if this one did
/// not exist.
pub(crate) fn check_resource(
    policy: &Policy,
    rule: &str,
    creds: &Creds,
    resource_type: &str,
    resource: &Target,
    not_found: impl FnOnce() -> ApiError,
) -> ApiResult<()> {
    if policy.allowed(rule, creds, resource) {
        return Ok(());
    }
    if creds.scoped && resource_filter(policy, rule, creds, resource_type).is_ok() {
        return Err(not_found());
    }
    Err(ApiError::forbidden())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(project: &str) -> Creds {
        Creds {
            user_id: "u".into(),
            project_id: Some(project.into()),
            domain_id: None,
            roles: vec!["member".into()],
            scoped: true,
        }
    }

    #[test]
    fn keystone_members_get_their_project_filter() {
        let p = Policy::default();
        let f = resource_filter(&p, "list resource", &member("pa"), "generic")
            .expect("allowed")
            .expect("filtered");
        let Filter::Or(parts) = f else {
            panic!("or expected")
        };
        assert_eq!(parts.len(), 2);
        let mut admin = member("pa");
        admin.roles = vec!["admin".into()];
        assert_eq!(
            resource_filter(&p, "list resource", &admin, "generic").expect("ok"),
            None
        );
        let v = metric_visibility(&p, "list metric", &member("pa"))
            .expect("allowed")
            .expect("filtered");
        assert_eq!(v.created_by_project.as_deref(), Some("pa"));
        assert_eq!(v.resource_project.as_deref(), Some("pa"));
    }

    #[test]
    fn no_grant_is_insufficient_privileges() {
        let p = Policy::with_overrides(&[
            ("list resource".into(), "role:admin".into()),
            ("list metric".into(), "role:admin".into()),
        ]);
        let e = resource_filter(&p, "list resource", &member("pa"), "generic").unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::FORBIDDEN);
        assert!(metric_visibility(&p, "list metric", &member("pa")).is_err());
    }

    #[test]
    fn basic_mode_is_never_filtered() {
        let p = Policy::default();
        let mut c = member("pa");
        c.scoped = false;
        c.project_id = None;
        assert_eq!(
            resource_filter(&p, "list resource", &c, "generic").expect("ok"),
            None
        );
        assert_eq!(metric_visibility(&p, "list metric", &c).expect("ok"), None);
    }
}
