//! Task invokers for Lambda: in-process functions, or a Lambda Invoke API
//! endpoint such as `cargo lambda watch`, behind the two ways a state
//! machine calls Lambda (a function ARN, or `arn:aws:states:::lambda:invoke`).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::task::{NO_TASK_HANDLER, TaskError, TaskInvoker};

/// The optimized Lambda integration's resource.
pub const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";

/// A function's error, as a Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    /// `errorType`: the name Retry and Catch match on.
    pub error_type: String,
    /// `errorMessage`.
    pub error_message: String,
    /// The error document exactly as the function returned it (with any `stackTrace` and in its
    /// own key order): Step Functions passes it through unchanged as the Cause.
    pub document: Option<String>,
}

impl FunctionError {
    /// An error of this type and message (its document is built from them).
    pub fn new(error_type: impl Into<String>, error_message: impl Into<String>) -> FunctionError {
        FunctionError { error_type: error_type.into(), error_message: error_message.into(), document: None }
    }
}

/// Somewhere Lambda functions run.
#[async_trait]
pub trait Functions: Send + Sync {
    /// Invokes `function` (a bare name) with `payload`. `Err(Ok(e))` is the
    /// function's own error; `Err(Err(e))` a failure to reach it.
    async fn call(&self, function: &str, payload: Value) -> Result<Value, Result<FunctionError, TaskError>>;
}

/// An in-process function.
pub type Handler = Arc<dyn Fn(Value) -> BoxFuture<'static, Result<Value, FunctionError>> + Send + Sync>;

/// Functions registered in-process by name.
#[derive(Default, Clone)]
pub struct LocalFunctions {
    handlers: HashMap<String, Handler>,
}

impl LocalFunctions {
    /// Registers `handler` as the function `name`.
    pub fn with(mut self, name: &str, handler: Handler) -> LocalFunctions {
        self.handlers.insert(name.to_string(), handler);
        self
    }
}

#[async_trait]
impl Functions for LocalFunctions {
    async fn call(&self, function: &str, payload: Value) -> Result<Value, Result<FunctionError, TaskError>> {
        let handler = self.handlers.get(function).ok_or_else(|| {
            Err(TaskError {
                error: "Lambda.ResourceNotFoundException".into(),
                cause: Some(format!("Function not found: {function} (registered: {})", self.names().join(", "))),
            })
        })?;
        handler(payload).await.map_err(Ok)
    }
}

impl LocalFunctions {
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.handlers.keys().cloned().collect();
        names.sort();
        names
    }
}

/// Functions behind a Lambda Invoke API endpoint (`cargo lambda watch`, for one).
#[derive(Clone)]
pub struct HttpFunctions {
    endpoint: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<hyper::body::Bytes>>,
}

impl HttpFunctions {
    /// Functions at `endpoint`, e.g. `http://127.0.0.1:9000`.
    pub fn new(endpoint: &str) -> HttpFunctions {
        HttpFunctions { endpoint: endpoint.trim_end_matches('/').to_string(), client: Client::builder(TokioExecutor::new()).build_http() }
    }
}

#[async_trait]
impl Functions for HttpFunctions {
    async fn call(&self, function: &str, payload: Value) -> Result<Value, Result<FunctionError, TaskError>> {
        let unreachable = |detail: String| Err(TaskError { error: "Lambda.SdkClientException".into(), cause: Some(detail) });
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.endpoint);
        let body = serde_json::to_vec(&payload).unwrap_or_default();
        let request = hyper::Request::post(&url)
            .header("content-type", "application/json")
            .body(Full::new(hyper::body::Bytes::from(body)))
            .map_err(|e| unreachable(format!("cannot build a request to {url}: {e}")))?;
        let response = self.client.request(request).await.map_err(|e| unreachable(format!("cannot reach {url}: {e}")))?;
        let status = response.status();
        let function_error = response.headers().contains_key("x-amz-function-error");
        let bytes = response.into_body().collect().await.map_err(|e| unreachable(format!("reading the answer of {url}: {e}")))?.to_bytes();
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if status.is_success() && !function_error {
            return Ok(value);
        }
        match (value.get("errorType").and_then(Value::as_str), value.get("errorMessage").and_then(Value::as_str)) {
            (Some(t), m) => Err(Ok(FunctionError {
                error_type: t.to_string(),
                error_message: m.unwrap_or_default().to_string(),
                document: Some(String::from_utf8_lossy(&bytes).into_owned()),
            })),
            _ => Err(Err(TaskError { error: "Lambda.ServiceException".into(), cause: Some(format!("{url} answered {status}: {value}")) })),
        }
    }
}

/// Runs Lambda Task states against some [`Functions`].
pub struct LambdaTasks<F> {
    functions: F,
}

impl<F: Functions> LambdaTasks<F> {
    /// Tasks backed by `functions`.
    pub fn new(functions: F) -> LambdaTasks<F> {
        LambdaTasks { functions }
    }
}

/// The bare name of a function given as a name, a partial ARN or a full ARN (qualifier dropped).
pub fn function_name(reference: &str) -> String {
    match reference.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "lambda", _, _, "function", name, ..] => name.to_string(),
        [_, "function", name, ..] => name.to_string(),
        [name, ..] => name.to_string(),
        [] => String::new(),
    }
}

/// A function error as Step Functions reports it: the name, and the Lambda error document,
/// unchanged, as the cause.
fn task_error(e: FunctionError) -> TaskError {
    let cause = e.document.unwrap_or_else(|| json!({"errorMessage": e.error_message, "errorType": e.error_type}).to_string());
    TaskError { error: e.error_type, cause: Some(cause) }
}

#[async_trait]
impl<F: Functions> TaskInvoker for LambdaTasks<F> {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        if resource == LAMBDA_INVOKE {
            let function = input
                .get("FunctionName")
                .and_then(Value::as_str)
                .ok_or_else(|| TaskError { error: "States.Runtime".into(), cause: Some(format!("{LAMBDA_INVOKE} needs Parameters.FunctionName")) })?;
            let payload = input.get("Payload").cloned().unwrap_or(json!({}));
            let output = self.functions.call(&function_name(function), payload).await.map_err(|e| e.map(task_error).unwrap_or_else(|e| e))?;
            return Ok(json!({
                "ExecutedVersion": "$LATEST",
                "Payload": output,
                "SdkHttpMetadata": {"HttpStatusCode": 200},
                "StatusCode": 200,
            }));
        }
        if resource.starts_with("arn:aws:lambda:") {
            return self.functions.call(&function_name(resource), input).await.map_err(|e| e.map(task_error).unwrap_or_else(|e| e));
        }
        Err(TaskError { error: NO_TASK_HANDLER.into(), cause: Some(format!("no task handler for the resource {resource}")) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_come_from_names_and_arns() {
        assert_eq!(function_name("deploy-prepare"), "deploy-prepare");
        assert_eq!(function_name("arn:aws:lambda:us-east-1:123456789012:function:deploy-prepare"), "deploy-prepare");
        assert_eq!(function_name("arn:aws:lambda:us-east-1:123456789012:function:deploy-prepare:live"), "deploy-prepare");
        assert_eq!(function_name("123456789012:function:deploy-prepare"), "deploy-prepare");
    }
}
