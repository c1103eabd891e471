//! Turning SDK errors into [`PortError`]s that keep AWS's code, message and request id.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::operation::RequestId;
use stepdeploy_core::ports::{ErrorKind, PortError};

/// Converts an SDK error, keeping it as the source.
pub(crate) fn port_error<E, R>(service: &'static str, operation: &'static str, err: SdkError<E, R>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let (kind, code, message, request_id) = match &err {
        SdkError::ServiceError(service_err) => {
            let e = service_err.err();
            let code = e.code().map(Box::<str>::from);
            let kind = classify(code.as_deref());
            (kind, code, e.message().map(str::to_string), e.meta().request_id().map(Box::<str>::from))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => (ErrorKind::Transient, None, None, None),
        _ => (ErrorKind::Other, None, None, None),
    };
    PortError { kind, service, operation, code, message: message.unwrap_or_else(|| causes(&err)), request_id, source: Some(Box::new(err)) }
}

/// Each error's message down the chain of sources, on one line: `dispatch failure: io error: ...
/// Connection refused`. (The SDK's DisplayErrorContext adds the whole chain's Debug dump, which
/// stays reachable through the error's source, for `-v`.)
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut next = err.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    parts.join(": ")
}

/// Classifies an AWS error code.
///
/// The four SDKs model these conditions as different types (or not at all:
/// throttling is never modeled), so the code string is the one thing they share.
fn classify(code: Option<&str>) -> ErrorKind {
    let Some(code) = code else { return ErrorKind::Other };
    match code {
        "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "SlowDown"
        | "PriorityRequestLimitExceeded" => ErrorKind::Throttled,
        "InternalFailure" | "InternalError" | "InternalServerError" | "ServiceUnavailable" | "ServiceUnavailableException" | "Unavailable" => {
            ErrorKind::Transient
        }
        // Auto Scaling: a scaling activity or another update is under way; the same call succeeds later
        // (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_UpdateAutoScalingGroup.html#API_UpdateAutoScalingGroup_Errors).
        "ScalingActivityInProgress" | "ResourceContention" => ErrorKind::Transient,
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AuthFailure" => ErrorKind::AccessDenied,
        "ParameterAlreadyExists" | "AlreadyExists" | "AlreadyExistsFault" | "DuplicateTargetGroupName" | "InvalidAMIName.Duplicate" => {
            ErrorKind::AlreadyExists
        }
        c if c.ends_with("NotFound") || c.ends_with("NotFoundException") || c.ends_with(".NotFound") || c == "InvalidCommandId" => {
            ErrorKind::NotFound
        }
        c if c.starts_with("Validation") || c.starts_with("Invalid") || c == "PriorityInUse" || c == "MissingParameter" => ErrorKind::Invalid,
        _ => ErrorKind::Other,
    }
}

/// An answer that lacks a field AWS always sends.
pub(crate) fn missing(service: &'static str, operation: &'static str, field: &str) -> PortError {
    PortError::new(ErrorKind::Other, service, operation, None, format!("the response has no {field}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        for (code, kind) in [
            ("Throttling", ErrorKind::Throttled),
            ("RequestLimitExceeded", ErrorKind::Throttled),
            ("ParameterAlreadyExists", ErrorKind::AlreadyExists),
            ("InvalidInstanceID.NotFound", ErrorKind::NotFound),
            ("TargetGroupNotFound", ErrorKind::NotFound),
            ("ValidationError", ErrorKind::Invalid),
            ("UnauthorizedOperation", ErrorKind::AccessDenied),
            ("ServiceUnavailable", ErrorKind::Transient),
            ("ScalingActivityInProgress", ErrorKind::Transient),
            ("ResourceContention", ErrorKind::Transient),
            ("SomethingElse", ErrorKind::Other),
        ] {
            assert_eq!(classify(Some(code)), kind, "{code}");
        }
    }
}
