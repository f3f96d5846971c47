//! The authenticated caller, as every mode (basic, remoteuser, keystone)
//! describes it to the policy rules.

/// The authenticated caller.
#[derive(Debug, Clone)]
pub(crate) struct Creds {
    pub(crate) user_id: String,
    pub(crate) project_id: Option<String>,
    pub(crate) domain_id: Option<String>,
    pub(crate) roles: Vec<String>,
    /// Keystone credentials: `user_id`, `project_id` and `domain_id` are known
    /// to the policy rules and listings are filtered to what the project may see.
    pub(crate) scoped: bool,
}

impl Creds {
    /// The identity stored as `creator` on what this caller creates.
    pub(crate) fn creator(&self) -> String {
        if self.scoped {
            format!(
                "{}:{}",
                self.user_id,
                self.project_id.as_deref().unwrap_or("")
            )
        } else {
            self.user_id.clone()
        }
    }
}
