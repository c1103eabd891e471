//! Bake steps: build an AMI for a git revision on a builder instance,
//! publish it as a launch template version, prune old images.
//!
//! Each step is one short Lambda call; the state machine waits between them.
//! A bake never takes the environment's lock: it doesn't touch the fleet.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::account::DeployAccount;
use super::command::{RESEND_LOOKBACK_SECONDS, command_failure, keyed_comment, result_of};
use super::error::StepError;
use super::input::{flag_or, not_one_of, open_input, revision_or_branch};
use super::record::CommandResult;
use crate::budget::command_wait;
use crate::config::{Config, Environment};
use crate::errors;
use crate::model::{LaunchTemplateRef, Timestamp};
use crate::ports::{CommandRequest, CommandStatus, ErrorKind, LaunchRequest, TemplateVersion};
use crate::revision::{command_document, command_log_group, in_command};
use sha2::{Digest, Sha256};

pub use super::images::{PrunePlan, REVISION_LOOKBACK, plan_prune, prune_environment, tags, version_for_revision};
use super::images::{prune_images, sweep_orphan_snapshots};

/// Where a bake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BakePhase {
    /// The builder is booting; waiting for SSM to accept a command.
    Online,
    /// The bake script runs.
    Script,
    /// CreateImage was called; waiting for the image.
    Image,
    /// The image is available and tagged.
    Baked,
}

/// The bake record the state machine carries between steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bake {
    /// Environment name.
    pub environment: String,
    /// The deployment (for tags).
    pub deployment: String,
    /// The execution baking.
    pub execution_id: String,
    /// The git revision baked.
    pub revision: String,
    /// The environment's settings when the bake began.
    pub settings: Environment,
    /// The launch template the builder launches from and the version goes to.
    pub template: LaunchTemplateRef,
    /// The AMI the builder started from.
    pub source_image: String,
    /// Make the new version the template's default.
    pub make_default: bool,
    /// Where the bake is.
    pub phase: BakePhase,
    /// The builder instance.
    pub builder: Option<String>,
    /// The bake script's SSM command id.
    pub command_id: Option<String>,
    /// The new image.
    pub image_id: Option<String>,
    /// When the current phase is given up on.
    pub deadline: Timestamp,
    /// `wait` or `done`.
    pub next: String,
    /// Seconds to wait before the next step.
    pub seconds: u64,
    /// The bake script's result.
    pub script: Option<CommandResult>,
    /// The launch template version made from the image.
    pub launch_template_version: Option<u64>,
    /// Images the prune step deleted.
    #[serde(default)]
    pub pruned: Vec<String>,
    /// Whether the bake failed and was cleaned up.
    #[serde(default)]
    pub failed: bool,
    /// Whether cleanup has terminated the builder.
    #[serde(default)]
    pub builder_terminated: bool,
    /// Snapshots of a failed bake EC2 still reported in use at cleanup: a later prune deletes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots_left: Vec<String>,
}

const BAKE_FIELDS: &[&str] = &["environment", "revision", "make_default"];

fn bake_failed(message: String) -> StepError {
    StepError { name: errors::BAKE_FAILED, message }
}

/// An AMI name from parts that may hold characters AMI names don't allow.
pub fn image_name(deployment: &str, environment: &str, revision: &str, now: Timestamp) -> String {
    let clean = |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() || "().-_".contains(c) { c } else { '-' }).collect::<String>();
    let stamp = chrono::DateTime::from_timestamp(now, 0).map(|t| t.format("%Y%m%dT%H%M%SZ").to_string()).unwrap_or_else(|| now.to_string());
    let revision: String = clean(revision).chars().take(40).collect();
    format!("stepdeploy-{}-{}-{revision}-{stamp}", clean(deployment), clean(environment)).chars().take(128).collect()
}

fn bake_tags(bake: &Bake) -> BTreeMap<String, String> {
    BTreeMap::from([
        (tags::DEPLOYMENT.to_string(), bake.deployment.clone()),
        (tags::ENVIRONMENT.to_string(), bake.environment.clone()),
        (tags::REVISION.to_string(), bake.revision.clone()),
        (tags::EXECUTION.to_string(), bake.execution_id.clone()),
    ])
}

fn wait(mut bake: Bake, seconds: u64) -> Bake {
    bake.next = "wait".into();
    bake.seconds = seconds.max(1);
    bake
}

/// Where the builder launches: in one of the group's subnets, so that it
/// gets the group's VPC (RunInstances without a subnet falls back to the
/// default VPC, which a production account may not have, and where the
/// template's security groups don't exist). A template whose network
/// interface names a subnet places the builder itself; one that defines
/// interfaces without a subnet can't be given one (RunInstances refuses a
/// subnet next to the template's interfaces).
pub fn builder_subnet(template: &TemplateVersion, group_subnets: &[String], execution_id: &str) -> Result<Option<String>, String> {
    if template.interface_subnet.is_some() {
        return Ok(None);
    }
    if template.network_interfaces {
        return Err(format!(
            "launch template {} version {} defines network interfaces without a subnet, so the bake builder can't be placed in the group's subnets; set SubnetId on its primary interface or move the interface settings (security groups, public IP) to the template's top level",
            template.template_name, template.version
        ));
    }
    if group_subnets.is_empty() {
        return Err("the Auto Scaling group has no subnets (VPCZoneIdentifier) to launch the bake builder in".into());
    }
    // Spread builders over the subnets (and zones) by execution, the same choice on every retry.
    let index = Sha256::digest(execution_id.as_bytes())[0] as usize % group_subnets.len();
    Ok(Some(group_subnets[index].clone()))
}

/// The builder's RunInstances idempotency token (at most 64 ASCII characters),
/// the same for every try of one execution.
pub fn launch_token(execution_id: &str) -> String {
    let digest = Sha256::digest(format!("{execution_id}/builder").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("stepdeploy-{}", &hex[..48])
}

/// **bake begin**: validate the input, find the source AMI, launch the
/// builder (or find the one an earlier try of this execution launched).
pub async fn begin(account: &dyn DeployAccount, config: &Config, input: &Value, execution_id: &str, now: Timestamp) -> Result<Bake, StepError> {
    let (environment, env) = open_input(input, config, BAKE_FIELDS)?;
    let env = env.clone();
    let revision = revision_or_branch(input, &environment, &env)?;
    // A bake makes its version the default unless told not to: `deploy` (and `$Default`) then ships it.
    let make_default = flag_or(input, "make_default", true)?;
    let template_name = env.launch_template.clone().ok_or_else(|| StepError {
        name: errors::CONFIG_INVALID,
        message: format!("environments.{environment}.launch_template: required to bake"),
    })?;
    let template = LaunchTemplateRef::from_config(&template_name);
    let default_version = account
        .describe_versions(&template, &["$Default".to_string()])
        .await
        .map_err(|e| match e.kind {
            ErrorKind::NotFound | ErrorKind::Invalid => StepError {
                name: errors::CONFIG_INVALID,
                message: format!("environments.{environment}.launch_template: {template_name}: {}", e.message),
            },
            _ => e.into(),
        })?
        .into_iter()
        .next()
        .ok_or_else(|| StepError {
            name: errors::CONFIG_INVALID,
            message: format!("environments.{environment}.launch_template: {template_name} has no default version"),
        })?;
    let source_image = match &env.images.base_image_parameter {
        Some(parameter) => account.get_parameter(parameter).await?.map(|p| p.value).filter(|v| v.starts_with("ami-")).ok_or_else(|| StepError {
            name: errors::CONFIG_INVALID,
            message: format!("images.base_image_parameter: {parameter} holds no AMI id"),
        })?,
        None => default_version.image_id.clone().ok_or_else(|| StepError {
            name: errors::CONFIG_INVALID,
            message: format!(
                "environments.{environment}.launch_template: the default version of {template_name} has no AMI; set images.base_image_parameter"
            ),
        })?,
    };
    let group = account.describe_group(&env.auto_scaling_group).await.map_err(|e| match e.kind {
        ErrorKind::NotFound => StepError {
            name: errors::CONFIG_INVALID,
            message: format!("environments.{environment}.auto_scaling_group: {:?} was not found: {}", env.auto_scaling_group, e.message),
        },
        _ => e.into(),
    })?;
    let subnet_id = builder_subnet(&default_version, &group.settings.subnet_ids, execution_id)
        .map_err(|why| StepError { name: errors::CONFIG_INVALID, message: format!("environments.{environment}: {why}") })?;
    let mut bake = Bake {
        environment,
        deployment: config.deployment.clone(),
        execution_id: execution_id.to_string(),
        revision,
        template,
        source_image,
        make_default,
        phase: BakePhase::Online,
        builder: None,
        command_id: None,
        image_id: None,
        deadline: now.saturating_add(env.images.builder_online_timeout_seconds as i64),
        next: "wait".into(),
        seconds: env.images.poll_interval_seconds,
        script: None,
        launch_template_version: None,
        pruned: Vec::new(),
        failed: false,
        builder_terminated: false,
        snapshots_left: Vec::new(),
        settings: env,
    };
    let mut builder_tags = bake_tags(&bake);
    builder_tags.insert(tags::ROLE.into(), "builder".into());
    // A retried begin finds the builder the first try launched.
    let execution_tags = BTreeMap::from([(tags::EXECUTION.to_string(), execution_id.to_string()), (tags::ROLE.to_string(), "builder".to_string())]);
    let existing = account.find_instances(&execution_tags).await?;
    let builder = match existing.first() {
        Some(instance) => instance.id.clone(),
        None => {
            let request = LaunchRequest {
                launch_template: LaunchTemplateRef { version: Some("$Default".into()), ..bake.template.clone() },
                image_id: Some(bake.source_image.clone()),
                instance_type: bake.settings.instance_type.clone(),
                tags: builder_tags,
                subnet_id,
                client_token: Some(launch_token(execution_id)),
            };
            account.launch_instance(&request).await?
        }
    };
    bake.builder = Some(builder);
    Ok(bake)
}

/// **bake advance**: one step of the phase the bake is in.
pub async fn advance(account: &dyn DeployAccount, mut bake: Bake, now: Timestamp) -> Result<Bake, StepError> {
    let poll = bake.settings.images.poll_interval_seconds;
    let Some(builder) = bake.builder.clone() else {
        return Err(StepError::input("bake.builder: no builder was launched".into()));
    };
    match bake.phase {
        BakePhase::Online => {
            let state = account.describe_instances(std::slice::from_ref(&builder)).await?.first().map(|i| i.state.clone());
            match state.as_deref() {
                Some(state @ ("shutting-down" | "terminated" | "stopping" | "stopped")) => {
                    return Err(bake_failed(format!("builder {builder} is {state} before the bake script ran")));
                }
                // EC2 lists a new instance some time after RunInstances returns it
                // (https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html): not gone, not yet listed.
                None if now < bake.deadline => return Ok(wait(bake, poll)),
                None => {
                    let timeout = bake.settings.images.builder_online_timeout_seconds;
                    return Err(bake_failed(format!(
                        "builder {builder} was still not listed by EC2 DescribeInstances {timeout} s after its launch (images.builder_online_timeout_seconds)"
                    )));
                }
                Some(_) => {}
            }
            let spec = &bake.settings.commands.bake;
            // Keyed by the execution: a retry finds the script an earlier try started, never starts another.
            let comment = keyed_comment(&format!("stepdeploy bake {} {}", bake.environment, bake.revision), &format!("{} bake", bake.execution_id));
            let document = command_document(&bake.deployment);
            let log_group = command_log_group(&bake.deployment);
            let sent = account.recent_commands(&document, now.saturating_sub(RESEND_LOOKBACK_SECONDS)).await?;
            let earlier = sent.into_iter().find(|(_, c)| *c == comment).map(|(id, _)| id);
            let request = CommandRequest {
                document: &document,
                instance_ids: std::slice::from_ref(&builder),
                command: &in_command(&spec.command),
                revision: &bake.revision,
                timeout_seconds: spec.timeout_seconds,
                comment: &comment,
                output_log_group: Some(&log_group),
            };
            let sent = match earlier {
                Some(id) => Ok(id),
                None => account.send_command(&request).await,
            };
            match sent {
                Ok(command_id) => {
                    bake.command_id = Some(command_id);
                    bake.phase = BakePhase::Script;
                    bake.deadline = now.saturating_add(spec.timeout_seconds as i64 + 60);
                    Ok(wait(bake, poll))
                }
                // SSM refuses instances whose agent hasn't registered yet.
                Err(e) if e.code.as_deref() == Some("InvalidInstanceId") => {
                    if now >= bake.deadline {
                        let timeout = bake.settings.images.builder_online_timeout_seconds;
                        return Err(bake_failed(format!(
                            "builder {builder} did not come online in SSM within {timeout} s (images.builder_online_timeout_seconds): {}",
                            e.message
                        )));
                    }
                    Ok(wait(bake, poll))
                }
                Err(e) => Err(e.into()),
            }
        }
        BakePhase::Script => {
            let Some(command_id) = bake.command_id.clone() else {
                return Err(StepError::input("bake.command_id: the bake script was not started".into()));
            };
            let invocation = account.invocations(&command_id, std::slice::from_ref(&builder)).await?.into_iter().next();
            let Some(invocation) = invocation else {
                return Err(bake_failed(format!("SSM has no invocation of {command_id} on {builder}")));
            };
            match invocation.status {
                CommandStatus::Failed => Err(command_failure("bake script", &invocation, &bake.deployment)),
                CommandStatus::Running if now > bake.deadline => Err(StepError {
                    name: errors::COMMAND_FAILED,
                    message: format!("the bake script did not finish before its timeout on {builder}"),
                }),
                CommandStatus::Running => {
                    // Its deadline is its start plus the timeout and a minute: polled less often as it runs on.
                    let started = bake.deadline - (bake.settings.commands.bake.timeout_seconds as i64 + 60);
                    Ok(wait(bake, command_wait(now - started, poll)))
                }
                CommandStatus::Succeeded => {
                    bake.script = Some(result_of(&invocation));
                    // A retried step finds the image the first try created.
                    let mine = BTreeMap::from([(tags::EXECUTION.to_string(), bake.execution_id.clone())]);
                    let image_id = match account.find_images(&mine).await?.first() {
                        Some(image) => image.id.clone(),
                        None => {
                            let name = image_name(&bake.deployment, &bake.environment, &bake.revision, now);
                            account.create_image(&builder, &name, &bake_tags(&bake)).await?
                        }
                    };
                    bake.image_id = Some(image_id);
                    bake.phase = BakePhase::Image;
                    bake.deadline = now.saturating_add(bake.settings.images.available_timeout_seconds as i64);
                    Ok(wait(bake, poll))
                }
            }
        }
        BakePhase::Image => {
            let Some(image_id) = bake.image_id.clone() else {
                return Err(StepError::input("bake.image_id: no image was created".into()));
            };
            let image = account.describe_images(std::slice::from_ref(&image_id)).await?.into_iter().next();
            match image.as_ref().map(|i| (i.state.as_str(), i)) {
                Some(("available", _)) => {
                    bake.phase = BakePhase::Baked;
                    bake.next = "done".into();
                    Ok(bake)
                }
                // Not listed yet (DescribeImages lags CreateImage, as DescribeInstances lags RunInstances) is pending, not gone.
                Some(("pending", _)) | None if now < bake.deadline => Ok(wait(bake, poll)),
                Some(("pending", _)) | None => Err(bake_failed(format!(
                    "image {image_id} did not become available within {} s (images.available_timeout_seconds)",
                    bake.settings.images.available_timeout_seconds
                ))),
                Some((state, _)) => Err(bake_failed(format!("image {image_id} is {state}"))),
            }
        }
        BakePhase::Baked => {
            bake.next = "done".into();
            Ok(bake)
        }
    }
}

/// **bake cleanup**: always terminate the builder; after a failure also
/// delete whatever image this execution made (deregister and snapshots).
pub async fn cleanup(account: &dyn DeployAccount, mut bake: Bake, failed: bool) -> Result<Bake, StepError> {
    if let Some(builder) = &bake.builder {
        // An error that ends the bake here leaves a billed instance running: it says so, and how to end it.
        let left_running = |e: crate::ports::PortError| {
            let mut error = StepError::from(e);
            if error.name != errors::AWS_TRANSIENT {
                error.message = format!(
                    "the builder {builder} may still be running: terminate it (aws ec2 terminate-instances --instance-ids {builder}); {}",
                    error.message
                );
            }
            error
        };
        // Terminated only when EC2 says so: a builder it doesn't list yet is terminated all the same.
        let gone =
            account.describe_instances(std::slice::from_ref(builder)).await.map_err(left_running)?.into_iter().any(|i| i.state == "terminated");
        if !gone {
            account.terminate_instances(std::slice::from_ref(builder)).await.map_err(|e| match e.kind {
                // Not known to EC2 yet: try again (AwsTransient is retried), never leave it running.
                ErrorKind::NotFound => StepError {
                    name: errors::AWS_TRANSIENT,
                    message: format!("builder {builder} is not known to EC2 yet, so it can't be terminated yet: {e}"),
                },
                _ => left_running(e),
            })?;
        }
        bake.builder_terminated = true;
    }
    if failed {
        let mine = BTreeMap::from([(tags::EXECUTION.to_string(), bake.execution_id.clone())]);
        let mut images = account.find_images(&mine).await?;
        if let Some(id) = &bake.image_id
            && !images.iter().any(|i| &i.id == id)
        {
            images.extend(account.describe_images(std::slice::from_ref(id)).await?);
        }
        for image in &images {
            account.delete_image(image).await?;
        }
        // This execution's snapshots no image uses any more (whatever a retry can no longer find
        // through its image). Those still in use just after DeregisterImage wait for the next prune.
        bake.snapshots_left = sweep_orphan_snapshots(account, &mine, &[], |_| true).await?;
        bake.failed = true;
    }
    Ok(bake)
}

/// **publish**: a new launch template version from the current default with
/// the baked AMI; the default too if asked. Never a launch configuration.
pub async fn publish(account: &dyn DeployAccount, mut bake: Bake) -> Result<Bake, StepError> {
    let Some(image_id) = bake.image_id.clone().filter(|_| bake.phase == BakePhase::Baked) else {
        return Err(StepError::input("bake: the image is not baked yet".into()));
    };
    let current = account.describe_versions(&bake.template, &["$Default".into(), "$Latest".into()]).await?;
    let default = current.iter().find(|v| v.is_default).or(current.first()).map(|v| v.version.to_string()).unwrap_or_else(|| "$Default".into());
    // Copy what the group runs (changes made in its current version stay), else the default.
    let source = running_version(account, &bake).await?.unwrap_or(default);
    // A retried publish finds the version the first try made.
    let version = match current.iter().filter(|v| v.image_id.as_deref() == Some(image_id.as_str())).max_by_key(|v| v.version) {
        Some(made) => made.version,
        None => {
            let description = format!("stepdeploy bake of {} ({})", bake.revision, bake.execution_id);
            let description: String = description.chars().take(255).collect();
            account.create_version(&bake.template, &source, &image_id, &description).await?.version
        }
    };
    if bake.make_default {
        account.set_default_version(&bake.template, version).await?;
    }
    bake.launch_template_version = Some(version);
    Ok(bake)
}

/// The version of the bake's launch template the environment's group runs,
/// if the group runs that template (by id or name) at a version it names.
async fn running_version(account: &dyn DeployAccount, bake: &Bake) -> Result<Option<String>, StepError> {
    let group = match account.describe_group(&bake.settings.auto_scaling_group).await {
        Ok(group) => group,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(running) = group.settings.launch_template else { return Ok(None) };
    let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
    if !(same(&running.id, &bake.template.id) || same(&running.name, &bake.template.name)) {
        return Ok(None);
    }
    Ok(running.version)
}

/// **prune** after a bake.
pub async fn prune(account: &dyn DeployAccount, mut bake: Bake, now: Timestamp) -> Result<Bake, StepError> {
    bake.pruned = prune_images(account, &bake.deployment, &bake.environment, &bake.settings, &bake.template, now).await?;
    Ok(bake)
}

/// Runs the bake step `name` (`bake` with `action` begin/advance/cleanup,
/// `publish`, `prune`) on its payload and returns the bake record.
pub async fn handle(name: &str, account: &dyn DeployAccount, config: Option<&Config>, payload: &Value, now: Timestamp) -> Result<Value, StepError> {
    let record = || -> Result<Bake, StepError> {
        serde_json::from_value(payload["bake"].clone()).map_err(|e| StepError::input(format!("bake: not a bake record: {e}")))
    };
    let bake = match (name, payload["action"].as_str()) {
        ("bake", Some("begin")) => {
            let Some(config) = config else {
                return Err(StepError { name: errors::CONFIG_INVALID, message: "no config was loaded for the bake".into() });
            };
            let execution = payload["execution_id"].as_str().unwrap_or("unknown-execution");
            begin(account, config, &payload["input"], execution, now).await?
        }
        ("bake", Some("advance")) => advance(account, record()?, now).await?,
        ("bake", Some("cleanup")) => cleanup(account, record()?, payload.get("error").is_some_and(|e| !e.is_null())).await?,
        ("bake", _) => return Err(not_one_of(payload, "action", &["begin", "advance", "cleanup"])),
        ("publish", _) => publish(account, record()?).await?,
        ("prune", _) => prune(account, record()?, now).await?,
        (other, _) => return Err(StepError::input(format!("step: {other:?} is not a bake step"))),
    };
    serde_json::to_value(bake).map_err(|e| StepError { name: errors::AWS_ERROR, message: format!("cannot render the bake record: {e}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_are_valid_ami_names() {
        let name = image_name("opendebates", "prod01", "feature/votes#42 fix", 1_767_225_600);
        assert_eq!(name, "stepdeploy-opendebates-prod01-feature-votes-42-fix-20260101T000000Z");
        assert!(image_name("d", "e", &"x".repeat(300), 0).len() <= 128);
    }
}
