//! One check's verdict, as doctor reports it.

use serde::Serialize;

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// What to do, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

pub(super) fn pass(name: &'static str, detail: String) -> Check {
    Check { name, ok: true, detail, fix: None }
}

pub(super) fn fail(name: &'static str, detail: String, fix: String) -> Check {
    Check { name, ok: false, detail, fix: Some(fix) }
}
