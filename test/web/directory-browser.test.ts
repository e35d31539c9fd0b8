/*
 * An organisation's directory page in Chromium, against Debian's OpenLDAP: the MSP side sets
 * the source, previews, syncs, and the users appear; the organisation's own admin sees the
 * outcome and may sync, but cannot point the appliance at another server.
 */
import path from 'node:path'
import t from 'tap'
import { moat, moatOk, provisionAcme, workDir } from '../helpers/appliance'
import { NO_CHROMIUM, SHOTS, webInBrowser } from '../helpers/browser'
import { adUser, READER_DN, READER_PASSWORD, startSlapd, SUFFIX } from '../helpers/slapd'


const PASSWORD = 'a long admin password here'

t.test('users from the directory, set and synced in the UI', { skip: NO_CHROMIUM }, async (t) => {
  const dir = workDir(t)
  const ldap = await startSlapd(path.join(dir, 'ldap'))
  t.teardown(() => ldap.stop())
  const admin = await ldap.admin()
  await admin.add(`cn=Dana,ou=people,${SUFFIX}`, adUser('Dana', { displayName: 'Dana Scully', proxyAddresses: ['SMTP:dana@example.com', 'smtp:d.scully@example.com'] }))
  await admin.add(`cn=Fox,ou=people,${SUFFIX}`, adUser('Fox', { mail: 'fox@example.com', userAccountControl: 514 }))
  await admin.unbind()
  provisionAcme(dir, 2525)
  moatOk(dir, ['admin', 'create', '--email', 'root@moat.test', '--password', PASSWORD])
  moatOk(dir, ['admin', 'require-totp', 'off'])
  moatOk(dir, ['user', 'add', 'boss@example.com', '--role', 'org_admin'])
  t.equal(moat(dir, ['user', 'password', 'boss@example.com'], `${PASSWORD}\n`).code, 0)
  const acme = (JSON.parse(moatOk(dir, ['org', 'list', '--json'])) as { id: number; name: string }[]).find((o) => o.name === 'acme')!
  const { web, signIn } = await webInBrowser(t, dir, PASSWORD)

  const page = await signIn('root@moat.test')
  await page.goto(`${web.url}/orgs/${acme.id}`)
  await page.click('a:has-text("directory")')
  t.match(await page.textContent('#source'), /No directory/)
  await page.fill('input[name=url]', ldap.url)
  await page.fill('input[name=bindDn]', READER_DN)
  await page.fill('input[name=bindPassword]', READER_PASSWORD)
  await page.fill('input[name=baseDn]', SUFFIX)
  await page.click('button:has-text("Save")')
  t.match(await page.textContent('#done'), /Saved/)
  t.notMatch(await page.content(), READER_PASSWORD, 'the bind password is not sent back')
  await page.click('button:has-text("Preview")')
  t.match(await page.textContent('#preview'), /2 in the directory \(1 disabled\): 1 user would be added.*\+ dana@example\.com.*\+ alias d\.scully@example\.com/s)
  t.notMatch(moatOk(dir, ['user', 'list', '--json']), /dana@example\.com/, 'a preview changes nothing')
  await page.click('button:has-text("Sync now")')
  t.match(await page.textContent('#done'), /Synced: 1 user added, 0 removed/)
  t.match(await page.textContent('#last-result'), /\+ dana@example\.com/)
  await page.screenshot({ path: path.join(SHOTS, 'directory.png'), fullPage: true })
  t.match(moatOk(dir, ['user', 'list', '--json']), /dana@example\.com/, 'the user is a recipient now')

  // The organisation's admin: sees it, may sync, may not change the server.
  const boss = await signIn('boss@example.com')
  await boss.goto(`${web.url}/orgs/${acme.id}/directory`)
  t.match(await boss.textContent('#source'), /Users come from ldap:\/\/127\.0\.0\.1/)
  t.equal(await boss.locator('input[name=url]').count(), 0, 'no form to change the server')
  const csrf = (await boss.evaluate("JSON.parse(document.body.getAttribute('hx-headers') || '{}')['X-CSRF-Token']")) as string
  const res = await boss.request.post(`${web.url}/orgs/${acme.id}/directory`, { form: { _csrf: csrf, url: 'ldap://10.0.0.1', bindDn: 'x', bindPassword: 'x', baseDn: 'x', filter: '(x=*)', everyMinutes: '60' } })
  t.equal(res.status(), 404, 'and a forged post is refused')
  await boss.click('button:has-text("Sync now")')
  t.match(await boss.textContent('#done'), /Synced: 0 users added/)
})
