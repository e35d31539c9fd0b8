/* The rule language and the shipped UPS outbreak rules, on messages built here. */
import t from 'tap'
import { openDatabase } from '../../../appliance/db/database'
import { parseMessage } from '../../../appliance/engine/message'
import { attachmentPatterns, evaluate, validateCondition } from '../../../appliance/engine/rules'
import type { Symbol } from '../../../appliance/engine/symbols'
import { Rules } from '../../../appliance/services/rules'

const rules = new Rules(openDatabase(':memory:'))
const ups = (name: string) => rules.list().find((r) => r.name === name)!.what

async function input(raw: string, symbols: Symbol[] = [], mailFrom = 'x@sender.test') {
  return { msg: await parseMessage(Buffer.from(raw.replace(/\n/g, '\r\n'))), mailFrom, symbols }
}

const fakeUps = 'From: "UPS Quantum View" <notify@parcel-alerts.test>\nSubject: UPS Delivery Notification\n\nYour package could not be delivered. Tracking number: 8843217765 — print the attached label.\n'
const realUps = 'From: "UPS" <mcinfo@ups.com>\nSubject: UPS Update: Package Scheduled for Delivery\n\nTracking Number: 1Z999AA10123456784\n'

t.test('the shipped rules are there', async (t) => {
  t.same(rules.list().map((r) => r.name), ['UPS_BAD_TRACKING_NUMBER', 'UPS_NOT_FROM_UPS'])
})

t.test('UPS_NOT_FROM_UPS: mail claiming to be UPS must authenticate as ups.com', async (t) => {
  t.ok(evaluate(ups('UPS_NOT_FROM_UPS'), await input(fakeUps)), 'a fake notice matches')
  t.ok(evaluate(ups('UPS_NOT_FROM_UPS'), await input(realUps)), 'even from ups.com, without authentication it matches')
  t.notOk(evaluate(ups('UPS_NOT_FROM_UPS'), await input(realUps, [{ name: 'DKIM_PASS', detail: 'ups.com (body hash ok)' }])), 'DKIM d=ups.com clears it')
  t.notOk(evaluate(ups('UPS_NOT_FROM_UPS'), await input(realUps, [{ name: 'SPF_PASS' }], 'bounce@ups.com')), 'aligned SPF clears it')
  t.ok(evaluate(ups('UPS_NOT_FROM_UPS'), await input(fakeUps, [{ name: 'SPF_PASS' }], 'x@parcel-alerts.test')), 'SPF for another domain does not')
  t.notOk(evaluate(ups('UPS_NOT_FROM_UPS'), await input('From: Sam <sam@example.org>\nSubject: backups and groups\n\nno parcels here\n')), 'words containing "ups" are not UPS')
})

t.test('UPS_BAD_TRACKING_NUMBER: UPS tracking numbers start with 1Z and 16 letters or digits', async (t) => {
  t.ok(evaluate(ups('UPS_BAD_TRACKING_NUMBER'), await input(fakeUps)))
  t.notOk(evaluate(ups('UPS_BAD_TRACKING_NUMBER'), await input(realUps)))
})

t.test('conditions are validated before they are stored', async (t) => {
  t.throws(() => validateCondition({ subject: '(' }), /Invalid regular expression/)
  t.throws(() => validateCondition({ bogus: 1 }), /unknown condition/)
  t.throws(() => validateCondition({ all: [] }), /non-empty/)
  t.throws(() => rules.add({ name: 'bad name', what: { subject: 'x' }, action: 'score' }), /UPPER_SNAKE/)
  const r = rules.add({ name: 'INVOICE_ZIP', what: { all: [{ subject: 'invoice' }, { attachment: '[.]zip$' }] }, action: 'score', score: 4 })
  t.equal(r.score, 4)
  const exported = rules.export()
  t.equal(rules.import(exported), 3, 'export then import round-trips')
})

t.test('who: the envelope sender and any envelope recipient; a strip rule’s attachment patterns', async (t) => {
  const msg = await input('From: Bob <bob@partner.test>\nSubject: figures\n\nattached\n', [], 'bounces@mailer.partner.test')
  const withRcpts = { ...msg, rcpts: ['finance@example.com', 'alice@example.com'] }
  t.ok(evaluate(validateCondition({ recipient: '^finance@' }), withRcpts))
  t.notOk(evaluate(validateCondition({ recipient: '^payroll@' }), withRcpts))
  t.notOk(evaluate(validateCondition({ recipient: '.' }), msg), 'no recipients known: no match')
  t.ok(evaluate(validateCondition({ sender: '@mailer\\.partner\\.test$' }), msg))
  t.notOk(evaluate(validateCondition({ sender: '@partner\\.test$' }), { ...msg, mailFrom: '' }), 'the null sender matches no address')
  const patterns = attachmentPatterns(validateCondition({ all: [{ recipient: '^finance@' }, { any: [{ attachment: '\\.zip$' }, { attachment: '\\.rar$' }] }, { not: { attachment: '\\.pdf$' } }] }))
  t.same(patterns.map(String), ['/\\.zip$/i', '/\\.rar$/i'], 'what a "not" names is not stripped')
})
