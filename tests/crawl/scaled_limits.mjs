// node --import <this file>: the reference PDS with its getRepo rate limit scaled down in time, so
// a test of a few hundred repos can reach it: PYSKY_GETREPO_POINTS per PYSKY_GETREPO_WINDOW_MS per
// IP instead of 6000 per 5 minutes. Same limiter code (xrpc-server's), same per-IP key; only the two
// numbers of packages/pds/src/api/com/atproto/sync/getRepo.ts change, as the module loads.
import { register } from 'node:module'

register('./scaled_limits_hook.mjs', import.meta.url)
