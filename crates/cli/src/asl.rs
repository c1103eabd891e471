//! `stepdeploy asl run` and `stepdeploy asl validate`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use stepdeploy_asl::invoke::{HttpFunctions, LambdaTasks};
use stepdeploy_asl::mock::MockConfig;
use stepdeploy_asl::tokens::{PendingTask, TaskTokens, TokenAnswer};
use stepdeploy_asl::{Clock, Definition, Engine, NoTasks, Status, SystemClock, TaskError, TaskInvoker, VirtualClock};

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
    /// `--task-token ANSWER` and `--task-token-after SECONDS`.
    pub task_token: Option<(String, u64)>,
}

/// Takes a service integration that no handler serves as done (`{}`), for `--task-token` runs.
struct SentAnyway(Arc<dyn TaskInvoker>);

#[async_trait::async_trait]
impl TaskInvoker for SentAnyway {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        self.invoke_state("", resource, input).await
    }

    async fn invoke_state(&self, state: &str, resource: &str, input: Value) -> Result<Value, TaskError> {
        match self.0.invoke_state(state, resource, input).await {
            Err(e) if e.error == stepdeploy_asl::NO_TASK_HANDLER && resource.starts_with("arn:aws:states:::") => Ok(json!({})),
            other => other,
        }
    }
}

/// `success[:JSON]` or `failure:ERROR[:CAUSE]`, answered `after` seconds after the integration call.
fn token_answers(answer: &str, after: u64) -> Result<TaskTokens, String> {
    let answer: TokenAnswer = match answer.split_once(':').map_or((answer, None), |(kind, rest)| (kind, Some(rest))) {
        ("success", None) => Ok(json!({})),
        ("success", Some(output)) => Ok(serde_json::from_str(output).map_err(|e| format!("--task-token: success:{output} is not JSON: {e}"))?),
        ("failure", Some(rest)) if !rest.is_empty() => {
            let (error, cause) = rest.split_once(':').map_or((rest, None), |(e, c)| (e, Some(c.to_string())));
            Err(TaskError { error: error.to_string(), cause })
        }
        _ => return Err(format!("--task-token: {answer:?} is not an answer; expected success, success:JSON or failure:ERROR[:CAUSE]")),
    };
    let after = chrono::Duration::seconds(i64::try_from(after).unwrap_or(i64::MAX));
    Ok(TaskTokens::with_responder(Arc::new(move |task: &PendingTask, now| (now - task.issued_at >= after).then(|| answer.clone()))))
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
    let tokens = match &args.task_token {
        None => None,
        Some((answer, after)) => match token_answers(answer, *after) {
            Ok(tokens) => Some(tokens),
            Err(message) => return Ok(invalid(message, args.json)),
        },
    };
    // With answers for task tokens, a service integration no handler serves (sns:publish, sqs:
    // sendMessage...) counts as sent: the token's answer is what the run is about.
    let invoker: Arc<dyn TaskInvoker> = if tokens.is_some() { Arc::new(SentAnyway(invoker)) } else { invoker };
    let mut engine = Engine::new(clock, invoker).with_name(&name);
    if let Some(tokens) = tokens {
        engine = engine.with_task_tokens(tokens);
    }
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
