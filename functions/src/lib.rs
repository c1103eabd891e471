//! The step Lambdas. Each binary in `src/bin` is one function whose `main`
//! calls [`serve`] with its step name; the work is `stepdeploy_core::steps::handle`.
//!
//! Environment: `STEPDEPLOY_DEPLOYMENT` (the deployment whose environments
//! live under `/stepdeploy/<deployment>/`). Logs are JSON when
//! `AWS_LAMBDA_LOG_FORMAT=JSON` (the runtime's default subscriber), and every
//! record carries the execution id.

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use stepdeploy_aws::AwsAccount;
use stepdeploy_core::steps::{ConfigSource, StepError, handle};
use tracing::Instrument;

/// A step's error as the Lambda runtime reports it: `errorType` is what Retry and Catch match.
#[derive(Debug)]
pub struct StepFailure(pub StepError);

impl From<StepFailure> for Diagnostic {
    fn from(failure: StepFailure) -> Diagnostic {
        Diagnostic { error_type: failure.0.name.to_string(), error_message: failure.0.message }
    }
}

/// The execution a payload belongs to, for logs.
pub fn execution_of(payload: &Value) -> String {
    payload["execution_id"]
        .as_str()
        .or_else(|| payload["deployment"]["execution_id"].as_str())
        .or_else(|| payload["bake"]["execution_id"].as_str())
        .unwrap_or("unknown")
        .to_string()
}

/// Serves the step `step` until the Lambda runtime stops.
pub async fn serve(step: &'static str) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let deployment =
        std::env::var("STEPDEPLOY_DEPLOYMENT").map_err(|_| "STEPDEPLOY_DEPLOYMENT is not set: the function cannot find its environments")?;
    let account = AwsAccount::new(&stepdeploy_aws::load_sdk_config(None).await);
    let deps = &(account, deployment);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (account, deployment) = deps;
        let span = tracing::info_span!("step", step, execution_id = %execution_of(&event.payload), request_id = %event.context.request_id);
        async move {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
            let result = handle(step, account, ConfigSource::Parameters { deployment }, &event.payload, now).await;
            match &result {
                Ok(_) => tracing::info!("step succeeded"),
                Err(e) => tracing::warn!(error = e.name, message = %e.message, "step failed"),
            }
            result.map_err(StepFailure)
        }
        .instrument(span)
        .await
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_error_becomes_the_lambda_error_type_retry_and_catch_match() {
        let diagnostic: Diagnostic =
            StepFailure(StepError { name: stepdeploy_core::errors::ENVIRONMENT_LOCKED, message: "held by e1".into() }).into();
        assert_eq!((diagnostic.error_type.as_str(), diagnostic.error_message.as_str()), ("StepDeploy.EnvironmentLocked", "held by e1"));
        assert_eq!(execution_of(&serde_json::json!({"deployment": {"execution_id": "e2"}})), "e2");
    }
}
