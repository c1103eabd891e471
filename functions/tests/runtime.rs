//! The step binaries under a minimal Lambda Runtime API on loopback (the
//! HTTP interface Lambda gives a custom runtime,
//! https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html): what
//! they report to Lambda and what they log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One request the function made.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A Runtime API that hands out `event` once and records every request.
struct Runtime {
    address: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Runtime {
    fn start(event: &str) -> Runtime {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let address = listener.local_addr().expect("an address").to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handed = Arc::new(AtomicBool::new(false));
        let (log, event) = (seen.clone(), event.to_string());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, handed, event) = (log.clone(), handed.clone(), event.clone());
                std::thread::spawn(move || answer(stream, &log, &handed, &event));
            }
        });
        Runtime { address, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits (at most 60 s) for a request to `path_suffix`.
    fn wait_for(&self, path_suffix: &str) -> Seen {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(found) = self.seen().into_iter().find(|s| s.path.ends_with(path_suffix)) {
                return found;
            }
            assert!(Instant::now() < deadline, "no request to {path_suffix}: {:?}", self.seen());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Serves one keep-alive connection: the event once on /next (later calls
/// hang, as they do between invocations), 202 for everything posted.
fn answer(stream: TcpStream, log: &Mutex<Vec<Seen>>, handed: &AtomicBool, event: &str) {
    let mut reader = BufReader::new(stream.try_clone().expect("a clone"));
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = header.trim_end().split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let length = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let body = String::from_utf8_lossy(&body).into_owned();
        log.lock().unwrap_or_else(|p| p.into_inner()).push(Seen { method: method.clone(), path: path.clone(), headers, body });
        let reply = if path.ends_with("/invocation/next") {
            if handed.swap(true, Ordering::SeqCst) {
                std::thread::sleep(Duration::from_secs(3600));
                return;
            }
            let deadline = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() + 60_000).unwrap_or(0);
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-1\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:rollback\r\nContent-Length: {}\r\n\r\n{event}",
                event.len()
            )
        } else {
            "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n".to_string()
        };
        let closing = headers_say_close(&log.lock().unwrap_or_else(|p| p.into_inner()));
        if writer.write_all(reply.as_bytes()).is_err() || closing {
            return;
        }
    }
}

/// Whether the last request asked to close its connection.
fn headers_say_close(seen: &[Seen]) -> bool {
    seen.last().and_then(|s| s.header("Connection")).is_some_and(|v| v.eq_ignore_ascii_case("close"))
}

/// The `rollback` step (it makes no AWS call) with `env` on top of a Lambda-like environment.
fn function(runtime: &Runtime, env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rollback"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &runtime.address)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_LAMBDA_FUNCTION_NAME", "rollback")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/stepdeploy-demo")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the step binary starts")
}

#[test]
fn a_step_that_cannot_start_reports_a_named_init_error_to_lambda() {
    let runtime = Runtime::start("{}");
    let mut child = function(&runtime, &[]);
    let reported = runtime.wait_for("/runtime/init/error");
    let status = child.wait().expect("it exits");
    assert!(!status.success());
    assert_eq!(reported.method, "POST");
    assert_eq!(reported.header("Lambda-Runtime-Function-Error-Type"), Some("StepDeploy.ConfigInvalid"));
    let body: Value = serde_json::from_str(&reported.body).expect("a JSON error");
    assert_eq!(body["errorType"], "StepDeploy.ConfigInvalid");
    assert!(body["errorMessage"].as_str().unwrap_or_default().contains("STEPDEPLOY_DEPLOYMENT is not set"), "{body}");
}

#[test]
fn an_expected_failure_is_reported_by_name_and_logged_once_at_warn_with_one_key_per_field() {
    let runtime = Runtime::start(r#"{"deployment": 5, "execution_id": "arn:aws:states:us-east-1:123456789012:execution:m:e1"}"#);
    let mut child = function(&runtime, &[("STEPDEPLOY_DEPLOYMENT", "demo"), ("AWS_LAMBDA_LOG_FORMAT", "JSON")]);
    let reported = runtime.wait_for("/runtime/invocation/req-1/error");
    std::thread::sleep(Duration::from_millis(300)); // let the last log line out
    let _ = child.kill();
    let output = child.wait_with_output().expect("its output");
    let body: Value = serde_json::from_str(&reported.body).expect("a JSON error");
    assert_eq!(body["errorType"], "StepDeploy.InvalidInput", "{body}");

    let logs = String::from_utf8_lossy(&output.stdout);
    let records: Vec<Value> = logs.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).expect("a JSON log line")).collect();
    for line in logs.lines() {
        assert!(line.matches("\"message\":").count() <= 1, "a key twice: {line}");
    }
    assert!(records.iter().all(|r| r["level"] != "ERROR"), "an expected failure is not an error: {logs}");
    let failed: Vec<&Value> = records.iter().filter(|r| r["fields"]["message"] == "step failed").collect();
    assert_eq!(failed.len(), 1, "{logs}");
    assert_eq!(failed[0]["level"], "WARN");
    assert_eq!(failed[0]["fields"]["error_type"], "StepDeploy.InvalidInput");
    assert!(failed[0]["fields"]["error_message"].as_str().unwrap_or_default().starts_with("deployment: "), "{logs}");
    assert!(failed[0].to_string().contains("e1"), "the execution id is in the record: {logs}");
}
