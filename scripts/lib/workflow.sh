# shellcheck shell=bash
# Shared by the AWS-CLI wrappers (start-execution, deploy-serial, deploy-full,
# maintenance). They need only the AWS CLI (v1 or v2) and bash.
#
# Environment:
#   STEPDEPLOY_DEPLOYMENT    the deployment: its state machines are listed in the
#                            SSM parameter /stepdeploy/<deployment>/state-machines
#   STEPDEPLOY_STACK         or the CloudFormation stack, whose outputs name them
#   STEPDEPLOY_NO_WAIT=1     print the execution ARN and return at once
#   STEPDEPLOY_POLL_SECONDS  seconds between status checks (default 10)
#   AWS_PROFILE, AWS_REGION and the rest, as for any AWS CLI command
#
# Exit codes: 0 the execution succeeded (or was started, with NO_WAIT);
# 1 it failed, timed out or was aborted, or AWS refused a call; 2 bad usage.

# AWS CLI v1 reads the region from AWS_DEFAULT_REGION only; v2 and the SDKs read AWS_REGION too.
if [ -n "${AWS_REGION:-}" ] && [ -z "${AWS_DEFAULT_REGION:-}" ]; then
  export AWS_DEFAULT_REGION="$AWS_REGION"
fi

usage_error() {
  echo "error: $*" >&2
  exit 2
}

# A value that goes into the JSON input unescaped must be plain.
check_plain() { # FIELD VALUE
  [[ $2 =~ ^[A-Za-z0-9._-]+$ ]] || usage_error "$1: \"$2\" may hold only letters, digits, '.', '_' and '-'"
}

check_version() { # VERSION
  [[ $1 =~ ^([0-9]+|\$Latest|\$Default)$ ]] || usage_error "VERSION: \"$1\" is not a launch template version number, \$Latest or \$Default"
}

# The state machine ARN of WORKFLOW (serial-deploy, full-deploy, ...).
state_machine_arn() { # WORKFLOW
  local workflow=$1 arn=
  if [ -n "${STEPDEPLOY_STACK:-}" ]; then
    local key
    key="$(printf '%s' "$workflow" | awk -F- '{for (i = 1; i <= NF; i++) printf "%s%s", toupper(substr($i, 1, 1)), substr($i, 2)}')StateMachineArn"
    arn=$(aws cloudformation describe-stacks --stack-name "$STEPDEPLOY_STACK" \
      --query "Stacks[0].Outputs[?OutputKey=='$key'].OutputValue | [0]" --output text) || exit 1
    [ "$arn" != None ] || { echo "error: stack $STEPDEPLOY_STACK has no output $key" >&2; exit 1; }
  elif [ -n "${STEPDEPLOY_DEPLOYMENT:-}" ]; then
    local name="/stepdeploy/$STEPDEPLOY_DEPLOYMENT/state-machines" value
    value=$(aws ssm get-parameter --name "$name" --query Parameter.Value --output text) || exit 1
    # template.yaml writes {"serial-deploy": "arn:...", ...} on one line.
    arn=$(printf '%s' "$value" | sed -n "s/.*\"$workflow\": *\"\([^\"]*\)\".*/\1/p")
    [ -n "$arn" ] || { echo "error: $name lists no $workflow state machine" >&2; exit 1; }
  else
    usage_error "set STEPDEPLOY_DEPLOYMENT (or STEPDEPLOY_STACK) to find the state machines"
  fi
  printf '%s\n' "$arn"
}

# Starts WORKFLOW for ENVIRONMENT with INPUT and waits for it to end.
start_and_wait() { # WORKFLOW ENVIRONMENT INPUT_JSON
  local workflow=$1 environment=$2 input=$3
  check_plain ENVIRONMENT "$environment"
  local arn name execution
  arn=$(state_machine_arn "$workflow")
  name="$environment-$workflow-$(date -u +%Y%m%dT%H%M%SZ)"
  execution=$(aws stepfunctions start-execution --state-machine-arn "$arn" --name "${name:0:80}" \
    --input "$input" --query executionArn --output text) || exit 1
  if [ "${STEPDEPLOY_NO_WAIT:-}" = 1 ]; then
    printf '%s\n' "$execution"
    return 0
  fi
  echo "started $execution"
  local status state last_state='' started=$SECONDS
  while :; do
    status=$(aws stepfunctions describe-execution --execution-arn "$execution" --query status --output text) || exit 1
    [ "$status" = RUNNING ] || break
    state=$(aws stepfunctions get-execution-history --execution-arn "$execution" --reverse-order --max-items 20 \
      --query 'events[?stateEnteredEventDetails] | [0].stateEnteredEventDetails.name' --output text 2>/dev/null | head -n 1) || state=
    if [ "$state" != "$last_state" ]; then
      printf '[%4ds] %s\n' $((SECONDS - started)) "$state"
      last_state=$state
    fi
    sleep "${STEPDEPLOY_POLL_SECONDS:-10}"
  done
  printf '[%4ds] %s\n' $((SECONDS - started)) "$status"
  if [ "$status" = SUCCEEDED ]; then
    aws stepfunctions describe-execution --execution-arn "$execution" --query output --output text
    return 0
  fi
  echo "error: $(aws stepfunctions describe-execution --execution-arn "$execution" --query error --output text)" >&2
  echo "cause: $(aws stepfunctions describe-execution --execution-arn "$execution" --query cause --output text)" >&2
  exit 1
}
