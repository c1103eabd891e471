//! What happens around a local run while a rollout is paused at a checkpoint: EventBridge
//! delivering the sim's alarm state changes to the `relay` function, and an operator answering
//! the pause (`stepdeploy local --approve`), both on virtual time, after each move of the clock.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use stepdeploy_asl::invoke::{Functions, LocalFunctions};
use stepdeploy_asl::tokens::TaskTokens;
use stepdeploy_core::config::Config;
use stepdeploy_core::ports::AlarmState;
use stepdeploy_core::steps::checkpoint::{Answer, answer};
use stepdeploy_core::steps::{LockRecord, lock_parameter};
use stepdeploy_sim::Sim;

/// How the local operator answers a rollout paused at a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Approve {
    /// Approves as soon as it pauses.
    #[default]
    Auto,
    /// Rejects as soon as it pauses.
    Reject,
    /// Approves once it has been paused this many seconds.
    After(u64),
    /// Never answers: the pause runs to its timeout.
    Never,
}

impl FromStr for Approve {
    type Err = String;

    fn from_str(text: &str) -> Result<Approve, String> {
        match text {
            "auto" => Ok(Approve::Auto),
            "reject" => Ok(Approve::Reject),
            "never" => Ok(Approve::Never),
            other => other
                .strip_prefix("after:")
                .and_then(|s| s.parse::<u64>().ok())
                .map(Approve::After)
                .ok_or_else(|| format!("{other:?} is not an answer; expected auto, reject, never or after:SECONDS")),
        }
    }
}

impl std::fmt::Display for Approve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Approve::Auto => f.write_str("auto"),
            Approve::Reject => f.write_str("reject"),
            Approve::Never => f.write_str("never"),
            Approve::After(seconds) => write!(f, "after:{seconds}"),
        }
    }
}

/// Who the local operator is, in the history and the sim's call log.
pub const OPERATOR: &str = "operator";

/// Sends the sim's SendTaskSuccess and SendTaskFailure to the engine's tokens.
pub fn wire_task_answers(sim: &Sim, tokens: &TaskTokens) {
    let tokens = tokens.clone();
    sim.answer_tasks_with(Arc::new(move |token, sent| match sent {
        Ok(output) => tokens.send_success(token, serde_json::from_str(&output).unwrap_or(Value::Null)).is_ok(),
        Err((error, cause)) => tokens.send_failure(token, &error, Some(&cause)).is_ok(),
    }));
}

/// Runs after each move of the clock.
pub type AfterAdvance = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// EventBridge's "CloudWatch Alarm State Change" event for a change
/// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html>).
pub fn alarm_state_change_event(change: &AlarmState) -> Value {
    json!({
        "version": "0",
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "resources": [stepdeploy_sim::alarm_arn(&change.name)],
        "detail": {
            "alarmName": change.name,
            "state": {"value": change.state, "reason": change.reason},
        },
    })
}

/// Delivers alarm changes to `relay` and answers pauses as `approve` says.
pub fn after_advance(sim: Sim, functions: LocalFunctions, config: Arc<Config>, approve: Approve) -> AfterAdvance {
    let answered: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    Arc::new(move || {
        let (sim, functions, config, answered) = (sim.clone(), functions.clone(), config.clone(), answered.clone());
        async move {
            for change in sim.take_alarm_changes() {
                // What the rule forwards: every change; the function keeps the ALARMs.
                if let Err(e) = functions.call("relay", alarm_state_change_event(&change)).await {
                    tracing::warn!(alarm = %change.name, error = ?e, "the alarm relay failed");
                }
            }
            for environment in config.environments.keys() {
                answer_pause(&sim, &config.deployment, environment, approve, &answered).await;
            }
        }
        .boxed()
    })
}

async fn answer_pause(sim: &Sim, deployment: &str, environment: &str, approve: Approve, answered: &Mutex<BTreeSet<String>>) {
    // Looked at without an API call: only the answer is the operator's call.
    let Some(pause) = sim.parameter_value(&lock_parameter(deployment, environment)).and_then(|v| LockRecord::parse(&v).pause) else { return };
    // `--approve` answers checkpoints; a bake ends by itself (or with an alarm).
    if pause.bake {
        return;
    }
    if answered.lock().unwrap_or_else(|p| p.into_inner()).contains(&pause.token) {
        return;
    }
    let by = format!("{OPERATOR} (stepdeploy local --approve)");
    let reply = match approve {
        Approve::Auto => Answer::Approve { by },
        Approve::After(seconds) if sim.now() >= pause.since.saturating_add(seconds as i64) => Answer::Approve { by },
        Approve::Reject => Answer::Reject { by, reason: "rejected by --approve reject".into() },
        Approve::After(_) | Approve::Never => return,
    };
    answered.lock().unwrap_or_else(|p| p.into_inner()).insert(pause.token.clone());
    sim.set_principal(Some(OPERATOR));
    if let Err(e) = answer(sim, sim, deployment, environment, &reply).await {
        tracing::warn!(environment, error = %e.message, "the local operator's answer was refused");
    }
    sim.set_principal(None);
}
