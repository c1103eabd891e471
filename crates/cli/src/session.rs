//! A connection to a deployment on AWS: credentials checked up front, the deployment and its
//! state machines found (from the stack's outputs, or the SSM parameter the stack writes), and
//! the environment's config read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sfn::error::ProvideErrorMetadata;
use stepdeploy_aws::AwsAccount;
use stepdeploy_core::config::{Config, Environment, load_environment};
use stepdeploy_core::ports::Parameters;

use crate::workflows::machine_of_output;

/// Where and as whom: the flags every AWS command takes.
#[derive(Debug, Clone, Default)]
pub struct AwsOptions {
    /// `--profile`.
    pub profile: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    /// `--stack`.
    pub stack: Option<String>,
    /// `--deployment`.
    pub deployment: Option<String>,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--output json`.
    pub json: bool,
}

/// A connected session: clients, the deployment and its state machines.
pub(crate) struct Session {
    pub(crate) sdk: SdkConfig,
    pub(crate) account: AwsAccount,
    pub(crate) deployment: String,
    pub(crate) machines: BTreeMap<String, String>,
}

pub(crate) const DEFAULT_CONFIG: &str = "stepdeploy.yaml";

pub(crate) fn read_local_config(path: Option<&Path>) -> Result<Option<Config>> {
    let (path, explicit) = match path {
        Some(p) => (p.to_path_buf(), true),
        None => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    if !explicit && !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("--config: cannot read {}", path.display()))?;
    let config = Config::from_yaml_str(&text).map_err(|problems| anyhow!("{}: {} problem(s):\n{problems}", path.display(), problems.0.len()))?;
    Ok(Some(config))
}

pub(crate) async fn sdk_config(options: &AwsOptions, fallback_region: Option<&str>) -> Result<SdkConfig> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &options.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = options.region.clone() {
        loader = loader.region(Region::new(region));
    }
    let mut sdk = loader.load().await;
    if sdk.region().is_none() {
        match fallback_region {
            Some(region) => sdk = sdk.into_builder().region(Region::new(region.to_string())).build(),
            None => bail!("no AWS region: pass --region, set AWS_REGION, give the profile a region, or set the environment's `region` in the config"),
        }
    }
    Ok(sdk)
}

/// Resolves the credentials before the first call, so that missing ones, or a profile that
/// doesn't exist, are one line that says what to do (not the SDK's dump from inside a call).
pub(crate) async fn check_credentials(sdk: &SdkConfig, profile: Option<&str>) -> Result<()> {
    use aws_credential_types::provider::{ProvideCredentials, error::CredentialsError};
    let Some(provider) = sdk.credentials_provider() else {
        bail!("no AWS credentials: run `aws configure` or `aws sso login`, pass --profile NAME, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    };
    let resolved = tokio::time::timeout(std::time::Duration::from_secs(20), provider.provide_credentials()).await;
    let error = match resolved {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => e,
        Err(_) => {
            bail!("AWS credentials: none resolved within 20 s (an SSO login or credential_process that hangs?); check `aws sts get-caller-identity`")
        }
    };
    let detail = format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&error));
    let named = profile.map(str::to_string).or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()));
    if let Some(name) = named.filter(|name| !profile_exists(name)) {
        bail!(
            "--profile: {name:?} is not a profile in ~/.aws/config or ~/.aws/credentials (or AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE); `aws configure list-profiles` lists them"
        );
    }
    match error {
        CredentialsError::CredentialsNotLoaded(_) => bail!(
            "no AWS credentials: run `aws configure` or `aws sso login`, pass --profile NAME, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ),
        _ => bail!("AWS credentials could not be loaded: {}", first_line(&detail)),
    }
}

/// Whether the shared config or credentials file defines the profile `name`: `[profile NAME]`
/// (or `[default]`) in the config file, `[NAME]` in the credentials file.
fn profile_exists(name: &str) -> bool {
    let home = std::env::var("HOME").unwrap_or_default();
    let file = |var: &str, default: &str| std::env::var(var).unwrap_or_else(|_| format!("{home}/.aws/{default}"));
    let sections = |path: String| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')).map(|s| s.trim().to_string()))
            .collect()
    };
    let config = sections(file("AWS_CONFIG_FILE", "config"));
    let credentials = sections(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"));
    config.iter().any(|s| s == &format!("profile {name}") || (name == "default" && s == "default")) || credentials.iter().any(|s| s == name)
}

/// The first line of a possibly long message.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

impl Session {
    pub(crate) async fn open(options: &AwsOptions, environment: Option<&str>) -> Result<Session> {
        let local_config = read_local_config(options.config.as_deref())?;
        // An environment the config file doesn't have is named as such before anything needs AWS.
        if let (Some(name), Some(config)) = (environment, &local_config)
            && !config.environments.contains_key(name)
        {
            bail!(
                "environment: {name:?} is not in {} (it has: {})",
                options.config.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| DEFAULT_CONFIG.to_string()),
                config.environments.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        let env_region = environment
            .and_then(|name| local_config.as_ref().and_then(|c| c.environments.get(name)))
            .map(|env| env.region.clone())
            .filter(|r| !r.is_empty());
        let sdk = sdk_config(options, env_region.as_deref()).await?;
        check_credentials(&sdk, options.profile.as_deref()).await?;
        let account = AwsAccount::new(&sdk);
        let (deployment, machines) = match &options.stack {
            Some(stack) => stack_outputs(&sdk, stack).await?,
            None => {
                let deployment = options.deployment.clone().or_else(|| local_config.as_ref().map(|c| c.deployment.clone())).ok_or_else(|| {
                    anyhow!("no deployment: pass --deployment NAME or --stack NAME, or run where {DEFAULT_CONFIG} is (or pass --config FILE)")
                })?;
                let machines = machines_from_parameter(&account, &deployment).await?;
                (deployment, machines)
            }
        };
        Ok(Session { sdk, account, deployment, machines })
    }

    pub(crate) fn sfn(&self) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(&self.sdk)
    }

    pub(crate) fn machine(&self, key: &str) -> Result<&str> {
        self.machines.get(key).map(String::as_str).ok_or_else(|| {
            anyhow!(
                "the deployment {:?} has no {key} state machine (it has: {}); deploy the current template.yaml",
                self.deployment,
                self.machines.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// The environment as the Lambdas will read it (its SSM parameter).
    pub(crate) async fn environment(&self, name: &str) -> Result<Environment> {
        let config = load_environment(&self.account, &self.deployment, name).await.map_err(|e| anyhow!("{e}"))?;
        config.environments.get(name).cloned().ok_or_else(|| anyhow!("environment: {name:?} is not configured"))
    }
}

/// Reads the state machine ARNs from SSM (template.yaml writes them there).
async fn machines_from_parameter(account: &AwsAccount, deployment: &str) -> Result<BTreeMap<String, String>> {
    let name = format!("/stepdeploy/{deployment}/state-machines");
    let parameter = account.get_parameter(&name).await.with_context(|| format!("cannot read the SSM parameter {name}"))?.ok_or_else(|| {
        anyhow!("deployment {deployment:?}: no SSM parameter {name}; deploy the stack (`sam deploy --guided`) or pass --stack NAME")
    })?;
    let map: BTreeMap<String, String> =
        serde_json::from_str(&parameter.value).map_err(|e| anyhow!("{name}: expected a JSON object of state machine ARNs: {e}"))?;
    Ok(map)
}

/// Reads the deployment name and the state machine ARNs from a stack's parameters and outputs.
pub(crate) async fn stack_outputs(sdk: &SdkConfig, stack: &str) -> Result<(String, BTreeMap<String, String>)> {
    let client = aws_sdk_cloudformation::Client::new(sdk);
    let described = client.describe_stacks().stack_name(stack).send().await.map_err(|e| aws_error(&format!("--stack {stack}: DescribeStacks"), e))?;
    let stack_info = described.stacks().first().ok_or_else(|| anyhow!("--stack: {stack:?} was not found"))?;
    let deployment = stack_info
        .parameters()
        .iter()
        .find(|p| p.parameter_key() == Some("Deployment"))
        .and_then(|p| p.parameter_value())
        .ok_or_else(|| anyhow!("--stack: {stack:?} has no Deployment parameter; is it a stepdeploy stack?"))?
        .to_string();
    let machines: BTreeMap<String, String> =
        stack_info.outputs().iter().filter_map(|o| Some((machine_of_output(o.output_key()?)?.to_string(), o.output_value()?.to_string()))).collect();
    if machines.is_empty() {
        bail!("--stack: {stack:?} has no *StateMachineArn outputs; is it a stepdeploy stack?");
    }
    Ok((deployment, machines))
}

/// An SDK error with its code and message kept.
pub(crate) fn aws_error<E, R>(what: &str, error: aws_sdk_sfn::error::SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = error.code().unwrap_or("no error code").to_string();
    let message = error.message().map(str::to_string).unwrap_or_else(|| aws_sdk_sfn::error::DisplayErrorContext(&error).to_string());
    anyhow!("{what}: {code}: {message}")
}
