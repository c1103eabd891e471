//! Import of a Fabulaws `fabulaws-config.yml` into a stepdeploy [`Config`].
//!
//! The import is faithful: it never fixes the input silently. Every key it
//! does not carry over becomes a warning, and every reference to an
//! environment or deployment that the input does not define is reported.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde_yaml_ng::{Mapping, Value};

use crate::config::{Config, Environment};

/// Keys that the import reads (and so carries over, wholly or in part).
const CARRIED: &[&str] = &[
    "deployments",
    "default_deployment",
    "environments",
    "production_environments",
    "region",
    "auto_scaling_groups",
    "load_balancers",
    "site_domains_map",
    "instance_types",
    "branches",
];

/// What an import produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    /// The converted config (not yet complete: see `Config` validation).
    pub config: Config,
    /// Keys not carried over, and values the import had to interpret.
    pub warnings: Vec<String>,
    /// References in the input that don't agree with each other.
    pub inconsistencies: Vec<String>,
}

/// Why a file could not be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Not YAML.
    #[error("the Fabulaws config is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// YAML, but not a Fabulaws config.
    #[error("{field}: {message}")]
    Shape {
        /// The key at fault.
        field: String,
        /// What was expected.
        message: String,
    },
}

/// Converts Fabulaws YAML text. `deployment` picks one deployment when the file has several.
pub fn import(text: &str, deployment: Option<&str>) -> Result<Import, ImportError> {
    import_with(text, deployment, &BTreeMap::new())
}

/// [`import`], with the operator's choice for each name in `production_environments` that is not
/// an environment: `Some(env)` marks `env` production instead, `None` marks nothing. Without a
/// choice for such a name the import stops: a production flag is never dropped silently.
pub fn import_with(text: &str, deployment: Option<&str>, production_fixes: &BTreeMap<String, Option<String>>) -> Result<Import, ImportError> {
    let root: Value = serde_yaml_ng::from_str(text)?;
    let Value::Mapping(root) = root else {
        return Err(shape("(file)", "expected a mapping of Fabulaws settings"));
    };
    let mut warnings = Vec::new();
    let mut inconsistencies = Vec::new();

    let deployments = string_list(&root, "deployments")?;
    let default_deployment = root.get("default_deployment").and_then(Value::as_str).map(str::to_string);
    if let Some(default) = &default_deployment
        && !deployments.is_empty()
        && !deployments.contains(default)
    {
        inconsistencies.push(format!("default_deployment: {default:?} is not listed in deployments ({})", deployments.join(", ")));
    }
    let deployment = match (deployment, &default_deployment, deployments.as_slice()) {
        (Some(name), _, _) => {
            if !deployments.is_empty() && !deployments.iter().any(|d| d == name) {
                return Err(shape("--deployment", &format!("{name:?} is not one of the file's deployments: {}", deployments.join(", "))));
            }
            name.to_string()
        }
        (None, Some(default), _) => default.clone(),
        (None, None, [only]) => only.clone(),
        (None, None, []) => return Err(shape("deployments", "missing; pass --deployment NAME")),
        (None, None, several) => {
            return Err(shape("deployments", &format!("lists several ({}); pass --deployment NAME", several.join(", "))));
        }
    };

    let environments = string_list(&root, "environments")?;
    if environments.is_empty() {
        return Err(shape("environments", "missing or empty; expected the list of environment names"));
    }
    let mut production = string_list(&root, "production_environments")?;
    for name in production.clone() {
        if environments.contains(&name) {
            continue;
        }
        match production_fixes.get(&name) {
            Some(Some(fixed)) if environments.contains(fixed) => {
                inconsistencies.push(format!(
                    "production_environments: {name:?} is not in environments; by your choice (--production-fix {name}={fixed}) {fixed} is marked production"
                ));
                production.push(fixed.clone());
            }
            Some(Some(fixed)) => {
                return Err(shape("--production-fix", &format!("{name}={fixed}: {fixed:?} is not in environments ({})", environments.join(", "))));
            }
            Some(None) => inconsistencies.push(format!(
                "production_environments: {name:?} is not in environments; by your choice (--production-fix {name}=none) no environment is marked production because of it"
            )),
            None => {
                let suggestion = did_you_mean(&name, &environments);
                let fix = environments.iter().find(|e| suggestion.contains(&format!("{e:?}"))).cloned().unwrap_or_else(|| "ENV".to_string());
                return Err(shape(
                    "production_environments",
                    &format!(
                        "{name:?} is not in environments{suggestion}, so no environment would be marked production for it; a production flag is never dropped silently: pass --production-fix {name}={fix} to mark {fix} production, or --production-fix {name}=none to mark none"
                    ),
                ));
            }
        }
    }
    let region = root.get("region").and_then(Value::as_str).unwrap_or_default().to_string();
    if region.is_empty() {
        warnings.push("region: missing; every environment's region is left for you to fill in".into());
    }

    let per_deployment = |key: &str, inconsistencies: &mut Vec<String>| -> Result<Mapping, ImportError> {
        let Some(value) = root.get(key) else {
            return Ok(Mapping::new());
        };
        let Value::Mapping(by_deployment) = value else {
            return Err(shape(key, "expected a mapping of deployment names to environments"));
        };
        for name in by_deployment.keys().filter_map(Value::as_str) {
            if !deployments.is_empty() && !deployments.iter().any(|d| d == name) {
                inconsistencies.push(format!("{key}: deployment {name:?} is not listed in deployments"));
            }
        }
        match by_deployment.get(deployment.as_str()) {
            Some(Value::Mapping(envs)) => Ok(envs.clone()),
            Some(_) => Err(shape(&format!("{key}.{deployment}"), "expected a mapping of environment names")),
            None => Ok(Mapping::new()),
        }
    };
    let groups = per_deployment("auto_scaling_groups", &mut inconsistencies)?;
    let balancers = per_deployment("load_balancers", &mut inconsistencies)?;
    let branches = per_deployment("branches", &mut inconsistencies)?;
    let domains = mapping(&root, "site_domains_map")?;
    let instance_types = mapping(&root, "instance_types")?;

    // Every environment-keyed section must name only known environments.
    let sections: [(String, &Mapping); 5] = [
        (format!("auto_scaling_groups.{deployment}"), &groups),
        (format!("load_balancers.{deployment}"), &balancers),
        (format!("branches.{deployment}"), &branches),
        ("site_domains_map".to_string(), &domains),
        ("instance_types".to_string(), &instance_types),
    ];
    for (section, map) in &sections {
        for name in map.keys() {
            let name = name.as_str().unwrap_or_default();
            if !environments.iter().any(|e| e == name) {
                inconsistencies.push(format!("{section}: environment {name:?} is not in environments{}", did_you_mean(name, &environments)));
            }
        }
    }
    for (key, value) in &root {
        let key = key.as_str().unwrap_or_default();
        if CARRIED.contains(&key) {
            continue;
        }
        // Other environment-keyed maps aren't carried, but their references still get checked.
        if let Value::Mapping(map) = value
            && !map.is_empty()
            && map.keys().all(|k| k.as_str().is_some_and(|k| environments.iter().any(|e| e == k) || looks_like_env(k, &environments)))
        {
            for name in map.keys().filter_map(Value::as_str) {
                if !environments.iter().any(|e| e == name) {
                    inconsistencies.push(format!("{key}: environment {name:?} is not in environments{}", did_you_mean(name, &environments)));
                }
            }
        }
        warnings.push(format!("{key}: not carried over ({})", why_not_carried(key)));
    }

    let mut out = IndexMap::new();
    for name in &environments {
        let mut env = Environment { region: region.clone(), production: production.contains(name), ..Environment::default() };
        match groups.get(name.as_str()) {
            Some(Value::String(group)) => env.auto_scaling_group = group.clone(),
            Some(other) => inconsistencies.push(format!("auto_scaling_groups.{deployment}.{name}: {other:?} is not a group name")),
            None => inconsistencies.push(format!("auto_scaling_groups.{deployment}: no group for environment {name:?}")),
        }
        match balancers.get(name.as_str()) {
            Some(Value::Sequence(list)) => {
                let names: Vec<String> = list.iter().filter_map(Value::as_str).map(str::to_string).collect();
                if names.len() > 1 {
                    warnings.push(format!(
                        "load_balancers.{deployment}.{name}: {} load balancers; kept the first ({}); list every target group in target_group_arns",
                        names.len(),
                        names[0]
                    ));
                }
                env.load_balancer = names.into_iter().next();
            }
            Some(Value::String(lb)) => env.load_balancer = Some(lb.clone()),
            Some(other) => inconsistencies.push(format!("load_balancers.{deployment}.{name}: {other:?} is not a load balancer name")),
            None => inconsistencies.push(format!("load_balancers.{deployment}: no load balancer for environment {name:?}")),
        }
        match domains.get(name.as_str()) {
            Some(Value::Sequence(list)) => env.domains = list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            Some(other) => inconsistencies.push(format!("site_domains_map.{name}: {other:?} is not a list of domains")),
            None => inconsistencies.push(format!("site_domains_map: no domains for environment {name:?}")),
        }
        env.branch = branches.get(name.as_str()).and_then(Value::as_str).map(str::to_string);
        env.instance_type = instance_types.get(name.as_str()).and_then(|roles| roles.get("web")).and_then(Value::as_str).map(str::to_string);
        env.workers.tags = IndexMap::from([
            ("deployment".to_string(), deployment.clone()),
            ("environment".to_string(), name.clone()),
            ("role".to_string(), "worker".to_string()),
        ]);
        out.insert(name.clone(), env);
    }
    Ok(Import { config: Config { deployment, environments: out }, warnings, inconsistencies })
}

fn why_not_carried(key: &str) -> String {
    let simple = match key {
        "static_html" => "it names files in the project's repository; paste the 503 page into maintenance.html (at most 1,024 bytes)",
        "security_groups" | "subnets" | "avail_zones" | "volume_sizes" | "volume_types" => "the launch template holds it now",
        "valid_roles" => "roles are instance tags now: workers.tags selects the workers",
        _ => match example_for(key) {
            Some(script) => return format!("{}; see {EXAMPLES}/{script}, which does it for a Django site", what_does_it(key)),
            None => "stepdeploy has no setting for it",
        },
    };
    simple.to_string()
}

/// The example scripts for a Django site, which take over the server setup Fabulaws did.
pub const EXAMPLES: &str = "examples/django";

/// The example script that now does what a Fabulaws key set up (its comments name the key).
pub fn example_for(key: &str) -> Option<&'static str> {
    Some(match key {
        "instance_settings"
        | "app_server_packages"
        | "server_ports"
        | "wsgi_app"
        | "gunicorn_worker_multiplier"
        | "celery_workers"
        | "static_hosting"
        | "less_version"
        | "pgbouncer_port"
        | "use_basic_auth"
        | "logstash_config"
        | "backup_key_fingerprint" => "stepdeploy-bake",
        "deploy_user"
        | "webserver_user"
        | "home"
        | "python"
        | "project"
        | "repo"
        | "vcs_cmd"
        | "latest_changeset_cmd"
        | "ssh_keys"
        | "disable_known_hosts"
        | "requirements_file"
        | "requirements_sdists"
        | "settings_managepy"
        | "password_names"
        | "localsettings_template"
        | "db_settings"
        | "database_host"
        | "database_user" => "stepdeploy-lib.sh",
        _ => return None,
    })
}

/// Where the job of a Fabulaws key is done now.
fn what_does_it(key: &str) -> &'static str {
    match key {
        "password_names" | "localsettings_template" | "db_settings" | "database_host" | "database_user" => {
            "secrets belong in SSM Parameter Store, read with the instance role at boot, never in the image"
        }
        "repo" | "vcs_cmd" | "latest_changeset_cmd" | "ssh_keys" | "disable_known_hosts" => {
            "the scripts fetch the code at the revision stepdeploy passes, with a deploy key from SSM"
        }
        _ => "the host setup belongs to the bake, worker-deploy, migrate and in-place scripts now",
    }
}

/// A key like `staging02` in a map of environments: close to a known name.
fn looks_like_env(key: &str, environments: &[String]) -> bool {
    environments.iter().any(|e| strsim::levenshtein(e, key) <= 2)
}

fn did_you_mean(name: &str, known: &[String]) -> String {
    known
        .iter()
        .map(|k| (strsim::levenshtein(k, name), k))
        .filter(|(distance, _)| *distance <= 2)
        .min()
        .map(|(_, k)| format!(" (did you mean {k:?}?)"))
        .unwrap_or_default()
}

fn string_list(root: &Mapping, key: &str) -> Result<Vec<String>, ImportError> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| shape(key, &format!("{v:?} is not a name; expected a list of names"))))
            .collect(),
        Some(_) => Err(shape(key, "expected a list of names")),
    }
}

fn mapping(root: &Mapping, key: &str) -> Result<Mapping, ImportError> {
    match root.get(key) {
        None | Some(Value::Null) => Ok(Mapping::new()),
        Some(Value::Mapping(m)) => Ok(m.clone()),
        Some(_) => Err(shape(key, "expected a mapping of environment names")),
    }
}

fn shape(field: &str, message: &str) -> ImportError {
    ImportError::Shape { field: field.to_string(), message: message.to_string() }
}

/// The header written above an imported config.
pub fn header(source: &str, import: &Import) -> String {
    let mut lines = vec![
        format!("# stepdeploy config imported from {source}."),
        "# Every setting is spelled out with its default. Fill in what `stepdeploy config check` reports:".to_string(),
        "# target_group_arns, listener_arn and launch_template did not exist in Fabulaws.".to_string(),
    ];
    for line in &import.inconsistencies {
        lines.push(format!("# INCONSISTENT INPUT: {line}"));
    }
    lines.join("\n") + "\n"
}
