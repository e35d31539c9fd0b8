/*
 * Host name and network settings: what the checks refuse (the root unit trusts nothing the
 * web service wrote), and what `moat system apply` writes, into a test root folder (the
 * image boot test applies them for real and sends mail through the result).
 */
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { checkHostSettings, HostSettingsError, hostSettingsFromForm, renderHosts, requestFile, requestHostSettings, resultFile } from '../../../appliance/services/host-settings'
import { moat } from '../../helpers/appliance'

const stat = (extra: Record<string, unknown>) => ({ hostname: 'mx1.example.com', network: { mode: 'static', address: '192.0.2.10/24', gateway: '192.0.2.1', dns: '192.0.2.53', ...extra } })

t.test('checks refuse what would break the appliance or its files', async (t) => {
  t.same(checkHostSettings({ hostname: 'MX1.Example.com.', network: { mode: 'dhcp' } }), { hostname: 'mx1.example.com', network: { mode: 'dhcp' } })
  t.same(checkHostSettings(stat({ dns: '192.0.2.53, 192.0.2.54' })).network, { mode: 'static', address: '192.0.2.10', prefix: 24, gateway: '192.0.2.1', dns: ['192.0.2.53', '192.0.2.54'] })
  const refused: [unknown, RegExp][] = [
    [{ hostname: 'bad_name', network: { mode: 'dhcp' } }, /not a valid host name/],
    [{ hostname: 'mx1\nexample', network: { mode: 'dhcp' } }, /not a valid host name/],
    [{ hostname: '-mx.example.com', network: { mode: 'dhcp' } }, /not a valid host name/],
    [{ hostname: '10.0.0.1', network: { mode: 'dhcp' } }, /not a valid host name/],
    [{ hostname: 'mx1', network: { mode: 'bridge' } }, /dhcp" or "static/],
    [stat({ address: '192.0.2.10' }), /prefix length/],
    [stat({ address: '192.0.2.300/24' }), /not an IPv4 address/],
    [stat({ address: '192.0.2.10/24\n  up rm -rf /' }), /prefix length|not an IPv4/],
    [stat({ gateway: '198.51.100.1' }), /not in 192\.0\.2\.10\/24/],
    [stat({ gateway: '192.0.2.10' }), /own address/],
    [stat({ dns: '' }), /one to three DNS/],
    [stat({ dns: 'dns.example.com' }), /not an IPv4 address/],
  ]
  for (const [input, why] of refused) t.throws(() => checkHostSettings(input), { constructor: HostSettingsError, message: why }, JSON.stringify(input))
})

t.test('/etc/hosts keeps its other lines and gets one 127.0.1.1 line', async (t) => {
  t.equal(renderHosts('127.0.0.1 localhost\n127.0.1.1 moat\n::1 localhost ip6-localhost\n', 'mx1.example.com'), '127.0.0.1 localhost\n127.0.1.1 mx1.example.com mx1\n::1 localhost ip6-localhost\n')
})

t.test('moat system apply writes the host name, hosts, interface and resolver, and records the outcome', async (t) => {
  const dir = t.testdir({ data: {}, root: { etc: { hosts: '127.0.0.1 localhost\n127.0.1.1 moat\n', 'resolv.conf': 'nameserver 10.0.2.3\n' } } })
  const data = path.join(dir, 'data')
  const root = path.join(dir, 'root')
  const apply = () => moat(data, ['system', 'apply', '--root', root, '--dry-run'])
  t.match(apply().stdout, /no settings pending/)

  fs.mkdirSync(path.dirname(requestFile(data)), { recursive: true })
  fs.writeFileSync(requestFile(data), JSON.stringify(stat({})))
  const r = apply()
  t.equal(r.code, 0, r.stderr)
  t.equal(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8'), 'mx1.example.com\n')
  t.match(fs.readFileSync(path.join(root, 'etc/hosts'), 'utf8'), /^127\.0\.1\.1 mx1\.example\.com mx1$/m)
  t.equal(fs.readFileSync(path.join(root, 'etc/network/interfaces.d/moat-eth0'), 'utf8').replace(/^#.*\n/, ''), 'allow-hotplug eth0\niface eth0 inet static\n  address 192.0.2.10/24\n  gateway 192.0.2.1\n')
  t.equal(fs.readFileSync(path.join(root, 'etc/resolv.conf'), 'utf8'), '# Written by Moat\nnameserver 192.0.2.53\n')
  t.notOk(fs.existsSync(requestFile(data)), 'the request is used up')
  t.match(JSON.parse(fs.readFileSync(resultFile(data), 'utf8')), { ok: true, settings: { hostname: 'mx1.example.com' } })

  // A request the web service could not have made (written by hand) is refused whole.
  const before = fs.readFileSync(path.join(root, 'etc/network/interfaces.d/moat-eth0'), 'utf8')
  fs.writeFileSync(requestFile(data), JSON.stringify({ hostname: 'other', network: { mode: 'static', address: '192.0.2.11/24', gateway: '192.0.2.1', dns: '1.2.3.4\nnameserver 6.6.6.6' } }))
  const bad = apply()
  t.equal(bad.code, 1)
  t.match(bad.stderr, /not an IPv4 address/)
  t.equal(fs.readFileSync(path.join(root, 'etc/network/interfaces.d/moat-eth0'), 'utf8'), before, 'nothing changed')
  t.equal(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8'), 'mx1.example.com\n')
  t.notOk(fs.existsSync(requestFile(data)), 'a bad request is removed too, so the path unit does not loop on it')
  t.match(JSON.parse(fs.readFileSync(resultFile(data), 'utf8')), { ok: false, error: /not an IPv4 address/ })

  fs.writeFileSync(requestFile(data), JSON.stringify({ hostname: 'mx1.example.com', network: { mode: 'dhcp' } }))
  t.equal(apply().code, 0)
  t.match(fs.readFileSync(path.join(root, 'etc/network/interfaces.d/moat-eth0'), 'utf8'), /iface eth0 inet dhcp\n$/)

  // What the web service writes is what the root unit applies (the wizard's own path).
  requestHostSettings(data, hostSettingsFromForm({ hostname: 'mx2.example.com', net_mode: 'static', address: '10.0.2.15/24', gateway: '10.0.2.2', dns: '10.0.2.3' }))
  const r2 = apply()
  t.equal(r2.code, 0, r2.stderr)
  t.equal(fs.readFileSync(path.join(root, 'etc/hostname'), 'utf8'), 'mx2.example.com\n')
  t.match(fs.readFileSync(path.join(root, 'etc/network/interfaces.d/moat-eth0'), 'utf8'), /address 10\.0\.2\.15\/24\n  gateway 10\.0\.2\.2\n$/)
  fs.writeFileSync(requestFile(data), JSON.stringify({ hostname: 'mx1.example.com', network: { mode: 'dhcp' } }))
  t.equal(apply().code, 0)
  t.match(fs.readFileSync(path.join(root, 'etc/network/interfaces.d/moat-eth0'), 'utf8'), /iface eth0 inet dhcp\n$/)
})
