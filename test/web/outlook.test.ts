/*
 * The Outlook add-in: its manifest (well-formed, made for this appliance, with every element
 * Outlook's report surface needs; Microsoft's own validator needs the internet), its logic
 * under office-addin-mock (the Outlook host) against the running web app, its sign-in dialog,
 * and its task pane in Chromium with a mocked Office object against the running web app.
 */
import fs from 'node:fs'
import path from 'node:path'
import vm from 'node:vm'
import { serve } from '@hono/node-server'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import t from 'tap'
import { Spool } from '../../appliance/services/spool'
import { createApp } from '../../web/app'
import { OFFICE_JS } from '../../web/routes/outlook'
import { ROOT } from '../helpers/appliance'
import { PASSWORD, post, setup, signIn } from '../helpers/web'

const { OfficeMockObject } = require('office-addin-mock')
const { chromium } = require('playwright-core')

const CHROMIUM = '/usr/bin/chromium'
const SHOTS = path.join(ROOT, 'artifacts/screenshots')
const ADDIN_JS = path.join(ROOT, 'dist/web/outlook/addin.js')
const PUBLIC = 'https://moat.example.com'

async function running(t: { testdir(): string; teardown(fn: () => unknown): void }) {
  const s = await setup(t)
  const app = createApp({ db: s.db, spool: new Spool(`${s.dataDir}/spool`), version: '9.9.9', clamd: null, dataDir: s.dataDir, publicUrl: PUBLIC })
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 })
  t.teardown(() => server.close())
  await new Promise((r) => server.once('listening', r))
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  // A token for alice, made as the account page makes it.
  const alice = await signIn(app, 'alice@example.com')
  const made = await (await post(app, '/account/tokens', alice, { name: 'outlook', password: PASSWORD })).text()
  const token = /<code id="new-token">(moat_[\w-]+)<\/code>/.exec(made)![1]
  return { ...s, app, base, token, alice }
}

t.test('the manifest: well-formed, this appliance’s, and complete for the report surface', async (t) => {
  const { app, db } = await running(t)
  const res = await app.request('/outlook/manifest.xml')
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /xml/)
  const text = await res.text()
  t.equal(XMLValidator.validate(text), true, 'well-formed XML')
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: (name) => ['ExtensionPoint', 'Option', 'bt:Image', 'bt:Url', 'bt:String', 'Rule', 'Control'].includes(name) }).parse(text)
  const app0 = doc.OfficeApp
  t.equal(app0['@xsi:type'], 'MailApp')
  t.match(app0.Id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'an id made for this install')
  t.equal((await (await app.request('/outlook/manifest.xml')).text()).match(/<Id>(.*)<\/Id>/)![1], app0.Id, 'and kept')
  t.equal(db.prepare(`SELECT value FROM settings WHERE key = 'outlook_addin_id'`).pluck().get(), app0.Id)
  t.equal(app0.Permissions, 'ReadWriteMailbox')
  t.equal(app0.AppDomains.AppDomain, PUBLIC)
  const urls = [...text.matchAll(/DefaultValue="(https?:[^"]+)"/g)].map((m) => m[1])
  t.ok(urls.length > 10)
  t.same(urls.filter((u) => !u.startsWith(`${PUBLIC}/outlook/`)), [], 'every URL is this appliance’s public one')
  for (const u of new Set(urls)) t.equal((await app.request(new URL(u).pathname)).status, 200, `${new URL(u).pathname} is served`)

  const v10 = app0.VersionOverrides
  const v11 = v10.VersionOverrides
  t.equal(v11['@xsi:type'], 'VersionOverridesV1_1')
  for (const [name, vo] of [['1.0', v10], ['1.1', v11]] as const) {
    const points = vo.Hosts.Host.DesktopFormFactor.ExtensionPoint as Record<string, any>[]
    const read = points.find((p) => p['@xsi:type'] === 'MessageReadCommandSurface')
    t.equal(read?.OfficeTab.Group.Control[0].Action['@xsi:type'], 'ShowTaskpane', `${name}: a reading-pane button opens the task pane`)
    // Every resid must name a resource of the same VersionOverrides.
    const section = JSON.stringify({ ...vo, VersionOverrides: undefined })
    const ids = new Set([...section.matchAll(/"@id":"([^"]+)"/g)].map((m) => m[1]))
    const missing = [...section.matchAll(/"@resid":"([^"]+)"/g)].map((m) => m[1]).filter((r) => !ids.has(r))
    t.same(missing, [], `${name}: every resid resolves`)
  }
  const report = (v11.Hosts.Host.DesktopFormFactor.ExtensionPoint as Record<string, any>[]).find((p) => p['@xsi:type'] === 'ReportPhishingCommandSurface')
  t.ok(report, 'Outlook’s Report button (ReportPhishingCommandSurface)')
  const custom = report!.ReportPhishingCustomization
  t.equal(custom.Control[0]['@xsi:type'], 'Button')
  t.same(custom.Control[0].Action, { '@xsi:type': 'ExecuteFunction', FunctionName: 'onSpamReport' })
  const dialog = custom.PreProcessingDialog
  t.ok(dialog.Title && dialog.Description && dialog.FreeTextLabel, 'the preprocessing dialog has its title, description and free text')
  t.ok(dialog.ReportingOptions.Option.length >= 1 && dialog.ReportingOptions.Option.length <= 5, 'one to five reporting options')
  t.ok(custom.SourceLocation['@resid'], 'and the runtime it runs in')
  t.match(v11.Hosts.Host.Runtimes.Runtime.Override, { '@type': 'javascript' }, 'a JavaScript runtime for classic Outlook')

  const alice = await signIn(app, 'alice@example.com')
  const page = await (await app.request('/outlook/', { headers: { Cookie: alice.cookie } })).text()
  t.match(page, /href="\/outlook\/manifest\.xml"/, 'the install page offers the manifest')
  t.match(page, /aka\.ms\/olksideload/, 'and says how a user installs it')
  t.notMatch(page, /New-App -OrganizationApp/, 'the Exchange admin part is for admins')
  const boss = await signIn(app, 'boss@example.com')
  t.match(await (await app.request('/outlook/', { headers: { Cookie: boss.cookie } })).text(), /New-App -OrganizationApp/)
})

t.test('the sign-in dialog hands a token back through Office, after the password', async (t) => {
  const { app, db, alice } = await running(t)
  const form = await app.request('/outlook/connect', { headers: { Cookie: alice.cookie } })
  t.equal(form.status, 200)
  t.match(form.headers.get('content-security-policy'), /script-src 'self' https:\/\/appsforoffice\.microsoft\.com/)
  t.match(form.headers.get('content-security-policy'), /frame-ancestors https:/, 'Outlook may frame it')
  t.equal((await post(app, '/outlook/connect', alice, { password: 'wrong' })).status, 403)
  const ok = await (await post(app, '/outlook/connect', alice, { password: PASSWORD })).text()
  const token = /data-token="(moat_[\w-]+)"/.exec(ok)?.[1]
  t.ok(token, 'the token is on the page for connect.js')
  t.match(ok, new RegExp(`<script src="${OFFICE_JS.replace(/[./]/g, '\\$&')}">`))
  t.match(ok, /<script src="\/outlook\/connect\.js">/)
  t.ok(db.prepare(`SELECT 1 FROM api_tokens WHERE name = 'Outlook add-in'`).get(), 'listed on the account page as the Outlook add-in')
  const anonymous = await app.request('/outlook/connect')
  t.match(anonymous.headers.get('location'), /^\/login/, 'not without signing in')
})

t.test('the Report button’s handler under office-addin-mock: reported, moved to Junk; refused without a token', async (t) => {
  const { base, token, db } = await running(t)
  const eml = Buffer.from('From: Promo <promo@spam.test>\r\nTo: alice@example.com\r\nSubject: slipped through\r\nMessage-ID: <slip@spam.test>\r\n\r\nbuy now\r\n')
  const load = (settings: Map<string, unknown>) => {
    const handlers: Record<string, (e: unknown) => void> = {}
    const Office = new OfficeMockObject(
      {
        AsyncResultStatus: { Succeeded: 'succeeded', Failed: 'failed' },
        MailboxEnums: { MoveSpamItemTo: { JunkFolder: 'junkFolder' } },
        EventType: { DialogMessageReceived: 'dialogMessageReceived' },
        context: {
          roamingSettings: { get: (k: string) => settings.get(k), set: (k: string, v: unknown) => settings.set(k, v), remove: (k: string) => settings.delete(k), saveAsync: (cb: (r: unknown) => void) => cb({ status: 'succeeded' }) },
          mailbox: { item: { itemId: 'AAMkAD1', from: { emailAddress: 'promo@spam.test' }, getAsFileAsync: (cb: (r: unknown) => void) => cb({ status: 'succeeded', value: eml.toString('base64') }) } },
        },
        onReady: (cb: () => void) => cb(),
        actions: { associate: (name: string, fn: (e: unknown) => void) => (handlers[name] = fn) },
      },
      'outlook',
    )
    const context = vm.createContext({ Office, atob, Blob, console, fetch: (p: string, init: RequestInit) => fetch(`${base}${p}`, init), location: { origin: base } })
    vm.runInContext(fs.readFileSync(ADDIN_JS, 'utf8'), context, { filename: 'addin.js' })
    return handlers
  }
  const report = (handlers: Record<string, (e: unknown) => void>) => new Promise<Record<string, any>>((resolve) => handlers.onSpamReport({ completed: (opts: Record<string, any>) => resolve(opts) }))

  const connected = load(new Map([['moatToken', token]]))
  t.type(connected.onSpamReport, 'function', 'associated with the manifest’s FunctionName')
  const done = await report(connected)
  t.equal(done.moveItemTo, 'junkFolder', 'Outlook moves it to Junk')
  t.match(done.showPostProcessingDialog.description, /learns from your report/)
  const rows = db.prepare(`SELECT label, reported_by FROM classifier_reports`).all() as { label: string; reported_by: string }[]
  t.same(rows.map((r) => r.label), ['spam'], 'learned as spam, as every report')
  t.match(rows[0].reported_by, /alice@example\.com via API/)

  const settings = new Map<string, unknown>()
  const refused = await report(load(settings))
  t.equal(refused.moveItemTo, undefined, 'not moved when the report was not sent')
  t.match(refused.showPostProcessingDialog.description, /not sent: Connect the add-in/)
  const revoked = new Map<string, unknown>([['moatToken', 'moat_revoked-or-made-up']])
  await report(load(revoked))
  t.notOk(revoked.has('moatToken'), 'a refused token is forgotten, so the pane asks to sign in')
  t.equal((db.prepare(`SELECT count(*) AS n FROM classifier_reports`).get() as { n: number }).n, 1, 'nothing else recorded')
})

t.test('the task pane in Chromium with a mocked Office, against the running appliance', { skip: !fs.existsSync(CHROMIUM) && 'no /usr/bin/chromium' }, async (t) => {
  fs.mkdirSync(SHOTS, { recursive: true })
  const { base, token, db, ids } = await running(t)
  const ews: string[] = []
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  t.teardown(() => browser.close())
  const context = await browser.newContext({ viewport: { width: 350, height: 900 } })
  const escaped: string[] = []
  const eml = 'From: Promo <promo@spam.test>\r\nSubject: open message\r\n\r\nbuy\r\n'
  // Office.js is Microsoft's; here a stand-in with an open message and a signed-in mailbox.
  const mockOffice = `window.Office = {
    AsyncResultStatus: { Succeeded: 'succeeded', Failed: 'failed' },
    MailboxEnums: { MoveSpamItemTo: { JunkFolder: 'junkFolder' } },
    EventType: { DialogMessageReceived: 'dialogMessageReceived' },
    onReady(cb) { setTimeout(cb, 0) },
    actions: { associate() {} },
    context: {
      roamingSettings: { v: { moatToken: ${JSON.stringify(token)} }, get(k) { return this.v[k] }, set(k, x) { this.v[k] = x }, remove(k) { delete this.v[k] }, saveAsync(cb) { cb({ status: 'succeeded' }) } },
      ui: { displayDialogAsync(url, o, cb) { cb({ status: 'failed', error: { message: 'no dialogs in this test' } }) } },
      mailbox: {
        item: { itemId: 'AAMkAD1', from: { emailAddress: 'Promo@Spam.test' }, getAsFileAsync(cb) { cb({ status: 'succeeded', value: btoa(${JSON.stringify(eml)}) }) } },
        makeEwsRequestAsync(xml, cb) { window.ews = (window.ews || []).concat(xml); cb({ status: 'succeeded', value: '<m:MoveItemResponseMessage ResponseClass="Success">' }) },
      },
    },
  }`
  await context.route('**/*', (route: { request(): { url(): string }; fulfill(r: unknown): Promise<void>; abort(): Promise<void>; continue(): Promise<void> }) => {
    const url = route.request().url()
    if (url === OFFICE_JS) return route.fulfill({ status: 200, contentType: 'text/javascript', body: mockOffice })
    if (url.startsWith(base)) return route.continue()
    escaped.push(url)
    return route.abort()
  })
  const page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (e: Error) => errors.push(e.message))
  page.on('console', (m: { type(): string; text(): string }) => m.type() === 'error' && errors.push(m.text()))
  await page.goto(`${base}/outlook/taskpane.html`)
  for (const end = Date.now() + 15_000; Date.now() < end && !(await page.evaluate('document.body.dataset.ready')); ) await new Promise((r) => setTimeout(r, 100))
  t.same(errors, [], 'the pane started cleanly')
  t.equal(await page.locator('#sender').textContent(), 'promo@spam.test')
  t.match(await page.locator('#counts').textContent(), /^1 new spam, 0 surespam/)
  t.equal(await page.locator('#quarantine li[data-id]').count(), 1, 'her own quarantine only')
  t.match(await page.locator('#quarantine').textContent(), /alicemail cheap pills/)
  t.match(await page.locator('#version').textContent(), /Moat 9\.9\.9/)
  await page.screenshot({ path: path.join(SHOTS, 'outlook-taskpane.png'), fullPage: true })

  await page.click(`#quarantine li[data-id="${ids.alicemail.quarantine}"] button:has-text("Release")`)
  await page.waitForSelector('#status.done')
  t.match(await page.locator('#status').textContent(), /Released “alicemail cheap pills”/)
  t.ok((db.prepare(`SELECT released_at FROM quarantine WHERE id = ?`).get(ids.alicemail.quarantine) as { released_at: number | null }).released_at, 'released')

  await page.click('#block')
  for (const end = Date.now() + 10_000; Date.now() < end && !/block list/.test((await page.locator('#status').textContent()) ?? ''); ) await new Promise((r) => setTimeout(r, 100))
  t.match(await page.locator('#status').textContent(), /promo@spam\.test is on your block list/)
  t.ok(db.prepare(`SELECT 1 FROM sender_lists WHERE kind = 'block' AND pattern = 'promo@spam.test'`).get())

  await page.click('#report')
  for (const end = Date.now() + 10_000; Date.now() < end && !/Reported/.test((await page.locator('#status').textContent()) ?? ''); ) await new Promise((r) => setTimeout(r, 100))
  t.equal(await page.locator('#status').textContent(), 'Reported as spam; Moat learns from it. Moved to Junk.')
  t.match((await page.evaluate('window.ews[0]')) as string, /<t:DistinguishedFolderId Id="junkemail"\/>.*<t:ItemId Id="AAMkAD1"\/>/, 'moved with EWS on a client without the Report button')
  t.same((db.prepare(`SELECT label FROM classifier_reports`).all() as { label: string }[]).map((r) => r.label), ['spam'])

  t.same(errors, [], 'no script errors, nothing refused by the CSP')
  const bobToken = db.prepare(`SELECT 1 FROM quarantine WHERE id = ?`).get(ids.bobmail.quarantine)
  t.ok(bobToken, "bob's entry is there")
  const stolen = await page.evaluate(`fetch('/api/v1/quarantine/${ids.bobmail.quarantine}/release', { method: 'POST', headers: { Authorization: 'Bearer ${token}' } }).then((r) => r.status)`)
  t.equal(stolen, 404, "another user's entry by id is a 404 from the add-in too")
  t.same(escaped, [], 'nothing left loopback (Office.js was the stand-in)')
})
