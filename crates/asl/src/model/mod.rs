//! The state machine definition, parsed and validated.
//!
//! Parsing collects every problem with the state it belongs to, instead of
//! stopping at the first: a definition either parses cleanly or yields the
//! full list.
//!
//! Layers: `language`, `types`, `fields` (field readers that collect
//! problems), `check` (templates, references), `parse`.

mod check;
mod fields;
mod language;
mod parse;
mod types;

pub use language::QueryLanguage;
pub use parse::parse_definition;
pub use types::*;
