#!/usr/bin/env bash
# Installs the conformance oracle: the official @atproto/api npm package (pinned), run by the
# node 22 that tests/realnet/install-pds.sh installs (call that script first).
#
#   tests/conformance/install-oracle.sh     install if needed (fast no-op when already installed)
#
# Installs into ${PYSKY_REALNET_DIR:-$HOME/.cache/pysky-realnet}/oracle/node_modules.
# tests/conformance/oracle.mjs is run from there by the differential tests.
set -euo pipefail

REALNET_DIR=${PYSKY_REALNET_DIR:-$HOME/.cache/pysky-realnet}
API_VERSION=0.21.0
APP=$REALNET_DIR/oracle
NODE_HOME=$REALNET_DIR/node22/node-v22
STAMP=$APP/.installed

log() { printf '[install-oracle] %s\n' "$*" >&2; }

[[ -x $NODE_HOME/bin/node ]] || { log "node 22 missing at $NODE_HOME: run tests/realnet/install-pds.sh first"; exit 1; }
if [[ -f $STAMP && "$(cat "$STAMP")" == "api=$API_VERSION" && -f $APP/node_modules/@atproto/api/package.json ]]; then
  log "already installed: @atproto/api@$API_VERSION"
  echo "$APP"
  exit 0
fi
command -v npm >/dev/null || { log "npm not found on PATH"; exit 1; }
export PATH=$NODE_HOME/bin:$PATH
export npm_config_cache=${npm_config_cache:-$REALNET_DIR/npm-cache}
mkdir -p "$APP"
rm -rf "$APP/node_modules" "$APP/package-lock.json" "$STAMP"
printf '{"name":"pysky-conformance-oracle","private":true,"type":"module"}\n' > "$APP/package.json"
log "npm install @atproto/api@$API_VERSION (node $(node --version))"
if ! ( cd "$APP" && npm install --no-audit --no-fund --save-exact "@atproto/api@$API_VERSION" \
    > "$APP/npm-install.log" 2>&1 ); then
  tail -30 "$APP/npm-install.log" >&2
  log "npm install failed (full log: $APP/npm-install.log)"
  exit 1
fi
( cd "$APP" && node -e "import('@atproto/api').then(m => { if (!m.RichText) process.exit(1) })" ) \
  || { log "@atproto/api does not load under node 22"; exit 1; }
echo "api=$API_VERSION" > "$STAMP"
echo "$APP"
