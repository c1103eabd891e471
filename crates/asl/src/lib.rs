//! A local Amazon States Language engine: the same definitions that run on
//! AWS Step Functions, executed in-process. It knows nothing about what the
//! tasks do: a [`TaskInvoker`] maps each Task's Resource to a handler, and a
//! [`Clock`] decides whether Wait and retry delays pass in real or virtual time.
//!
//! Layout, bottom to top (a module uses only those below it): `error`,
//! `limits`, `clock`, `task`, `execution`; `path` (JSONPath, reference paths),
//! `intrinsics` (parsed to an AST), `jsonata`, `choice`; `model` (parse and
//! validate), `definition`; `exec` (the driver and one module per state
//! family); `engine`, `nested`, `invoke`, `mock`, `graph` on top.

pub mod choice;
mod clock;
mod definition;
mod engine;
pub mod error;
mod exec;
mod execution;
pub mod graph;
pub mod intrinsics;
pub mod invoke;
pub mod jsonata;
pub mod limits;
pub mod mock;
pub mod model;
pub mod nested;
pub mod path;
mod shared_clock;
mod task;
pub mod tokens;

pub use clock::{Clock, SystemClock, VirtualClock};
pub use definition::{Definition, DefinitionError, substitute};
pub use engine::Engine;
pub use error::{StatesError, names};
pub use execution::{Event, Execution, Status};
pub use model::{Problem, StateMachine};
pub use shared_clock::SharedVirtualClock;
pub use task::{NO_TASK_HANDLER, NoTasks, TaskError, TaskInvoker};
