import t from 'tap'
import { compareVersions } from '../../../appliance/services/updates'

t.test('version order', async (t) => {
  t.equal(compareVersions('1.10.0', '1.9.2'), 1)
  t.equal(compareVersions('1.9.2', '1.10.0'), -1)
  t.equal(compareVersions('v2.0', '2.0.0'), 0)
  t.equal(compareVersions('2.0.0-rc.1', '2.0.0'), -1, 'a release candidate comes before its release')
  t.equal(compareVersions('2.0.1', '2.0.0-rc.9'), 1)
})
