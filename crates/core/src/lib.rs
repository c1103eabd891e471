//! stepdeploy's functional core: config, fleet model, pure planners and port
//! traits. Nothing here links the AWS SDK; adapters live in `stepdeploy-aws`
//! (real AWS, moto) and `stepdeploy-sim` (the simulated account).

pub mod budget;
pub mod config;
pub mod doctor;
pub mod errors;
pub mod fabulaws;
pub mod fleet;
pub mod model;
pub mod planner;
pub mod ports;
pub mod quota;
pub mod revision;
pub mod status;
pub mod steps;
