/*
 * Inventory parts read from the OS's own tools: apt's simulated upgrade (run for real on
 * this Debian machine, and on a recorded sample), and Windows' uninstall keys as
 * Get-ItemProperty | Select-Object | ConvertTo-Json prints them (Windows PowerShell 5.1:
 * an array for several, a bare object for one; null for an empty value).
 */
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { inventory, parseAptSimulation, parseWindowsSoftware } from '../../../appliance/agent/collect'
import { inventoryHash } from '../../../appliance/agent/run'

t.test('pending updates from apt-get -s upgrade', async (t) => {
  t.same(parseAptSimulation([
    'Reading package lists...',
    'Inst openssl [3.0.11-1~deb12u1] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])',
    'Inst libssl3 [3.0.11-1~deb12u1] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64]) []',
    'Conf openssl (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])',
  ].join('\n')), [{ name: 'openssl', from: '3.0.11-1~deb12u1', to: '3.0.15-1~deb12u1' }, { name: 'libssl3', from: '3.0.11-1~deb12u1', to: '3.0.15-1~deb12u1' }])
  const real = spawnSync('apt-get', ['-s', '-o', 'Debug::NoLocking=1', 'upgrade'], { encoding: 'utf8' })
  if (real.status === 0) {
    const n = (real.stdout.match(/^Inst /gm) ?? []).length
    t.equal(parseAptSimulation(real.stdout).length, n, `this machine: ${n} upgrades waiting, each one read`)
  }
})

t.test("Windows software from the registry's uninstall keys", async (t) => {
  const sample = String.raw`[{"DisplayName":"Microsoft Edge","DisplayVersion":"131.0.2903.86","Publisher":"Microsoft Corporation"},{"DisplayName":"7-Zip 24.08 (x64)","DisplayVersion":"24.08","Publisher":"Igor Pavlov"},{"DisplayName":"Veeam Agent for Microsoft Windows","DisplayVersion":null,"Publisher":"Veeam Software Group GmbH"},{"DisplayName":"Microsoft Edge","DisplayVersion":"131.0.2903.86","Publisher":"Microsoft Corporation"},{"DisplayName":null,"DisplayVersion":"1.0","Publisher":null}]`
  t.same(parseWindowsSoftware(sample), [
    { name: '7-Zip 24.08 (x64)', version: '24.08', publisher: 'Igor Pavlov' },
    { name: 'Microsoft Edge', version: '131.0.2903.86', publisher: 'Microsoft Corporation' },
    { name: 'Veeam Agent for Microsoft Windows', version: '', publisher: 'Veeam Software Group GmbH' },
  ], 'both registry views merged, nameless entries left out')
  t.same(parseWindowsSoftware('{"DisplayName":"Notepad++ (64-bit x64)","DisplayVersion":"8.7.1","Publisher":"Notepad++ Team"}'), [{ name: 'Notepad++ (64-bit x64)', version: '8.7.1', publisher: 'Notepad++ Team' }])
  t.same(parseWindowsSoftware(''), [])
})

t.test('a whole inventory of this machine', async (t) => {
  const inv = await inventory('9.9.9')
  t.match(inv, { version: '9.9.9', os: { platform: 'linux' }, cpu: { cores: Number }, mem: { total: Number }, bios: Object, baseboard: Object, memLayout: Array, disks: Array, users: Array, services: Array })
  t.ok((inv.software as unknown[]).length > 100, 'the installed packages')
  t.ok(Array.isArray(inv.updates), 'the upgrades apt has waiting')
})

t.test('an inventory is news when something stable in it changed', async (t) => {
  const inv = { os: { release: '12' }, fs: [{ mount: '/', type: 'ext4', size: 100, used: 40 }], users: ['root'], services: [{ name: 'cron', running: true }], updates: [], software: [{ name: 'nginx', version: '1.22' }] }
  const same = { ...inv, fs: [{ mount: '/', type: 'ext4', size: 100, used: 77 }], users: [], services: [{ name: 'cron', running: false }], updates: [{ name: 'x', from: '1', to: '2' }] }
  t.equal(inventoryHash(same), inventoryHash(inv), 'space used, who is signed in, running services, waiting updates: not news')
  t.not(inventoryHash({ ...inv, software: [...inv.software, { name: 'telnetd', version: '0.17' }] }), inventoryHash(inv), 'a package installed')
  t.not(inventoryHash({ ...inv, fs: [...inv.fs, { mount: '/srv', type: 'xfs', size: 500, used: 0 }] }), inventoryHash(inv), 'a file system added')
})
