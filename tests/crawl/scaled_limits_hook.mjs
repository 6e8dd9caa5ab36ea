// The load hook of scaled_limits.mjs: rewrites getRepo's rateLimit as the PDS module loads.
const TARGET = '/@atproto/pds/dist/api/com/atproto/sync/getRepo.js'
const PRODUCTION = /durationMs:\s*5 \* MINUTE,\s*points:\s*6000,/

export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context)
  if (!url.endsWith(TARGET)) return result
  const source = String(result.source)
  const points = parseInt(process.env.PYSKY_GETREPO_POINTS, 10)
  const window = parseInt(process.env.PYSKY_GETREPO_WINDOW_MS, 10)
  if (!PRODUCTION.test(source) || !(points > 0) || !(window >= 1000)) {
    throw new Error(`scaled_limits: getRepo's limit not found in ${url}, or PYSKY_GETREPO_* unset`)
  }
  return { ...result, source: source.replace(PRODUCTION, `durationMs: ${window}, points: ${points},`) }
}
