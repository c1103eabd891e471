//! `stepdeploy asl run` and `stepdeploy asl validate`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use stepdeploy_asl::invoke::{HttpFunctions, LambdaTasks};
use stepdeploy_asl::mock::MockConfig;
use stepdeploy_asl::{Clock, Definition, Engine, NoTasks, Status, SystemClock, TaskInvoker, VirtualClock};

/// Exit code for an invalid definition or input.
pub const INVALID: u8 = 2;

/// Options of `asl run`.
pub struct RunArgs {
    /// The definition file.
    pub definition: PathBuf,
    /// Inline input JSON.
    pub input: Option<String>,
    /// Input JSON file.
    pub input_file: Option<PathBuf>,
    /// Waits pass at once.
    pub virtual_time: bool,
    /// Print one JSON object.
    pub json: bool,
    /// Lambda Invoke API endpoint for Task states.
    pub lambda_endpoint: Option<String>,
    /// DefinitionSubstitutions, NAME=VALUE.
    pub substitutions: Vec<String>,
    /// Mocked Task responses, if any.
    pub mock: Option<MockArgs>,
}

/// `--mock-config FILE --test-case NAME [--state-machine NAME]`.
pub struct MockArgs {
    /// The MockConfigFile.
    pub config: PathBuf,
    /// The test case.
    pub test_case: String,
    /// The state machine's name in it (default: the definition file's stem).
    pub state_machine: Option<String>,
}

fn invalid(message: String, json_output: bool) -> ExitCode {
    if json_output {
        println!("{}", json!({"status": "INVALID", "output": null, "error": "InvalidDefinitionOrInput", "cause": message, "transitions": 0}));
    }
    eprintln!("error: {message}");
    ExitCode::from(INVALID)
}

fn read_definition(path: &Path, substitutions: &HashMap<String, String>) -> Result<Definition, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Definition::parse(&text, substitutions).map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs a definition; exit 0 on SUCCEEDED, 1 on any other status, 2 on bad input.
pub async fn run(args: RunArgs) -> Result<ExitCode> {
    let mut substitutions = HashMap::new();
    for pair in &args.substitutions {
        let Some((name, value)) = pair.split_once('=') else {
            return Ok(invalid(format!("--substitution: {pair:?} is not NAME=VALUE"), args.json));
        };
        substitutions.insert(name.to_string(), value.to_string());
    }
    let definition = match read_definition(&args.definition, &substitutions) {
        Ok(d) => d,
        Err(message) => return Ok(invalid(message, args.json)),
    };
    let (source, text) = match (&args.input, &args.input_file) {
        (Some(_), Some(_)) => return Ok(invalid("--input and --input-file: give one, not both".into(), args.json)),
        (Some(text), None) => ("--input".to_string(), text.clone()),
        (None, Some(file)) => match std::fs::read_to_string(file) {
            Ok(text) => (format!("--input-file {}", file.display()), text),
            Err(e) => return Ok(invalid(format!("--input-file: cannot read {}: {e}", file.display()), args.json)),
        },
        (None, None) => ("(no input)".into(), "{}".into()),
    };
    let input: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            return Ok(invalid(format!("{source}: not valid JSON ({e}); expected a JSON value such as {{\"environment\": \"staging\"}}"), args.json));
        }
    };
    let clock: Arc<dyn Clock> = if args.virtual_time { Arc::new(VirtualClock::starting_at(chrono::Utc::now())) } else { Arc::new(SystemClock) };
    let invoker: Arc<dyn TaskInvoker> = match &args.lambda_endpoint {
        Some(endpoint) => Arc::new(LambdaTasks::new(HttpFunctions::new(endpoint))),
        None => Arc::new(NoTasks),
    };
    let name = args.definition.file_stem().and_then(|s| s.to_str()).unwrap_or("local").trim_end_matches(".asl").to_string();
    let invoker: Arc<dyn TaskInvoker> = match &args.mock {
        None => invoker,
        Some(mock) => {
            let text = match std::fs::read_to_string(&mock.config) {
                Ok(text) => text,
                Err(e) => return Ok(invalid(format!("--mock-config: cannot read {}: {e}", mock.config.display()), args.json)),
            };
            let machine = mock.state_machine.clone().unwrap_or_else(|| name.clone());
            let tasks = MockConfig::parse(&text).and_then(|config| config.test_case(&machine, &mock.test_case, definition.machine(), invoker));
            match tasks {
                Ok(tasks) => Arc::new(tasks),
                Err(message) => return Ok(invalid(format!("--mock-config {}: {message}", mock.config.display()), args.json)),
            }
        }
    };
    let engine = Engine::new(clock, invoker).with_name(&name);
    let execution_name = format!("local-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S"));
    let execution = engine.run(&definition, input, &execution_name).await;
    let status = match execution.status {
        Status::Succeeded => "SUCCEEDED",
        Status::Failed => "FAILED",
        Status::TimedOut => "TIMED_OUT",
    };
    if args.json {
        println!(
            "{}",
            json!({
                "status": status,
                "output": execution.output,
                "error": execution.error,
                "cause": execution.cause,
                "transitions": execution.transitions,
                "history_events": execution.history.len(),
                "max_payload_bytes": execution.max_payload_bytes(),
            })
        );
    } else {
        println!(
            "{status} after {} state transition(s), {} history events (AWS's quota: 25,000); largest payload {} bytes (quota: 262,144)",
            execution.transitions,
            execution.history.len(),
            execution.max_payload_bytes()
        );
        if let Some(output) = &execution.output {
            println!("{}", serde_json::to_string_pretty(output).unwrap_or_default());
        }
        if let Some(error) = &execution.error {
            println!("error: {error}");
        }
        if let Some(cause) = &execution.cause {
            println!("cause: {cause}");
        }
    }
    Ok(if execution.status == Status::Succeeded { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Validates definitions; exit 2 if any is invalid.
pub fn validate(files: &[PathBuf], json: bool) -> Result<ExitCode> {
    let mut bad = 0;
    let mut results = Vec::new();
    for file in files {
        // Substitutions are unknown here: validate with each ${Name} standing for a placeholder ARN.
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let placeholders = placeholder_substitutions(&text);
        let (line, result) = match Definition::parse(&text, &placeholders) {
            Ok(d) => {
                let states = d.machine().states.len();
                (format!("{}: ok ({states} states)", file.display()), serde_json::json!({"file": file, "ok": true, "states": states}))
            }
            Err(e) => {
                bad += 1;
                (format!("{}: {e}", file.display()), serde_json::json!({"file": file, "ok": false, "error": e.to_string()}))
            }
        };
        if json {
            results.push(result);
        } else {
            println!("{line}");
        }
    }
    if json {
        println!("{}", serde_json::json!({"valid": bad == 0, "files": results}));
    }
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(INVALID) })
}

fn placeholder_substitutions(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let name = &after[..end];
        out.insert(name.to_string(), format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"));
        rest = &after[end + 1..];
    }
    out
}
