//! An environment at a glance, for `stepdeploy status`: the group's instances
//! by version and health, the lock holder, suspended processes and whether
//! the maintenance page is up. It only reads.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Environment;
use crate::fleet::read_snapshot;
use crate::model::Timestamp;
use crate::planner::assess;
use crate::ports::AlarmState;
use crate::steps::{DeployAccount, LockRecord, PauseRecord, StepError, lock_is_stale, lock_parameter, maintenance_rules};

/// What `stepdeploy status ENV` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentStatus {
    /// The environment.
    pub environment: String,
    /// The Auto Scaling group.
    pub group: String,
    /// Desired capacity, minimum and maximum.
    pub desired_capacity: u32,
    /// Minimum size.
    pub min_size: u32,
    /// Maximum size.
    pub max_size: u32,
    /// The group's launch template and version (`lt-...@7`).
    pub launch_template: Option<String>,
    /// Instances grouped by what they run, most instances first.
    pub versions: Vec<VersionCount>,
    /// Every instance the group lists.
    pub instances: Vec<InstanceStatus>,
    /// Suspended Auto Scaling processes.
    pub suspended_processes: Vec<String>,
    /// Who holds the environment's lock, if anyone.
    pub lock: Option<LockHolder>,
    /// Whether the maintenance page is up (`None`: no listener configured).
    pub maintenance_on: Option<bool>,
    /// The alarms that guard its deploys (`alarms`), as CloudWatch reports them now; one
    /// CloudWatch doesn't know is listed as `MISSING`.
    pub alarms: Vec<AlarmState>,
}

/// Instances running one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionCount {
    /// The AMI.
    pub image_id: Option<String>,
    /// The git revision tag, when the image carries one.
    pub revision: Option<String>,
    /// Launch template versions reported for these instances.
    pub launch_template_versions: Vec<String>,
    /// Live instances on it.
    pub instances: u32,
    /// Of those, healthy (InService, Auto Scaling healthy, healthy in every target group).
    pub healthy: u32,
}

/// One instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstanceStatus {
    /// `i-...`.
    pub id: String,
    /// Auto Scaling lifecycle state.
    pub lifecycle: String,
    /// The AMI.
    pub image_id: Option<String>,
    /// The git revision tag.
    pub revision: Option<String>,
    /// Launch template version per Auto Scaling.
    pub launch_template_version: Option<String>,
    /// Availability zone.
    pub availability_zone: String,
    /// Passes every health check.
    pub healthy: bool,
    /// Why not, when not.
    pub reason: Option<String>,
}

/// The lock parameter's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockHolder {
    /// The parameter.
    pub parameter: String,
    /// The execution holding it (as written by the holder).
    pub execution: String,
    /// Since when (epoch seconds), when readable.
    pub since: Option<Timestamp>,
    /// Its age in seconds.
    pub age_seconds: Option<i64>,
    /// Whether `break_stale_lock` may take it over (at least `lock.stale_after_seconds` old).
    pub stale: bool,
    /// The holder's rollout waits at a checkpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused: Option<PauseRecord>,
}

/// Reads an environment's status.
pub async fn environment_status(
    account: &dyn DeployAccount,
    deployment: &str,
    environment: &str,
    env: &Environment,
    now: Timestamp,
) -> Result<EnvironmentStatus, StepError> {
    let snapshot = read_snapshot(account, account, account, &env.auto_scaling_group, &env.target_group_arns, now).await?;
    let mut instances = Vec::new();
    let mut versions: BTreeMap<(Option<String>, Option<String>), VersionCount> = BTreeMap::new();
    for instance in &snapshot.instances {
        let (healthy, reason, _) = assess(instance, &env.target_group_arns, None, 0, true, now);
        if instance.lifecycle.is_live() || instance.lifecycle.is_standby() {
            let entry = versions.entry((instance.image_id.clone(), instance.revision.clone())).or_insert_with(|| VersionCount {
                image_id: instance.image_id.clone(),
                revision: instance.revision.clone(),
                launch_template_versions: Vec::new(),
                instances: 0,
                healthy: 0,
            });
            entry.instances += 1;
            entry.healthy += u32::from(healthy);
            if let Some(v) = &instance.launch_template_version
                && !entry.launch_template_versions.contains(v)
            {
                entry.launch_template_versions.push(v.clone());
            }
        }
        instances.push(InstanceStatus {
            id: instance.id.clone(),
            lifecycle: String::from(instance.lifecycle.clone()),
            image_id: instance.image_id.clone(),
            revision: instance.revision.clone(),
            launch_template_version: instance.launch_template_version.clone(),
            availability_zone: instance.availability_zone.clone(),
            healthy,
            reason,
        });
    }
    let mut versions: Vec<VersionCount> = versions.into_values().collect();
    versions.sort_by(|a, b| b.instances.cmp(&a.instances).then_with(|| a.image_id.cmp(&b.image_id)));

    let lock_name = lock_parameter(deployment, environment);
    let lock = account.get_parameter(&lock_name).await?.map(|held| {
        let record = LockRecord::parse(&held.value);
        let since = record.since.or(held.modified_at);
        let age_seconds = since.map(|s| now.saturating_sub(s));
        LockHolder {
            parameter: lock_name.clone(),
            execution: record.execution.unwrap_or_else(|| held.value.clone()),
            since,
            age_seconds,
            stale: age_seconds.is_some_and(|age| lock_is_stale(age, env.lock.stale_after_seconds)),
            paused: record.pause,
        }
    });

    let maintenance_on = match maintenance_rules(env) {
        Ok((listener, wanted)) => {
            let rules = account.describe_rules(&listener).await?;
            // The page is up when its fixed-response rule sits at its priority.
            let page = wanted.last().map(|(priority, spec)| rules.iter().any(|r| r.priority == Some(*priority) && &r.spec == spec));
            Some(page.unwrap_or(false))
        }
        Err(_) => None,
    };

    Ok(EnvironmentStatus {
        environment: environment.to_string(),
        group: snapshot.settings.name.clone(),
        desired_capacity: snapshot.settings.desired_capacity,
        min_size: snapshot.settings.min_size,
        max_size: snapshot.settings.max_size,
        launch_template: snapshot.settings.launch_template.as_ref().map(|t| {
            let template = t.id.as_deref().or(t.name.as_deref()).unwrap_or("?");
            format!("{template} version {}", t.version.as_deref().unwrap_or("?"))
        }),
        versions,
        instances,
        suspended_processes: snapshot.settings.suspended_processes.clone(),
        lock,
        maintenance_on,
        alarms: alarm_states(account, &env.alarms).await?,
    })
}

/// The environment's alarms in config order, in one DescribeAlarms call.
async fn alarm_states(account: &dyn DeployAccount, names: &[String]) -> Result<Vec<AlarmState>, StepError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let read = account.describe_alarms(names).await?;
    Ok(names
        .iter()
        .map(|name| {
            read.iter().find(|a| &a.name == name).cloned().unwrap_or_else(|| AlarmState {
                name: name.clone(),
                state: "MISSING".into(),
                reason: "CloudWatch has no alarm of that name".into(),
                updated_at: 0,
            })
        })
        .collect())
}

impl EnvironmentStatus {
    /// The report as lines for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let live: u32 = self.versions.iter().map(|v| v.instances).sum();
        let healthy: u32 = self.versions.iter().map(|v| v.healthy).sum();
        out += &format!(
            "{}: group {} (desired {}, min {}, max {}), {} live, {} healthy\n",
            self.environment, self.group, self.desired_capacity, self.min_size, self.max_size, live, healthy
        );
        if let Some(template) = &self.launch_template {
            out += &format!("  launch template: {template}\n");
        }
        for v in &self.versions {
            let versions =
                if v.launch_template_versions.is_empty() { String::new() } else { format!(", version {}", v.launch_template_versions.join("/")) };
            out += &format!(
                "  {} (revision {}{}): {} instances, {} healthy\n",
                v.image_id.as_deref().unwrap_or("unknown AMI"),
                v.revision.as_deref().unwrap_or("untagged"),
                versions,
                v.instances,
                v.healthy
            );
        }
        for i in self.instances.iter().filter(|i| !i.healthy) {
            out += &format!("  not healthy: {} ({})\n", i.id, i.reason.as_deref().unwrap_or("unknown"));
        }
        out += &match &self.lock {
            Some(lock) => format!(
                "  lock: held by {} for {}{} ({})\n",
                lock.execution,
                lock.age_seconds.map(|a| format!("{a} s")).unwrap_or_else(|| "an unknown time".into()),
                if lock.stale { ", stale" } else { "" },
                lock.parameter
            ),
            None => "  lock: free\n".into(),
        };
        if let Some(pause) = self.lock.as_ref().and_then(|l| l.paused.as_ref()) {
            out += &pause_text(&self.environment, pause);
        }
        out += &if self.suspended_processes.is_empty() {
            "  suspended processes: none\n".to_string()
        } else {
            format!("  suspended processes: {}\n", self.suspended_processes.join(", "))
        };
        for alarm in &self.alarms {
            let reason = if alarm.state == "OK" { String::new() } else { format!(" ({})", alarm.reason) };
            out += &format!("  alarm {}: {}{reason}\n", alarm.name, alarm.state);
        }
        out += match self.maintenance_on {
            Some(true) => "  maintenance page: ON\n",
            Some(false) => "  maintenance page: off\n",
            None => "  maintenance page: unknown (no listener_arn configured)\n",
        };
        out
    }
}

/// A paused rollout, with what to run to go on or stop: our CLI, and the AWS CLI for scripts.
fn pause_text(environment: &str, pause: &PauseRecord) -> String {
    if pause.bake {
        return format!(
            "  BAKING since {}, until {}: an alarm rolls it back at once; then it finishes\n    \
             stop now: stepdeploy reject {environment} --reason \"...\"\n",
            utc(pause.since),
            utc(pause.until)
        );
    }
    let then = match pause.approval {
        crate::config::CheckpointApproval::Manual => "then it counts as rejected and rolls back",
        crate::config::CheckpointApproval::Auto => "then it goes on by itself unless an alarm fires",
    };
    format!(
        "  PAUSED at the {} % checkpoint ({} of {} on the new version) since {}, until {} ({then})\n    \
         approve: stepdeploy approve {environment}\n    \
         reject:  stepdeploy reject {environment} --reason \"...\"\n    \
         or: aws stepfunctions send-task-success --task-output '{{}}' --task-token '{}'\n",
        pause.percent,
        pause.instances,
        pause.goal,
        utc(pause.since),
        utc(pause.until),
        pause.token
    )
}

/// Epoch seconds as a UTC time.
pub(crate) fn utc(t: Timestamp) -> String {
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}
