// test-only name resolution for the PDS process: PYSKY_TEST_HOSTS="name=ip,..." (like /etc/hosts)
const dns = require('node:dns')
const hosts = Object.fromEntries((process.env.PYSKY_TEST_HOSTS || '').split(',').filter(Boolean).map((p) => p.split('=')))
const orig = dns.lookup
dns.lookup = function (hostname, options, callback) {
  if (typeof options === 'function') { callback = options; options = {} }
  const ip = hosts[hostname]
  if (ip === undefined) return orig.call(dns, hostname, options, callback)
  const opts = typeof options === 'number' ? { family: options } : (options || {})
  if (opts.all) return process.nextTick(callback, null, [{ address: ip, family: 4 }])
  return process.nextTick(callback, null, ip, 4)
}
