import t from 'tap'
import { inventoryChanges } from '../../../appliance/fleet/inventory-diff'

t.test('what changed between two inventories', async (t) => {
  const before = {
    os: { distro: 'Debian GNU/Linux', release: '12', kernel: '6.1.0-25' }, cpu: { brand: 'AMD EPYC', cores: 2 }, mem: { total: 8 * 2 ** 30 },
    fs: [{ mount: '/', size: 20 * 2 ** 30 }], network: [{ iface: 'eth0', ip4: '192.0.2.10' }],
    software: [{ name: 'openssl', version: '3.0.9-1' }, { name: 'telnetd', version: '0.17' }, { name: 'nginx', version: '1.22.1' }],
  }
  const after = {
    ...before, os: { ...before.os, kernel: '6.1.0-28' }, mem: { total: 16 * 2 ** 30 },
    fs: [{ mount: '/', size: 20 * 2 ** 30 }, { mount: '/srv', size: 100 * 2 ** 30 }],
    software: [{ name: 'openssl', version: '3.0.11-1' }, { name: 'nginx', version: '1.22.1' }, { name: 'fail2ban', version: '1.0.2' }],
  }
  t.same(inventoryChanges(before, after), [
    { what: 'os', before: 'Debian GNU/Linux 12 (kernel 6.1.0-25)', after: 'Debian GNU/Linux 12 (kernel 6.1.0-28)' },
    { what: 'memory', before: '8.0 GiB', after: '16.0 GiB' },
    { what: 'fs /srv', before: null, after: '100.0 GiB' },
    { what: 'software fail2ban', before: null, after: '1.0.2' },
    { what: 'software openssl', before: '3.0.9-1', after: '3.0.11-1' },
    { what: 'software telnetd', before: '0.17', after: null },
  ], 'an upgrade is one line; added and removed say so')
  t.same(inventoryChanges(after, after), [], 'the same inventory: nothing')
})
