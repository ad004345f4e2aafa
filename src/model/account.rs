//! Roles and what each may do: the one definition the server enforces, the sidebar follows
//! and the tests walk.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::wire::wire_enum;

wire_enum! {
    /// Users hold one of the last three; `Worker` exists only on API tokens and may only
    /// drive the jobs it works on. The order of the user roles is their rank.
    #[derive(PartialOrd, Ord)]
    pub enum Role ("role") {
        Worker = "worker",
        Viewer = "viewer",
        Operator = "operator",
        Admin = "admin",
    }
}

/// Everything an identity may be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// See every page and read every API.
    ReadJobs,
    /// Pause, resume, cancel, retry, recover, acknowledge.
    ActOnJobs,
    /// A pipeline or worker reporting on the jobs it drives.
    ReportOnJobs,
    /// Change one's own password and manage one's own tokens.
    ManageOwnAccount,
    /// Users, every token, tools, settings.
    Administer,
    /// Read the audit log.
    ReadAudit,
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::ReadJobs,
        Permission::ActOnJobs,
        Permission::ReportOnJobs,
        Permission::ManageOwnAccount,
        Permission::Administer,
        Permission::ReadAudit,
    ];
}

impl Role {
    pub const USER_ROLES: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// The whole access policy.
    pub fn may(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Worker => matches!(permission, ReportOnJobs),
            Role::Viewer => matches!(permission, ReadJobs | ManageOwnAccount),
            Role::Operator => matches!(
                permission,
                ReadJobs | ManageOwnAccount | ActOnJobs | ReportOnJobs
            ),
            Role::Admin => true,
        }
    }

    /// Whether someone holding `self` may hand out a token of `role`: never more than
    /// they may do themselves.
    pub fn may_grant(self, role: Role) -> bool {
        self != Role::Worker
            && Permission::ALL
                .iter()
                .all(|p| !role.may(*p) || self.may(*p))
    }

    pub fn is_user_role(self) -> bool {
        self != Role::Worker
    }
}

wire_enum! {
    /// Whether what the audit log records worked, or was refused.
    pub enum AuditOutcome ("audit outcome") {
        Success = "success",
        Failure = "failure",
    }
}

/// Who is signed in, as the sidebar shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub id: Option<Uuid>,
    pub name: String,
    pub email: Option<String>,
    pub role: Role,
    pub must_change_password: bool,
}

impl CurrentUser {
    pub fn may(&self, permission: Permission) -> bool {
        self.role.may(permission)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    #[cfg_attr(feature = "ssr", sqlx(try_from = "String"))]
    pub role: Role,
    pub disabled: bool,
    pub must_change_password: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct TokenView {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    #[cfg_attr(feature = "ssr", sqlx(try_from = "String"))]
    pub role: Role,
    pub owner_email: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A token just created: the only time its secret is ever shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: String,
    pub view: TokenView,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct AuditEventView {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub client_addr: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub details: serde_json::Value,
    pub outcome: AuditOutcome,
}

/// One page of the audit log, newest first; `next` continues after its last row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub events: Vec<AuditEventView>,
    pub next: Option<super::Cursor>,
}

/// Where to go after signing in: `next` only when it is a path on this site. Anything that
/// a browser could read as another site (`//evil.example`, `https://...`, `/\evil`) gives
/// `None`, and the caller uses the default page.
pub fn local_path(next: &str) -> Option<&str> {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
        && next.len() <= 2048;
    local.then_some(next)
}

/// Where a signed-in person lands by default.
pub const HOME: &str = "/incidents";
