//! The port traits on the simulated account, one module per service.

mod autoscaling;
pub(crate) mod cloudwatch;
mod common;
mod ec2;
mod elbv2;
mod readiness;
mod sfn;
pub mod sns;
mod ssm;
