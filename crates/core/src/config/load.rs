//! Loading one environment from its SSM parameter, as the step Lambdas do.

use indexmap::IndexMap;

use super::parse::parameter_name;
use super::problems::Problems;
use super::types::{Config, Environment};
use crate::ports::{Parameters, PortError};

/// Why an environment's config could not be loaded from SSM.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The parameter could not be read.
    #[error(transparent)]
    Read(#[from] PortError),
    /// No parameter: the environment was never pushed.
    #[error("environment: {environment:?} is not configured (no SSM parameter {parameter}); run `stepdeploy config push {environment}`")]
    NotPushed {
        /// The environment asked for.
        environment: String,
        /// The parameter looked for.
        parameter: String,
    },
    /// The parameter holds a config with problems.
    #[error("{0}")]
    Invalid(Problems),
}

/// Loads one environment from its SSM parameter (written by `stepdeploy config push`).
pub async fn load_environment(params: &dyn Parameters, deployment: &str, environment: &str) -> Result<Config, LoadError> {
    let name = parameter_name(deployment, environment);
    let parameter =
        params.get_parameter(&name).await?.ok_or_else(|| LoadError::NotPushed { environment: environment.to_string(), parameter: name.clone() })?;
    let env = Environment::from_json_str(&parameter.value, &name).map_err(LoadError::Invalid)?;
    Ok(Config { deployment: deployment.to_string(), environments: IndexMap::from([(environment.to_string(), env)]) })
}
