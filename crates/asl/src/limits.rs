//! AWS Step Functions' quotas that decide whether an execution succeeds
//! (<https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html>):
//! the size of a state's data and the length of an execution's history.

use std::io::Write;

use serde_json::Value;

/// A state's input or output, a task's parameters or result, and an
/// execution's input: at most this many bytes of UTF-8 JSON.
pub const PAYLOAD_QUOTA_BYTES: usize = 262_144;

/// Events in one execution's history. Past it the execution fails.
pub const HISTORY_EVENTS_QUOTA: usize = 25_000;

/// How long a Standard execution may run: one year. Past it, it times out (`States.Timeout`).
pub const EXECUTION_SECONDS_QUOTA: i64 = 365 * 24 * 3600;

/// Why `name` can't name an execution, if it can't: 1 to 80 characters, none of
/// whitespace, `< > { } [ ]`, `? *`, `" # % \ ^ | ~ ` $ & , ; : /` or control characters
/// (<https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html>).
pub fn execution_name_problem(name: &str) -> Option<String> {
    let length = name.chars().count();
    if !(1..=80).contains(&length) {
        return Some(format!("is {length} characters long; expected 1 to 80"));
    }
    let forbidden = |c: char| {
        c.is_whitespace() || "<>{}[]?*\"#%\\^|~`$&,;:/".contains(c) || ('\u{0}'..='\u{1f}').contains(&c) || ('\u{7f}'..='\u{9f}').contains(&c)
    };
    name.chars().find(|c| forbidden(*c)).map(|c| format!("contains {c:?}, which an execution name may not"))
}

/// Bytes of `value` as JSON, counted without building the text.
pub fn payload_bytes(value: &Value) -> usize {
    struct Count(usize);
    impl Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter can't fail; a value that can't be serialized has no size to speak of.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Whether `value` is over [`PAYLOAD_QUOTA_BYTES`].
pub fn over_payload_quota(value: &Value) -> bool {
    payload_bytes(value) > PAYLOAD_QUOTA_BYTES
}
