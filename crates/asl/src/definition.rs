//! A definition's text, with `${Name}` substitutions, parsed and validated.

use std::collections::HashMap;

use serde_json::Value;

use crate::model::{self, Problem, StateMachine};

/// A parsed, validated definition.
#[derive(Debug, Clone)]
pub struct Definition {
    pub(crate) machine: StateMachine,
}

/// Why a definition can't run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    /// Not JSON.
    #[error("the definition is not valid JSON: {0}")]
    Json(String),
    /// A `${Name}` with no substitution.
    #[error("the definition uses ${{{0}}}, which has no DefinitionSubstitutions entry")]
    Substitution(String),
    /// Structural problems, every one.
    #[error("{} problem(s) in the definition:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

impl Definition {
    /// Parses definition text, first replacing `${Name}` from `substitutions`.
    pub fn parse(text: &str, substitutions: &HashMap<String, String>) -> Result<Definition, DefinitionError> {
        let text = substitute(text, substitutions)?;
        let value: Value = serde_json::from_str(&text).map_err(|e| DefinitionError::Json(e.to_string()))?;
        Definition::from_value(&value)
    }

    /// Validates a definition given as JSON.
    pub fn from_value(value: &Value) -> Result<Definition, DefinitionError> {
        model::parse_definition(value).map(|machine| Definition { machine }).map_err(DefinitionError::Invalid)
    }

    /// The parsed machine.
    pub fn machine(&self) -> &StateMachine {
        &self.machine
    }
}

/// Replaces `${Name}` placeholders (DefinitionSubstitutions).
pub fn substitute(text: &str, substitutions: &HashMap<String, String>) -> Result<String, DefinitionError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        match substitutions.get(name) {
            Some(value) => out.push_str(value),
            None => return Err(DefinitionError::Substitution(name.to_string())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
