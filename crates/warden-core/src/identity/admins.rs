//! Root admins of partner apps (SPEC §5.2, §5.5): the admin lists last seen per app, and the users
//! removed from a comet app's list who keep ordinary admin rights until an operator revokes them. A
//! change of the admin list of any other app type is refused. Pure; the server persists it.
use crate::bundle::Bundle;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What Warden remembers about one app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppAdmins {
    /// App type when last seen.
    pub app_type: String,
    /// `ApplicationConfig.AdminUsers` when last seen (sorted).
    pub admin_users: Vec<String>,
    /// Removed from a comet app's list, not revoked: `ADMIN`.
    pub remembered: BTreeSet<String>,
}

/// The remembered admin state of every app (the content of `--state-dir/admins.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminMemory {
    /// Format version.
    pub version: u32,
    /// By app ARN.
    pub apps: BTreeMap<String, AppAdmins>,
}

/// The state format version.
pub const VERSION: u32 = 1;

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v.dedup();
    v
}

/// Why a change of an app's admin list is refused, as a problem line (`path: field: message`): the
/// file and field, the app, the old and new lists, and what the operator can do.
fn refusal(app: &crate::bundle::PartnerApp, was: &[String], now: &[String]) -> String {
    format!(
        "{}: ApplicationConfig.AdminUsers: partner app `{}` ({}, type {}) cannot change its admin users (only comet \
         apps support updating root admins): was [{}], now [{}]; restore the list, or remove the app from the bundle \
         and add it again (its remembered admins are then forgotten)",
        app.file,
        app.name,
        app.arn,
        app.app_type,
        was.join(", "),
        now.join(", ")
    )
}

impl AdminMemory {
    /// Whether `user` is a remembered (former root) admin of `app`.
    pub fn is_remembered(&self, app: &str, user: &str) -> bool {
        self.apps.get(app).is_some_and(|a| a.remembered.contains(user))
    }

    /// The memory after activating `bundle`, or one message per app whose admin change is refused
    /// (see [`refusal`]). Apps no longer in the bundle are forgotten.
    pub fn transition(&self, bundle: &Bundle) -> Result<AdminMemory, Vec<String>> {
        self.transition_after(None, bundle)
    }

    /// [`AdminMemory::transition`] of a memory that a fleet of replicas shares (`--state
    /// dynamodb://TABLE`), by the replica that serves `active`. The memory may have been written by
    /// another replica on another bundle (a rollout is never instantaneous), so a demotion seen by
    /// any replica must stay remembered: users missing from the new list that the shared memory
    /// last saw listed are remembered (as in `transition`), and a remembered user on the new list is
    /// forgotten as remembered only when this replica's own bundle adds them (they were not on the
    /// list `active` had). A user that another replica demoted while `active` and `bundle` here both
    /// still list them stays remembered: a root admin here (the bundle decides), an admin wherever
    /// the demoting bundle serves. With a single writer, `active` lists what the memory last saw
    /// and this is exactly `transition`. With `active` `None` (nothing activated yet) it is
    /// `transition`.
    pub fn transition_after(&self, active: Option<&Bundle>, bundle: &Bundle) -> Result<AdminMemory, Vec<String>> {
        let mut next = AdminMemory { version: VERSION, apps: BTreeMap::new() };
        let mut refused = Vec::new();
        let mut arns: Vec<&String> = bundle.partner_apps.keys().collect();
        arns.sort();
        for arn in arns {
            let Some(app) = bundle.partner_apps.get(arn) else { continue };
            let now = sorted(&app.admin_users);
            let entry = match self.apps.get(arn) {
                None => AppAdmins { app_type: app.app_type.clone(), admin_users: now, remembered: BTreeSet::new() },
                Some(prev) if prev.admin_users == now => {
                    AppAdmins { app_type: app.app_type.clone(), admin_users: now, remembered: prev.remembered.clone() }
                }
                Some(prev) if app.app_type == "comet" => {
                    let mut remembered = prev.remembered.clone();
                    remembered.extend(prev.admin_users.iter().filter(|u| !now.contains(u)).cloned());
                    // Root admins again, unless this replica already listed them (see above).
                    let listed_here = active.and_then(|b| b.partner_apps.get(arn)).map(|a| &a.admin_users);
                    remembered.retain(|u| !now.contains(u) || listed_here.is_some_and(|l| l.contains(u)));
                    AppAdmins { app_type: app.app_type.clone(), admin_users: now, remembered }
                }
                Some(prev) => {
                    refused.push(refusal(app, &prev.admin_users, &now));
                    prev.clone()
                }
            };
            next.apps.insert(arn.clone(), entry);
        }
        if refused.is_empty() { Ok(next) } else { Err(refused) }
    }

    /// The memory without `user` as a remembered admin of `app`.
    pub fn revoke(&self, app: &str, user: &str) -> Result<AdminMemory, RevokeError> {
        let mut next = self.clone();
        let Some(a) = next.apps.get_mut(app) else {
            return Err(RevokeError::UnknownApp { app: app.to_owned() });
        };
        if !a.remembered.remove(user) {
            return Err(RevokeError::NotRemembered { app: app.to_owned(), user: user.to_owned() });
        }
        Ok(next)
    }
}

/// Why a remembered admin cannot be revoked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevokeError {
    /// The app is not in the active bundle.
    #[error("partner app `{app}` is not known")]
    UnknownApp {
        /// The app ARN given.
        app: String,
    },
    /// The user is not a remembered admin of the app (never was, already revoked, or a root admin).
    #[error("user `{user}` is not a remembered admin of `{app}`")]
    NotRemembered {
        /// The app ARN.
        app: String,
        /// The user name given.
        user: String,
    },
}
