//! The lock queue as `status` shows it: the running serial and full deploys of an environment
//! that don't hold its lock are waiting for it, in the order they started.

/// A running execution, as far as the queue cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running<'a> {
    /// Its ARN.
    pub execution_arn: &'a str,
    /// Its state machine's key (`serial-deploy`).
    pub state_machine: &'a str,
    /// When it started (epoch seconds).
    pub started_at: i64,
}

/// Only these wait in the lock queue; the other workflows fail at once on a held lock.
const QUEUEING: [&str; 2] = ["serial-deploy", "full-deploy"];

/// Each queued execution's ARN with its place (1: next), given the lock's holder. Nothing is
/// queued when no one holds the lock: the next try of the first takes it.
pub fn positions<'a>(running: &[Running<'a>], holder: Option<&str>) -> Vec<(&'a str, usize)> {
    let Some(holder) = holder else { return Vec::new() };
    let mut waiting: Vec<&Running<'a>> = running.iter().filter(|r| QUEUEING.contains(&r.state_machine) && r.execution_arn != holder).collect();
    waiting.sort_by_key(|r| (r.started_at, r.execution_arn));
    waiting.into_iter().enumerate().map(|(i, r)| (r.execution_arn, i + 1)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<'a>(arn: &'a str, machine: &'a str, started_at: i64) -> Running<'a> {
        Running { execution_arn: arn, state_machine: machine, started_at }
    }

    #[test]
    fn deploys_behind_the_holder_are_queued_oldest_first_and_nothing_else_is() {
        let running = [
            run("arn:holder", "serial-deploy", 100),
            run("arn:late", "full-deploy", 300),
            run("arn:early", "serial-deploy", 200),
            // A release waits on its nested deploy, and a worker deploy fails on a held lock: not queued.
            run("arn:release", "release", 150),
            run("arn:worker", "deploy-worker", 250),
        ];
        assert_eq!(positions(&running, Some("arn:holder")), [("arn:early", 1), ("arn:late", 2)]);
        // The holder is something else (a nested deploy): every running deploy waits.
        assert_eq!(positions(&running, Some("arn:nested")), [("arn:holder", 1), ("arn:early", 2), ("arn:late", 3)]);
        assert!(positions(&running, None).is_empty(), "no lock, no queue");
    }
}
