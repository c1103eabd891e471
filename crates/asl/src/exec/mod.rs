//! Running a parsed machine.
//!
//! Layers, bottom to top: `values`, `run` (what an execution shares, and
//! the `Branches` port), `scope` (paths, templates, input and output
//! processing), `retry`, `task`, `parallel`, `map`, `jsonpath` and
//! `jsonata` (one module per state family), `driver` (the loop, Catch, and
//! the whole execution).

mod driver;
mod jsonata;
mod jsonpath;
mod map;
mod parallel;
mod retry;
mod run;
mod scope;
mod task;
mod values;

pub(crate) use driver::execute;
pub(crate) use run::Run;
