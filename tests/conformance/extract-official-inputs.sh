#!/usr/bin/env bash
# Re-extracts rich_text_inputs.json from the official detection tests (run by hand, not in CI):
#
#   tests/conformance/extract-official-inputs.sh path/to/atproto/packages/api/tests/rich-text-detection.test.ts
#
# Runs the test file's body in node 22 (--experimental-strip-types) with describe/it/expect
# stubbed, collecting only the INPUT strings; the expected outputs are never read.
set -euo pipefail
NODE=${PYSKY_REALNET_DIR:-$HOME/.cache/pysky-realnet}/node22/node-v22/bin/node
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/all.ts" <<'TS'
const collected: string[] = []
const g: any = globalThis
g.describe = (_n: string, fn: () => void) => fn()
const it: any = (_n: string, _fn: unknown) => {}
it.each = (rows: unknown[]) => { for (const r of rows) collected.push(typeof r === 'string' ? r : (r as unknown[])[0] as string); return () => {} }
g.it = it
g.expect = () => ({})
g.AtpAgent = class { com = { atproto: { identity: {} } } }
g.RichText = class {}
process.on('exit', () => process.stdout.write(JSON.stringify(collected, null, 1)))
TS
grep -v "^import\|^  isLink,\|^  isMention,\|^  isTag,\|^} from" "$1" \
  | sed 's/^  it(.correctly handles a set of text inputs., async () => {/  for (const x of inputs) collected.push(x as string)\n  it("x", async () => {/' \
  >> "$tmp/all.ts"
"$NODE" --experimental-strip-types --no-warnings "$tmp/all.ts" > "$(dirname "$0")/rich_text_inputs.json"
