#!/usr/bin/env bash
# Shared by the stepdeploy-* scripts of a Django site such as opendebates. Sourced, never run.
#
# Settings come from the environment file the launch template's user data writes
# (/etc/stepdeploy/app.env), never from the command line: stepdeploy passes only the revision,
# as $1 (from the SSM document's environment variable SSM_revision), already validated against
# [A-Za-z0-9._/-]{1,128}.
set -euo pipefail

# shellcheck source=/dev/null
. /etc/stepdeploy/app.env
: "${PROJECT:?}"          # Fabulaws project: the app's name, its user and its directories
: "${REPO:?}"             # Fabulaws repo: the git URL the code comes from
: "${DEPLOYMENT:?}" "${ENVIRONMENT:?}"
# Fabulaws deploy_user / webserver_user: who owns the code, who runs it.
DEPLOY_USER="${DEPLOY_USER:-$PROJECT}"
WEBSERVER_USER="${WEBSERVER_USER:-www-data}"
# Fabulaws home / python: where the code and the virtualenv live.
APP_HOME="${APP_HOME:-/var/www/$PROJECT}"
PYTHON="${PYTHON:-python3}"
# Fabulaws settings_managepy: the Django settings module manage.py runs with.
DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-$PROJECT.settings.deploy}"
export DJANGO_SETTINGS_MODULE

revision="${1:-}"

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# The code at $revision in $APP_HOME/source (Fabulaws vcs_cmd / latest_changeset_cmd: git only).
# Git credentials: a read-only deploy key kept in SSM Parameter Store (Fabulaws ssh_keys), read with
# the instance role and removed again; never baked into the image. The host key is accepted on first
# use (Fabulaws disable_known_hosts): GitHub's or your git server's, not an app server's: there is no SSH.
checkout() {
  local key
  key="$(mktemp)"
  trap 'rm -f "$key"' RETURN
  aws ssm get-parameter --with-decryption --name "/stepdeploy/$DEPLOYMENT/$ENVIRONMENT/deploy-key" \
    --query Parameter.Value --output text >"$key"
  chmod 600 "$key"
  export GIT_SSH_COMMAND="ssh -i $key -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new"
  if [ ! -d "$APP_HOME/source/.git" ]; then
    sudo -u "$DEPLOY_USER" git clone --quiet "$REPO" "$APP_HOME/source"
  fi
  sudo -E -u "$DEPLOY_USER" git -C "$APP_HOME/source" fetch --quiet origin
  sudo -E -u "$DEPLOY_USER" git -C "$APP_HOME/source" checkout --quiet --force "$revision"
  log "code at $(git -C "$APP_HOME/source" rev-parse --short HEAD)"
}

# The virtualenv's packages (Fabulaws requirements_file, requirements_sdists).
install_requirements() {
  sudo -u "$DEPLOY_USER" "$APP_HOME/env/bin/pip" install --quiet -r "$APP_HOME/source/${REQUIREMENTS_FILE:-requirements/production.txt}"
}

manage() {
  sudo -E -u "$DEPLOY_USER" "$APP_HOME/env/bin/python" "$APP_HOME/source/manage.py" "$@"
}

# Settings and secrets for this boot (Fabulaws password_names, localsettings_template, db_settings,
# database_host, database_user): from SSM Parameter Store, with the instance role, into a file
# only the app can read. Run at boot and before a deploy, never at bake time.
write_secrets() {
  aws ssm get-parameters-by-path --with-decryption --path "/stepdeploy/$DEPLOYMENT/$ENVIRONMENT/secrets/" \
    --query 'Parameters[].[Name,Value]' --output text |
    while IFS=$'\t' read -r name value; do printf '%s=%s\n' "${name##*/}" "$value"; done >"$APP_HOME/secrets.env.tmp"
  chown "$DEPLOY_USER:$WEBSERVER_USER" "$APP_HOME/secrets.env.tmp"
  chmod 640 "$APP_HOME/secrets.env.tmp"
  mv "$APP_HOME/secrets.env.tmp" "$APP_HOME/secrets.env"
}
