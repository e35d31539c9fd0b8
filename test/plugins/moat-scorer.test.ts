/* moat-scorer: sums every filter's symbols once and applies each organisation's thresholds. */
import t from 'tap'

const fixtures = require('haraka-test-fixtures')

process.env.MOAT_DATA_DIR = t.testdir()
const { runtime } = require('../../appliance/smtp/runtime')

const rt = runtime()
const strict = rt.tenants.addOrg('strict')
const lenient = rt.tenants.addOrg('lenient')
rt.tenants.setPolicy('strict', { spam_threshold: 2, surespam_threshold: 40 })
rt.tenants.setPolicy('lenient', { spam_threshold: 50, surespam_threshold: 60 })

t.test('one score, a verdict per organisation', async (t) => {
  const plugin = new fixtures.plugin('moat-scorer')
  plugin.register()
  t.same(plugin.hooks.data_post, ['decide'])
  const connection = fixtures.connection.createConnection()
  connection.init_transaction()
  const txn = connection.transaction
  txn.notes.moat = {
    rcpts: [
      { address: 'a@s.test', orgId: strict.id, domainId: 1, userId: null, tagMode: false },
      { address: 'b@l.test', orgId: lenient.id, domainId: 2, userId: null, tagMode: false },
    ],
    verdicts: {},
  }
  txn.results.push({ name: 'moat-sanity' }, { symbols: [{ name: 'URL_IP_HOST' }, { name: 'SUBJECT_ALLCAPS' }] })
  txn.results.push({ name: 'moat-classifier' }, { symbols: [{ name: 'CLASSIFIER_80' }] })
  txn.results.push({ name: 'moat-other' }, { symbols: [{ name: 'URL_IP_HOST' }] }) // counted once
  await new Promise((resolve) => plugin.decide(resolve, connection))
  const v = txn.notes.moat.verdicts
  t.equal(v[strict.id].verdict, 'spam')
  t.equal(v[lenient.id].verdict, 'clean')
  t.same(v[strict.id].symbols.map((s: { name: string }) => s.name), ['URL_IP_HOST', 'SUBJECT_ALLCAPS', 'CLASSIFIER_80'])
  t.equal(v[strict.id].score, v[lenient.id].score, 'the score is the same; only the thresholds differ')
})
