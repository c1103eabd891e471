//! Checking an environment's values, one problem per bad field.

use super::problems::Problem;
use super::types::{
    Environment, MAX_BAKE_SECONDS, MAX_CHECKPOINT_WAIT_SECONDS, MAX_CHECKPOINTS, MAX_COMMAND_TIMEOUT_SECONDS, MAX_LOCK_WAIT_SECONDS,
    MAX_MAINTENANCE_HTML_BYTES, SCALING_PROCESSES, ScalingMetric,
};

impl Environment {
    /// Checks every value; pushes one problem per bad field.
    pub fn validate(&self, path: &str, problems: &mut Vec<Problem>) {
        let mut push = |field: &str, message: String| problems.push(Problem { path: format!("{path}.{field}"), message });
        if self.region.is_empty() {
            push("region", "required: the AWS region, e.g. `us-east-1`".into());
        } else if !is_region(&self.region) {
            push("region", format!("{:?} is not an AWS region name; expected e.g. `us-east-1`", self.region));
        }
        if let Some(branch) = &self.branch
            && let Err(why) = crate::revision::check(branch)
        {
            push("branch", format!("{branch:?} is not allowed: it {why}; expected a git branch or revision matching {}", crate::revision::PATTERN));
        }
        if self.auto_scaling_group.trim().is_empty() {
            push("auto_scaling_group", "required: fill in the web Auto Scaling group's name".into());
        }
        if self.target_group_arns.is_empty() {
            push(
                "target_group_arns",
                "required: fill in the ARN of every target group the web instances serve (arn:aws:elasticloadbalancing:...:targetgroup/...)".into(),
            );
        }
        for (i, arn) in self.target_group_arns.iter().enumerate() {
            if !(arn.starts_with("arn:") && arn.contains(":targetgroup/")) {
                push(
                    &format!("target_group_arns[{i}]"),
                    format!("{arn:?} is not a target group ARN; expected arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID"),
                );
            }
        }
        match &self.listener_arn {
            None => push(
                "listener_arn",
                "required: fill in the ALB listener ARN that serves the site (arn:aws:elasticloadbalancing:...:listener/app/...)".into(),
            ),
            Some(arn) if !(arn.starts_with("arn:") && arn.contains(":listener/")) => push(
                "listener_arn",
                format!("{arn:?} is not a listener ARN; expected arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/ID/ID"),
            ),
            Some(_) => {}
        }
        match &self.launch_template {
            None => push("launch_template", "required: fill in the web launch template's id (lt-...) or name".into()),
            Some(lt) if lt.trim().is_empty() => push("launch_template", "is empty; expected a launch template id (lt-...) or name".into()),
            Some(_) => {}
        }
        for (i, domain) in self.domains.iter().enumerate() {
            if domain.trim().is_empty() || domain.contains(char::is_whitespace) {
                push(&format!("domains[{i}]"), format!("{domain:?} is not a domain name"));
            }
        }
        if let Some(first) = self.domains.first()
            && first.starts_with('*')
        {
            push("domains[0]", format!("{first:?} is a wildcard; the first domain is the canonical site and must be a plain name"));
        }
        if self.workers.tags.is_empty() {
            push("workers.tags", "is empty; expected at least one tag that selects the worker instances".into());
        }
        for (name, spec) in [
            ("bake", &self.commands.bake),
            ("worker_deploy", &self.commands.worker_deploy),
            ("migrate", &self.commands.migrate),
            ("in_place_deploy", &self.commands.in_place_deploy),
        ] {
            if spec.command.trim().is_empty() {
                push(&format!("commands.{name}.command"), "is empty; expected a shell command line".into());
            }
            if !(1..=MAX_COMMAND_TIMEOUT_SECONDS).contains(&spec.timeout_seconds) {
                push(
                    &format!("commands.{name}.timeout_seconds"),
                    format!("{} is not in 1..={MAX_COMMAND_TIMEOUT_SECONDS} (SSM's limit)", spec.timeout_seconds),
                );
            }
        }
        let health = &self.health;
        if health.timeout_seconds == 0 {
            push("health.timeout_seconds", "0 is not allowed; expected at least 1".into());
        }
        if health.poll_interval_seconds == 0 || health.poll_interval_seconds > health.timeout_seconds.max(1) {
            push(
                "health.poll_interval_seconds",
                format!("{} is not in 1..={} (health.timeout_seconds)", health.poll_interval_seconds, health.timeout_seconds),
            );
        }
        if health.warmup_seconds > 3600 {
            push("health.warmup_seconds", format!("{} is not in 0..=3600", health.warmup_seconds));
        } else if health.timeout_seconds > 0 && health.warmup_seconds >= health.timeout_seconds {
            // Every new instance would time out before it counts as warmed up: no deploy could succeed.
            push(
                "health.warmup_seconds",
                format!(
                    "{} is not shorter than health.timeout_seconds ({}): every instance would time out warming up; expected less than {}",
                    health.warmup_seconds, health.timeout_seconds, health.timeout_seconds
                ),
            );
        }
        if health.warmup_seconds > 0
            && health.poll_interval_seconds >= health.warmup_seconds
            && health.poll_interval_seconds <= health.timeout_seconds
        {
            // A warm-up is only seen at polls: one no shorter than a poll is judged whole polls late.
            push(
                "health.poll_interval_seconds",
                format!(
                    "{} is not shorter than health.warmup_seconds ({}); expected less (or warmup_seconds: 0)",
                    health.poll_interval_seconds, health.warmup_seconds
                ),
            );
        }
        let rollout = &self.rollout;
        let min_ok = (0..=100).contains(&rollout.min_healthy_percent);
        let max_ok = (100..=200).contains(&rollout.max_healthy_percent);
        if !min_ok {
            push("rollout.min_healthy_percent", format!("{} is not in 0..=100", rollout.min_healthy_percent));
        }
        if !max_ok {
            push("rollout.max_healthy_percent", format!("{} is not in 100..=200", rollout.max_healthy_percent));
        }
        if min_ok && max_ok && rollout.min_healthy_percent == 100 && rollout.max_healthy_percent == 100 {
            push(
                "rollout.max_healthy_percent",
                "100 with min_healthy_percent 100 leaves no room to replace any instance; raise max_healthy_percent (surge) or lower min_healthy_percent".into(),
            );
        }
        if let Some(batch) = rollout.batch_size
            && batch < 1
        {
            push("rollout.batch_size", format!("{batch} is not allowed; expected at least 1, or leave it out"));
        }
        if rollout.timeout_seconds < health.timeout_seconds {
            push(
                "rollout.timeout_seconds",
                format!("{} is shorter than health.timeout_seconds ({}); expected at least that", rollout.timeout_seconds, health.timeout_seconds),
            );
        }
        for (i, process) in rollout.suspend_processes.iter().enumerate() {
            if !SCALING_PROCESSES.contains(&process.as_str()) {
                push(
                    &format!("rollout.suspend_processes[{i}]"),
                    format!("{process:?} is not an Auto Scaling process; expected one of {}", SCALING_PROCESSES.join(", ")),
                );
            }
        }
        let maintenance = &self.maintenance;
        if maintenance.html.is_empty() {
            push("maintenance.html", "is empty; expected the maintenance page's HTML".into());
        } else if maintenance.html.len() > MAX_MAINTENANCE_HTML_BYTES {
            push(
                "maintenance.html",
                format!("is {} bytes; the ALB fixed-response body limit is {MAX_MAINTENANCE_HTML_BYTES} bytes", maintenance.html.len()),
            );
        }
        for (i, cidr) in maintenance.allowed_cidrs.iter().enumerate() {
            if cidr.parse::<ipnet::IpNet>().is_err() {
                push(&format!("maintenance.allowed_cidrs[{i}]"), format!("{cidr:?} is not a CIDR block; expected e.g. 203.0.113.0/24"));
            }
        }
        if !(1..=50_000).contains(&maintenance.rule_priority) {
            push("maintenance.rule_priority", format!("{} is not in 1..=50000", maintenance.rule_priority));
        }
        let scaling = &self.scaling;
        if scaling.min_size < 0 {
            push("scaling.min_size", format!("{} is negative; expected 0 or more", scaling.min_size));
        }
        if scaling.max_size < scaling.min_size.max(0) {
            push("scaling.max_size", format!("{} is below scaling.min_size ({})", scaling.max_size, scaling.min_size));
        }
        if scaling.desired_capacity < scaling.min_size || scaling.desired_capacity > scaling.max_size {
            push(
                "scaling.desired_capacity",
                format!("{} is not in {}..={} (scaling.min_size..=scaling.max_size)", scaling.desired_capacity, scaling.min_size, scaling.max_size),
            );
        }
        if let Some(tracking) = &scaling.target_tracking
            && !(tracking.target_value.is_finite() && tracking.target_value > 0.0)
        {
            push("scaling.target_tracking.target_value", format!("{} is not allowed; expected a number above 0", tracking.target_value));
        }
        if let Some(tracking) = &scaling.target_tracking
            && tracking.metric == ScalingMetric::Cpu
            && tracking.target_value > 100.0
        {
            push("scaling.target_tracking.target_value", format!("{} is not a CPU percent; expected 0..=100", tracking.target_value));
        }
        if self.images.retain < 1 {
            push("images.retain", format!("{} is not allowed; expected at least 1 (the image in use)", self.images.retain));
        }
        for (field, value) in [
            ("images.builder_online_timeout_seconds", self.images.builder_online_timeout_seconds),
            ("images.available_timeout_seconds", self.images.available_timeout_seconds),
        ] {
            if value == 0 {
                push(field, "0 is not allowed; expected at least 1".into());
            }
        }
        let shortest = self.images.builder_online_timeout_seconds.min(self.images.available_timeout_seconds).max(1);
        if self.images.poll_interval_seconds == 0 || self.images.poll_interval_seconds > shortest {
            push(
                "images.poll_interval_seconds",
                format!("{} is not in 1..={shortest} (the shorter images timeout)", self.images.poll_interval_seconds),
            );
        }
        if let Some(parameter) = &self.images.base_image_parameter
            && !parameter.starts_with('/')
        {
            push("images.base_image_parameter", format!("{parameter:?} is not an SSM parameter name; expected one starting with /"));
        }
        // Every poll loop spends history events; an execution AWS ends at 25,000 leaves the lock,
        // processes and page behind, so configs that could get there are refused.
        if health.poll_interval_seconds > 0 && self.images.poll_interval_seconds > 0 {
            for (workflow, events) in crate::budget::worst_case_events(self) {
                if events > crate::budget::HISTORY_EVENTS_BUDGET {
                    let field = if workflow == "bake" { "images.poll_interval_seconds" } else { "health.poll_interval_seconds" };
                    push(
                        field,
                        format!(
                            "with these timeouts a {workflow} execution could take {events} history events; AWS ends an execution at {} (stepdeploy keeps to {}): raise the poll interval or lower the timeouts",
                            crate::budget::HISTORY_EVENTS_QUOTA,
                            crate::budget::HISTORY_EVENTS_BUDGET
                        ),
                    );
                }
            }
        }
        if self.alarms.len() > crate::ports::MAX_ALARMS_PER_CALL {
            push(
                "alarms",
                format!(
                    "{} alarms is too many; expected at most {} (one DescribeAlarms call per poll)",
                    self.alarms.len(),
                    crate::ports::MAX_ALARMS_PER_CALL
                ),
            );
        }
        for (i, alarm) in self.alarms.iter().enumerate() {
            // CloudWatch alarm names are 1 to 255 characters
            // (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html).
            if alarm.is_empty() || alarm.chars().count() > 255 || alarm.chars().any(char::is_control) {
                push(&format!("alarms[{i}]"), format!("{alarm:?} is not a CloudWatch alarm name; expected 1 to 255 printable characters"));
            } else if self.alarms[..i].contains(alarm) {
                push(&format!("alarms[{i}]"), format!("{alarm:?} is listed twice; expected each alarm once"));
            }
        }
        if self.rollout.bake_seconds > MAX_BAKE_SECONDS {
            push(
                "rollout.bake_seconds",
                format!("{} is not in 0..={MAX_BAKE_SECONDS} (a day); expected a soak time in seconds", self.rollout.bake_seconds),
            );
        }
        if self.rollout.instant_rollback && self.rollout.bake_seconds == 0 {
            push("rollout.instant_rollback", "true needs a bake: set rollout.bake_seconds (the old instances wait in Standby for its length)".into());
        }
        // Standby leaves the zones unbalanced, which AZRebalance would "fix" by launching and
        // terminating with no health gate
        // (https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-enter-exit-standby.html).
        if self.rollout.instant_rollback && !self.rollout.suspend_processes.iter().any(|p| p == "AZRebalance") {
            push(
                "rollout.suspend_processes",
                "needs AZRebalance with rollout.instant_rollback: instances in Standby unbalance the zones, and rebalancing would replace them unchecked".into(),
            );
        }
        self.validate_checkpoints(&mut push);
        if self.lock.wait_seconds > MAX_LOCK_WAIT_SECONDS {
            push(
                "lock.wait_seconds",
                format!("{} is not in 0..={MAX_LOCK_WAIT_SECONDS} (four hours: the state machines' queue is bounded)", self.lock.wait_seconds),
            );
        }
        if self.lock.stale_after_seconds < 60 {
            push("lock.stale_after_seconds", format!("{} is not allowed; expected at least 60", self.lock.stale_after_seconds));
        }
    }
}

impl Environment {
    fn validate_checkpoints(&self, push: &mut impl FnMut(&str, String)) {
        let rollout = &self.rollout;
        if rollout.checkpoints.len() > MAX_CHECKPOINTS {
            push("rollout.checkpoints", format!("{} checkpoints is too many; expected at most {MAX_CHECKPOINTS}", rollout.checkpoints.len()));
        }
        for (i, percent) in rollout.checkpoints.iter().enumerate() {
            if !(1..=99).contains(percent) {
                push(
                    &format!("rollout.checkpoints[{i}]"),
                    format!("{percent} is not in 1..=99; expected the percent of the group replaced before a pause"),
                );
            } else if i > 0 && rollout.checkpoints[i - 1] >= *percent {
                push(
                    &format!("rollout.checkpoints[{i}]"),
                    format!("{percent} does not come after {}; expected percents in ascending order", rollout.checkpoints[i - 1]),
                );
            }
        }
        if !(60..=MAX_CHECKPOINT_WAIT_SECONDS).contains(&rollout.checkpoint_wait_seconds) {
            push(
                "rollout.checkpoint_wait_seconds",
                format!(
                    "{} is not in 60..={MAX_CHECKPOINT_WAIT_SECONDS} (a week); expected how long a checkpoint waits, in seconds",
                    rollout.checkpoint_wait_seconds
                ),
            );
        }
    }
}

fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}
