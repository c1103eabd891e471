//! The error a step returns: the name the state machine matches, and a readable message.

use crate::config::LoadError;
use crate::errors;
use crate::ports::PortError;

/// A step's failure: the error name the state machine matches, and a readable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct StepError {
    /// One of [`crate::errors`].
    pub name: &'static str,
    /// What happened, for operators.
    pub message: String,
}

impl StepError {
    /// A bad execution input ([`errors::INVALID_INPUT`]).
    pub(crate) fn input(message: String) -> StepError {
        StepError { name: errors::INVALID_INPUT, message }
    }
}

impl From<PortError> for StepError {
    fn from(e: PortError) -> StepError {
        let name = if e.is_retryable() { errors::AWS_TRANSIENT } else { errors::AWS_ERROR };
        StepError { name, message: e.to_string() }
    }
}

impl From<LoadError> for StepError {
    fn from(e: LoadError) -> StepError {
        match e {
            LoadError::Read(e) => e.into(),
            LoadError::NotPushed { .. } => StepError::input(e.to_string()),
            LoadError::Invalid(problems) => StepError { name: errors::CONFIG_INVALID, message: problems.to_string() },
        }
    }
}
