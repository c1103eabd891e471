//! The environment stack (`environments/environment.yaml`) as `stepdeploy env` uses it: its
//! parameters checked before anything is created, stack events as progress lines, the first
//! failure's reason, a change set's summary and the config file's diff. No AWS calls here.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow, bail};
use serde_yaml_ng::Value;

/// The environment template, as shipped.
pub(crate) const TEMPLATE: &str = include_str!("../../../environments/environment.yaml");

/// The environment stack's name.
pub(crate) fn stack_name(deployment: &str, environment: &str) -> String {
    format!("stepdeploy-{deployment}-{environment}")
}

/// A name that goes into resource names: the template's own pattern, checked here so a bad
/// one is refused before any call (`what` names the flag or field).
pub(crate) fn check_name(what: &str, value: &str, max: usize) -> Result<()> {
    let mut chars = value.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !first_ok || !rest_ok || value.len() > max {
        bail!(
            "{what}: {value:?} is not allowed; expected lower-case letters, digits and '-', starting with a letter or digit, at most {max} characters"
        );
    }
    Ok(())
}

/// `--parameter KEY=VALUE` pairs checked against the template's parameters: known names, allowed
/// values and number ranges. (CloudFormation checks AllowedPattern itself, before it creates anything.)
pub(crate) fn parameters(given: &[String]) -> Result<BTreeMap<String, String>> {
    let template: Value = serde_yaml_ng::from_str(TEMPLATE).map_err(|e| anyhow!("environments/environment.yaml: {e}"))?;
    let specs = template.get("Parameters").and_then(Value::as_mapping).ok_or_else(|| anyhow!("environments/environment.yaml: no Parameters"))?;
    let mut out = BTreeMap::new();
    for pair in given {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("--parameter: {pair:?} is not KEY=VALUE");
        };
        if key == "Deployment" || key == "Environment" {
            bail!("--parameter: {key} comes from the command (ENV and the config's deployment or --deployment), not --parameter");
        }
        let Some(spec) = specs.get(key) else {
            let known: Vec<&str> = specs.keys().filter_map(Value::as_str).filter(|k| *k != "Deployment" && *k != "Environment").collect();
            bail!("--parameter: {key:?} is not a parameter of environments/environment.yaml; expected one of {}", known.join(", "));
        };
        if let Some(allowed) = spec.get("AllowedValues").and_then(Value::as_sequence) {
            let allowed: Vec<String> = allowed.iter().map(scalar).collect();
            if !allowed.iter().any(|a| a == value) {
                bail!("--parameter {key}: {value:?} is not allowed; expected one of {}", allowed.join(", "));
            }
        }
        if spec.get("Type").and_then(Value::as_str) == Some("Number") {
            let number: f64 = value.parse().map_err(|_| anyhow!("--parameter {key}: {value:?} is not a number"))?;
            let bound = |name: &str| spec.get(name).map(scalar).and_then(|b| b.parse::<f64>().ok());
            if let Some(min) = bound("MinValue").filter(|min| number < *min) {
                bail!("--parameter {key}: {value} is below its minimum, {min}");
            }
            if let Some(max) = bound("MaxValue").filter(|max| number > *max) {
                bail!("--parameter {key}: {value} is above its maximum, {max}");
            }
        }
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// One stack event, as `stepdeploy env` reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StackEvent {
    /// The event's id (events are listed newest first, and seen again on every poll).
    pub id: String,
    /// Seconds since the epoch.
    pub at: i64,
    /// The resource's logical id.
    pub logical_id: String,
    /// Its type, e.g. `AWS::AutoScaling::AutoScalingGroup`.
    pub resource_type: String,
    /// `CREATE_IN_PROGRESS`, `CREATE_FAILED`...
    pub status: String,
    /// Why, when CloudFormation says.
    pub reason: Option<String>,
}

/// A progress line for an event, stamped with the time since `started`.
pub(crate) fn event_line(event: &StackEvent, started: i64) -> String {
    let elapsed = (event.at - started).max(0);
    let stamp = format!("[{:02}:{:02}]", elapsed / 60, elapsed % 60);
    match &event.reason {
        Some(reason) if !reason.is_empty() => format!("{stamp} {} ({}): {}: {reason}", event.logical_id, event.resource_type, event.status),
        _ => format!("{stamp} {} ({}): {}", event.logical_id, event.resource_type, event.status),
    }
}

/// The first resource that failed, with its reason: the cause, where the stack's own status
/// (ROLLBACK_COMPLETE) and the cancellations that follow it say nothing.
pub(crate) fn first_failure(events: &[StackEvent]) -> Option<String> {
    let mut failed: Vec<&StackEvent> = events
        .iter()
        .filter(|e| e.status.ends_with("_FAILED"))
        .filter(|e| e.reason.as_deref().is_some_and(|r| !r.contains("cancelled") && !r.starts_with("The following resource(s) failed")))
        .collect();
    failed.sort_by_key(|e| e.at);
    failed.first().map(|e| format!("{} ({}): {}", e.logical_id, e.resource_type, e.reason.as_deref().unwrap_or_default()))
}

/// Whether a stack status is final (nothing more will happen without a new request).
pub(crate) fn is_final(status: &str) -> bool {
    !status.ends_with("_IN_PROGRESS")
}

/// Whether a final stack status means the request did what was asked.
pub(crate) fn succeeded(status: &str, deleting: bool) -> bool {
    if deleting { status == "DELETE_COMPLETE" } else { matches!(status, "CREATE_COMPLETE" | "UPDATE_COMPLETE") }
}

/// One line of a change set: what happens to which resource, and whether it is replaced.
pub(crate) fn change_line(action: &str, logical_id: &str, resource_type: &str, replacement: Option<&str>) -> String {
    let warning = match (resource_type, action) {
        // A new launch template version comes from the base image, not a bake: say so.
        ("AWS::EC2::LaunchTemplate", "Modify") => "  (a new version from the base image: bake and deploy after it)",
        ("AWS::AutoScaling::AutoScalingGroup", "Modify") => "  (sizes and settings change at once)",
        _ => "",
    };
    match replacement {
        Some("True") => format!("  {action} {logical_id} ({resource_type}), REPLACED{warning}"),
        Some("Conditional") => format!("  {action} {logical_id} ({resource_type}), may be replaced{warning}"),
        _ => format!("  {action} {logical_id} ({resource_type}){warning}"),
    }
}

/// A unified diff of the config file, or `None` when nothing changes.
pub(crate) fn diff(path: &str, before: &str, after: &str) -> Option<String> {
    if before == after {
        return None;
    }
    let diff = similar::TextDiff::from_lines(before, after);
    Some(diff.unified_diff().context_radius(2).header(path, &format!("{path} (from the stack)")).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: i64, logical_id: &str, status: &str, reason: Option<&str>) -> StackEvent {
        StackEvent {
            id: format!("{logical_id}-{at}"),
            at,
            logical_id: logical_id.into(),
            resource_type: "AWS::X::Y".into(),
            status: status.into(),
            reason: reason.map(String::from),
        }
    }

    #[test]
    fn the_first_failure_is_the_cause_not_the_cancellations_after_it() {
        let events = vec![
            event(
                9,
                "stepdeploy-demo-staging",
                "ROLLBACK_IN_PROGRESS",
                Some("The following resource(s) failed to create: [WebGroup]. Rollback requested by user."),
            ),
            event(8, "LoadBalancer", "CREATE_FAILED", Some("Resource creation cancelled")),
            event(7, "WebGroup", "CREATE_FAILED", Some("You have requested more vCPU capacity than your current vCPU limit of 8 allows")),
            event(5, "WebGroup", "CREATE_IN_PROGRESS", None),
        ];
        assert_eq!(
            first_failure(&events).as_deref(),
            Some("WebGroup (AWS::X::Y): You have requested more vCPU capacity than your current vCPU limit of 8 allows")
        );
        assert_eq!(first_failure(&events[3..]), None);
    }

    #[test]
    fn parameters_are_checked_against_the_template_before_any_call() {
        let ok = parameters(&["Database=postgres".into(), "WebMaxSize=4".into()]).unwrap();
        assert_eq!(ok.get("Database").map(String::as_str), Some("postgres"));
        let error = |args: &[&str]| parameters(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>()).unwrap_err().to_string();
        assert_eq!(error(&["Database=mysql"]), "--parameter Database: \"mysql\" is not allowed; expected one of none, postgres");
        assert_eq!(error(&["WorkerCount=21"]), "--parameter WorkerCount: 21 is above its maximum, 20");
        assert_eq!(error(&["WebMaxSize=many"]), "--parameter WebMaxSize: \"many\" is not a number");
        assert!(
            error(&["Databse=postgres"])
                .starts_with("--parameter: \"Databse\" is not a parameter of environments/environment.yaml; expected one of VpcId,")
        );
        assert_eq!(error(&["Database"]), "--parameter: \"Database\" is not KEY=VALUE");
        assert!(error(&["Environment=x"]).contains("comes from the command"));
    }

    #[test]
    fn the_template_fits_in_a_create_stack_call() {
        // TemplateBody takes at most 51,200 bytes; beyond it the template would have to go to S3:
        // https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateStack.html
        assert!(TEMPLATE.len() < 51_200 * 9 / 10, "{} bytes: keep a margin under 51,200", TEMPLATE.len());
    }

    #[test]
    fn names_outside_the_templates_pattern_are_refused() {
        assert!(check_name("ENV", "staging-2", 31).is_ok());
        assert_eq!(
            check_name("ENV", "Staging", 31).unwrap_err().to_string(),
            "ENV: \"Staging\" is not allowed; expected lower-case letters, digits and '-', starting with a letter or digit, at most 31 characters"
        );
        assert!(check_name("ENV", "-x", 31).is_err());
        assert!(check_name("ENV", &"a".repeat(32), 31).is_err());
    }

    #[test]
    fn a_change_set_line_warns_where_a_change_is_not_harmless() {
        assert_eq!(
            change_line("Modify", "WebLaunchTemplate", "AWS::EC2::LaunchTemplate", Some("False")),
            "  Modify WebLaunchTemplate (AWS::EC2::LaunchTemplate)  (a new version from the base image: bake and deploy after it)"
        );
        assert_eq!(change_line("Modify", "Vpc", "AWS::EC2::VPC", Some("True")), "  Modify Vpc (AWS::EC2::VPC), REPLACED");
        assert_eq!(change_line("Add", "CacheCluster", "AWS::ElastiCache::CacheCluster", None), "  Add CacheCluster (AWS::ElastiCache::CacheCluster)");
    }

    #[test]
    fn the_diff_shows_only_what_changes() {
        assert_eq!(diff("stepdeploy.yaml", "a\nb\n", "a\nb\n"), None);
        let shown = diff("stepdeploy.yaml", "a\nb\nc\n", "a\nB\nc\n").unwrap();
        assert!(shown.contains("-b\n+B\n"), "{shown}");
        assert!(event_line(&event(75, "WebGroup", "CREATE_COMPLETE", None), 0).starts_with("[01:15] WebGroup (AWS::X::Y): CREATE_COMPLETE"));
    }
}
