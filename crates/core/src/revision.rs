//! Git revisions as stepdeploy accepts them. A revision reaches commands on
//! instances (the bake script, the worker deploy, migrations), so it is
//! checked against a strict pattern wherever it comes from: the execution
//! input, the config's `branch`, or a tag on the running instances or image
//! (which anyone who can tag an instance could set). Git's own ref rules
//! allow `$`, `;` and backticks, so they are not enough.
//!
//! Commands never get it as shell text: it is the `revision` parameter of
//! stepdeploy's SSM document, which the agent passes as the environment
//! variable `SSM_revision` (`interpolationType: ENV_VAR`).

/// What a revision may look like: `^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$`.
pub const PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$";

/// Longest revision accepted.
pub const MAX_LENGTH: usize = 128;

/// What `{revision}` in a configured command becomes: the environment
/// variable the SSM document sets, quoted so the shell never splits it.
pub const COMMAND_PLACEHOLDER: &str = "\"$SSM_revision\"";

/// Checks a revision; the error says what was wrong, for a message that also names where it came from.
pub fn check(revision: &str) -> Result<(), String> {
    let mut chars = revision.chars();
    let Some(first) = chars.next() else {
        return Err("is empty".into());
    };
    if revision.len() > MAX_LENGTH {
        return Err(format!("is {} characters long; at most {MAX_LENGTH} are allowed", revision.len()));
    }
    if !first.is_ascii_alphanumeric() {
        return Err(format!("starts with {first:?}; a revision starts with a letter or digit"));
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))) {
        return Err(format!("contains {bad:?}; only letters, digits, '.', '_', '/' and '-' are allowed"));
    }
    Ok(())
}

/// A configured command with `{revision}` turned into the SSM document's environment variable.
pub fn in_command(command: &str) -> String {
    command.replace("{revision}", COMMAND_PLACEHOLDER)
}

/// The name of a deployment's SSM command document (template.yaml's `CommandDocument`).
pub fn command_document(deployment: &str) -> String {
    format!("stepdeploy-{deployment}-command")
}

/// The CloudWatch Logs group commands send their whole output to (template.yaml's `CommandLogs`).
pub fn command_log_group(deployment: &str) -> String {
    format!("/stepdeploy/{deployment}/commands")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_revisions_are_refused_with_the_reason() {
        let cases = [
            ("$(id)", "starts with '$'"),
            ("main;id", "contains ';'"),
            ("main`id`", "contains '`'"),
            ("main\nid", "contains '\\n'"),
            ("--upload-pack=touch /tmp/x", "starts with '-'"),
            ("main id", "contains ' '"),
            ("main|id", "contains '|'"),
            ("main&&id", "contains '&'"),
            ("a$HOME", "contains '$'"),
            ("../etc", "starts with '.'"),
            ("", "is empty"),
        ];
        for (revision, why) in cases {
            let error = check(revision).expect_err(revision);
            assert!(error.contains(why), "{revision:?}: {error}");
        }
        assert!(check(&"a".repeat(129)).expect_err("too long").contains("129 characters"));
    }

    #[test]
    fn ordinary_revisions_pass() {
        for revision in ["4f2c9e1", "main", "release/1.2", "v1.2.3-rc_1", &"a".repeat(128), "0"] {
            assert_eq!(check(revision), Ok(()), "{revision}");
        }
    }

    #[test]
    fn a_command_gets_the_revision_only_as_the_environment_variable() {
        assert_eq!(in_command("/usr/local/bin/stepdeploy-bake {revision}"), "/usr/local/bin/stepdeploy-bake \"$SSM_revision\"");
        assert_eq!(in_command("deploy {revision} && notify {revision}"), "deploy \"$SSM_revision\" && notify \"$SSM_revision\"");
        assert_eq!(command_document("opendebates"), "stepdeploy-opendebates-command");
    }
}
