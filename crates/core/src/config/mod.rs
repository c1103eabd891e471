//! The deployment config (`stepdeploy.yaml`): one deployment, several environments.
//!
//! Loading never stops at the first problem: unknown keys, type errors and
//! out-of-range values are all collected as [`Problem`]s that name the full
//! field path, the bad value and what is allowed.
//!
//! Layers: `types` (the shape and its defaults), `problems`, `validate`,
//! `parse` (YAML and the SSM JSON form), `load` (from SSM), `stack` (an environment stack's
//! outputs written into the file).

mod load;
mod parse;
mod problems;
mod stack;
mod types;
mod validate;

pub use load::{LoadError, load_environment};
pub use parse::parameter_name;
pub use problems::{Problem, Problems, UnknownEnvironment};
pub use stack::{StackConfigError, StackSettings, merge_environment, settings_from_stack};
pub use types::*;
