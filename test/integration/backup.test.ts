/*
 * moat backup and moat restore with the real services: a backup taken while the SMTP service
 * runs, restored into another appliance, is in place when that appliance's services start.
 */
import t from 'tap'
import { moat, moatOk, provisionAcme, smtpSend, startSink, startSmtp, message, until, workDir } from '../helpers/appliance'
import path from 'node:path'
import fs from 'node:fs'

t.test('a backup of a running appliance, restored into another, is what that one runs on at its next start', async (t) => {
  const a = workDir(t)
  const sink = await startSink()
  t.teardown(() => sink.close())
  provisionAcme(a, sink.port)
  const smtp = await startSmtp(a)
  t.teardown(() => smtp.stop())
  const r = await smtpSend(smtp.port, { from: 'bob@outside.test', to: ['alice@example.com'], data: message({ From: 'bob@outside.test', To: 'alice@example.com', Subject: 'minutes of the board meeting' }, 'The minutes, as agreed.') })
  t.equal(r.final.code, 250)
  await sink.waitFor(1)
  const file = path.join(a, 'backup.tar.gz')
  t.match(moatOk(a, ['backup', file]), /backup of .* written to/)
  await smtp.stop()

  const b = workDir(t)
  moatOk(b, ['org', 'add', 'other'])
  t.equal(moat(b, ['restore', path.join(b, 'missing.tar.gz')]).code, 1, 'a file that is not there is a clear refusal')
  t.match(moatOk(b, ['restore', file]), /staged; restart the services/)
  t.match(moatOk(b, ['org', 'list']), /other/, 'nothing changes before the services restart')
  const restarted = await startSmtp(b)
  t.teardown(() => restarted.stop())
  t.match(restarted.output(), /restored the backup of/)
  const orgs = moatOk(b, ['org', 'list', '--json'])
  t.same(JSON.parse(orgs).map((o: { name: string }) => o.name), ['acme'])
  t.equal(JSON.parse(moatOk(b, ['archive', 'search', 'subject:minutes', '--json'])).length, 1, 'the archive came back')
  t.ok(fs.readdirSync(b).some((n) => n.startsWith('pre-restore-')), 'the replaced data is kept aside')
  // And it receives mail as acme again.
  const again = await smtpSend(restarted.port, { from: 'bob@outside.test', to: ['alice@example.com'], data: message({ From: 'bob@outside.test', To: 'alice@example.com', Subject: 'after the restore' }, 'Hello again.') })
  t.equal(again.final.code, 250)
  await until(() => sink.messages.length >= 2, 20_000, 'delivered after the restore')
})
