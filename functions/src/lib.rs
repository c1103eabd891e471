//! The step Lambdas. Each binary in `src/bin` is one function whose `main`
//! calls [`serve`] with its step name; the work is `stepdeploy_core::steps::handle`.
//!
//! Environment: `STEPDEPLOY_DEPLOYMENT` (the deployment whose environments
//! live under `/stepdeploy/<deployment>/`). Logs are JSON when
//! `AWS_LAMBDA_LOG_FORMAT=JSON` ([`init_logging`]), and every record carries
//! the execution id.

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

/// Logs as the runtime's default subscriber does (JSON when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`, level from `AWS_LAMBDA_LOG_LEVEL` or
/// `RUST_LOG`), less the runtime's own ERROR echo of every error a handler
/// returns (its Debug text): a step's expected failure is logged once, at
/// WARN, with the error name and message as fields. Panics are still logged.
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_else(|_| "INFO".into());
    let level = level.parse::<tracing_subscriber::filter::LevelFilter>().unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    let filter = tracing_subscriber::EnvFilter::builder().with_default_directive(level.into()).from_env_lossy();
    let quiet = tracing_subscriber::filter::filter_fn(|meta| !is_handler_error_echo(meta));
    let builder = tracing_subscriber::fmt().with_target(false).without_time().with_env_filter(filter);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // A second initialization (tests) keeps the first subscriber.
    let _ = if json { builder.json().finish().with(quiet).try_init() } else { builder.finish().with(quiet).try_init() };
}

/// The runtime's `error!("{error:?}")` for a handler's Err: an ERROR event of
/// its panic layer with no `error` field (its panic events have one).
fn is_handler_error_echo(meta: &tracing::Metadata<'_>) -> bool {
    meta.target().starts_with("lambda_runtime::layers::panic") && *meta.level() == tracing::Level::ERROR && meta.fields().field("error").is_none()
}

/// Reports a start-up failure to the Lambda Runtime API (`POST
/// /runtime/init/error`, https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html#runtimes-api-initerror),
/// so that Step Functions sees its named error rather than `Runtime.ExitError`.
pub async fn report_init_error(error_type: &str, message: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tracing::error!(error_type, error_message = message, "start-up failed");
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else { return };
    let body = serde_json::json!({"errorType": error_type, "errorMessage": message}).to_string();
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\nLambda-Runtime-Function-Error-Type: {error_type}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Ok(mut stream) = tokio::net::TcpStream::connect(&api).await
        && stream.write_all(request.as_bytes()).await.is_ok()
    {
        // The answer's status line is enough; don't wait on a connection the API keeps open.
        let mut reply = [0u8; 512];
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut reply)).await;
    }
}

/// Serves the step `step` until the Lambda runtime stops.
pub async fn serve(step: &'static str) -> Result<(), lambda_runtime::Error> {
    init_logging();
    let Ok(deployment) = std::env::var("STEPDEPLOY_DEPLOYMENT") else {
        let message =
            "STEPDEPLOY_DEPLOYMENT is not set: the function cannot find its environments (template.yaml sets it from the Deployment parameter)";
        report_init_error(stepdeploy_core::errors::CONFIG_INVALID, message).await;
        return Err(message.into());
    };
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
                // One key per field: `message` is the record's own.
                Err(e) => tracing::warn!(error_type = e.name, error_message = %e.message, "step failed"),
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
