//! The error names (`errorType`) step Lambdas report. Retry and Catch in
//! `statemachines/*.asl.json` match on them, so they never change meaning
//! and never start with `States.` (a test checks every name the state
//! machines use against [`ALL`]).

/// The execution input is wrong (field, value and what is allowed in the message).
pub const INVALID_INPUT: &str = "StepDeploy.InvalidInput";
/// The environment's config is missing or invalid.
pub const CONFIG_INVALID: &str = "StepDeploy.ConfigInvalid";
/// Another execution holds the environment's lock.
pub const ENVIRONMENT_LOCKED: &str = "StepDeploy.EnvironmentLocked";
/// The environment is locked and the deploy waits in the lock queue: the state machine retries
/// prepare (every 30 s) until the lock is free or `lock.wait_seconds` have passed.
pub const QUEUED: &str = "StepDeploy.Queued";
/// An AWS call failed in a way that may pass (throttling, 5xx, network).
pub const AWS_TRANSIENT: &str = "StepDeploy.AwsTransient";
/// An AWS call failed for good (validation, access, not found).
pub const AWS_ERROR: &str = "StepDeploy.AwsError";
/// The rollout could not finish (deadline, unhealthy new instances).
pub const ROLLOUT_FAILED: &str = "StepDeploy.RolloutFailed";
/// A rollback could not restore the original version.
pub const ROLLBACK_FAILED: &str = "StepDeploy.RollbackFailed";
/// An SSM command (migrations, worker deploy) failed or timed out; the cause has its output tail.
pub const COMMAND_FAILED: &str = "StepDeploy.CommandFailed";

/// The group has settings a deploy can't handle, or an instance refresh runs; nothing was changed.
pub const PREFLIGHT_FAILED: &str = "StepDeploy.PreflightFailed";

/// Clean-up (the page, the processes, the lock) could not finish; the cause lists what is left and what to do.
pub const CLEANUP_INCOMPLETE: &str = "StepDeploy.CleanupIncomplete";

/// A CloudWatch alarm the environment watches is in ALARM: before the deploy (refused, nothing
/// changed) or during its rollout or bake (rolled back). The cause names the alarm and its reason.
pub const ALARM_FIRED: &str = "StepDeploy.AlarmFired";

/// A rollout paused at a checkpoint was rejected: by an operator (`stepdeploy reject`, or
/// SendTaskFailure with this error), or by no answer within `rollout.checkpoint_wait_seconds`.
/// It rolls back; the cause says who or why.
pub const CHECKPOINT_REJECTED: &str = "StepDeploy.CheckpointRejected";

/// A bake could not make an image (builder never online, image never available or failed).
pub const BAKE_FAILED: &str = "StepDeploy.BakeFailed";

/// Every name above.
pub const ALL: &[&str] = &[
    INVALID_INPUT,
    CONFIG_INVALID,
    ENVIRONMENT_LOCKED,
    AWS_TRANSIENT,
    AWS_ERROR,
    ROLLOUT_FAILED,
    ROLLBACK_FAILED,
    COMMAND_FAILED,
    BAKE_FAILED,
    PREFLIGHT_FAILED,
    CLEANUP_INCOMPLETE,
    ALARM_FIRED,
    QUEUED,
    CHECKPOINT_REJECTED,
];

/// Step Functions service errors a nested StartExecution may meet (retried with backoff).
pub const STEP_FUNCTIONS_SERVICE_ERRORS: &[&str] = &["StepFunctions.ExecutionLimitExceededException", "StepFunctions.SdkClientException"];

/// Lambda errors Step Functions reports for invocations, retried with backoff
/// (https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html):
/// the service's own, and an invocation that timed out (`Sandbox.Timedout`) or
/// died without an error document (`Lambda.Unknown`, e.g. out of memory).
/// Every step is idempotent, so a retry is safe.
pub const LAMBDA_SERVICE_ERRORS: &[&str] = &[
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Sandbox.Timedout",
    "Lambda.Unknown",
];
