// The conformance oracle: the official @atproto/api in node, one process for a whole batch.
// Written for tests/conformance/test_differential.py; run with the oracle's node_modules on
// NODE_PATH-free resolution (the test runs it with cwd = the oracle install directory).
//
// stdin:  {"richtext": [text, ...], "graphemes": [text, ...]}
// stdout: {"richtext": [[[byteStart, byteEnd, kind, value], ...], ...],
//          "graphemes": [count, ...], "tlds": [...], "api_version": "x.y.z"}
// kind is "link" | "mention" | "tag"; value is the uri, the handle (no resolution) or the tag.
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import fs from 'node:fs'
import path from 'node:path'

const require = createRequire(pathToFileURL(path.join(process.cwd(), 'index.js')))
const { RichText } = await import(pathToFileURL(require.resolve('@atproto/api')))
const tlds = require('tlds')
const apiVersion = JSON.parse(fs.readFileSync(
  path.join(process.cwd(), 'node_modules/@atproto/api/package.json'), 'utf8')).version

const KINDS = {
  'app.bsky.richtext.facet#link': ['link', 'uri'],
  'app.bsky.richtext.facet#mention': ['mention', 'did'],
  'app.bsky.richtext.facet#tag': ['tag', 'tag'],
}

function facetsOf(text) {
  const rt = new RichText({ text })
  rt.detectFacetsWithoutResolution()
  const out = []
  for (const facet of rt.facets ?? []) {
    for (const feature of facet.features) {
      const [kind, key] = KINDS[feature.$type]
      out.push([facet.index.byteStart, facet.index.byteEnd, kind, feature[key]])
    }
  }
  return out
}

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' })
function graphemes(text) {
  let n = 0
  for (const _ of segmenter.segment(text)) n++
  return n
}

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'))
process.stdout.write(JSON.stringify({
  richtext: (input.richtext ?? []).map(facetsOf),
  graphemes: (input.graphemes ?? []).map(graphemes),
  tlds,
  api_version: apiVersion,
}))
