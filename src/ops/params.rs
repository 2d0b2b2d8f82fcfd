//! Parameter values a request gives (an action, a command sweep, a
//! command deploy): checked before anything is queued — a refusal is
//! answered 400 and audited as denied (`action.params`, `sweep.params`,
//! `deploy.params`) — and again by the job's first step when it starts.

use std::collections::BTreeMap;

use crate::audit::Event;
use crate::auth::Actor;
use crate::config::App;
use crate::host::Host;
use crate::jobs::Step;
use crate::steps::Work;
use crate::steps::params::{self, CheckParams, Lookup, Of};
use crate::{Context, Error, Result};

/// The values `of` runs with, from `given` (see `steps::params::values`);
/// a refusal is not audited: the scheduler asks for defaults this way.
pub(super) async fn values(
    ctx: &Context,
    app: &App,
    of: &Of,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let host = Host::of(&ctx.config, app)?;
    let look = Lookup {
        app,
        host: &host,
        db: &ctx.db,
    };
    params::values(&look, of, given).await
}

/// Like [`values`], for a request of `actor`: a refusal is audited.
pub(super) async fn checked(
    ctx: &Context,
    actor: &Actor,
    app: &App,
    of: &Of,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    match values(ctx, app, of, given).await {
        Err(Error::BadRequest(why)) => {
            let (action, detail) = match of {
                Of::Action(name) => (
                    "action.params",
                    serde_json::json!({"action": name, "why": why}),
                ),
                Of::Sweep(name) => (
                    "sweep.params",
                    serde_json::json!({"sweep": name, "why": why}),
                ),
                Of::Deploy(git_ref) => (
                    "deploy.params",
                    serde_json::json!({"ref": git_ref, "why": why}),
                ),
            };
            let event = Event::new(actor, action, &app.name).detail(detail);
            ctx.audit.refused(event).await?;
            Err(Error::BadRequest(why))
        }
        values => values,
    }
}

/// The job's first step, which checks `values` again as it starts; none
/// when there are no parameters.
pub(super) fn check_step(of: Of, values: &BTreeMap<String, String>) -> Option<Step> {
    (!values.is_empty()).then(|| Step {
        title: "Check the parameters".into(),
        work: Work::CheckParams(CheckParams {
            of,
            values: values.clone(),
        }),
        timeout: None,
    })
}

/// `what` followed by the values, as job titles show them.
pub(super) fn with_values(what: &str, values: &BTreeMap<String, String>) -> String {
    if values.is_empty() {
        what.to_owned()
    } else {
        format!("{what} ({})", params::shown(values))
    }
}
