/*
 * The Fleet pages in a real browser (Debian's chromium, playwright-core) over the console's
 * own HTTPS, with a real agent reporting: an organisation admin sees its host, its inventory
 * and metrics, queues a command; another tenant's host is a 404. Screenshots go to
 * artifacts/screenshots/.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { moat, moatOk, ROOT, startWeb, until, workDir } from '../helpers/appliance'
import { writeJournal } from '../helpers/journal'

const { chromium } = require('playwright-core')

const CHROMIUM = '/usr/bin/chromium'
const PASSWORD = 'browser test password'
const SHOTS = path.join(ROOT, 'artifacts/screenshots')
const AGENT = path.join(__dirname, '../../../bin/moat-agent')

t.test('Fleet: an organisation admin sees its hosts, a host page, and queues a command', { skip: !fs.existsSync(CHROMIUM) && 'no /usr/bin/chromium' }, async (t) => {
  fs.mkdirSync(SHOTS, { recursive: true })
  const dir = workDir(t)
  moatOk(dir, ['org', 'add', 'acme'])
  moatOk(dir, ['org', 'add', 'globex'])
  moatOk(dir, ['domain', 'add', 'example.com', '--org', 'acme', '--deliver-to', '127.0.0.1:9'])
  moatOk(dir, ['user', 'add', 'boss@example.com', '--role', 'org_admin'])
  t.equal(moat(dir, ['user', 'password', 'boss@example.com'], `${PASSWORD}\n`).code, 0)
  const web = await startWeb(dir, { MOAT_WEB_TLS: '1' })
  t.teardown(() => web.stop())

  const agents: ChildProcess[] = []
  t.teardown(() => agents.forEach((a) => a.kill('SIGKILL')))
  for (const [org, name] of [['acme', 'acme-web01'], ['globex', 'globex-db01']]) {
    const token = moatOk(dir, ['fleet', 'token', 'create', '--org', org]).trim().split('\n').at(-1)!
    const journal = path.join(dir, `journal-${name}`)
    fs.mkdirSync(journal)
    writeJournal(journal, [
      { at: Date.now() - 120_000, priority: 3, unit: 'nginx.service', message: `${name}: upstream timed out` },
      { at: Date.now() - 60_000, priority: 4, ident: 'kernel', message: `${name}: EXT4-fs warning` },
    ])
    const env = { ...process.env, MOAT_AGENT_DIR: path.join(dir, `agent-${name}`), MOAT_AGENT_FLUSH_MS: '500', MOAT_AGENT_METRICS_CRON: '*/2 * * * * *', MOAT_AGENT_JOURNAL_DIR: journal }
    const enrolled = spawnSync(process.execPath, [AGENT, 'enroll', web.url, '--token', token, '--name', name], { env, encoding: 'utf8' })
    t.equal(enrolled.status, 0, enrolled.stderr)
    agents.push(spawn(process.execPath, [AGENT, 'run'], { env, stdio: 'ignore' }))
  }
  const hosts = () => JSON.parse(moatOk(dir, ['fleet', 'hosts', '--json'])) as { id: number; name: string; last_seq: number }[]
  await until(() => hosts().length === 2 && hosts().every((h) => h.last_seq >= 2), 30_000, 'both agents reporting')
  const [acme, globex] = ['acme-web01', 'globex-db01'].map((n) => hosts().find((h) => h.name === n)!)
  // The inventory is taken in a worker thread and comes after the first metrics.
  await until(() => JSON.parse(moatOk(dir, ['fleet', 'host', String(acme.id), '--json'])).inventory, 60_000, 'the first inventory')

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  t.teardown(() => browser.close())
  const context = await browser.newContext({ ignoreHTTPSErrors: true })
  const page = await context.newPage()
  await page.goto(`${web.url}/login?next=/fleet`)
  await page.fill('input[name=email]', 'boss@example.com')
  await page.fill('input[name=password]', PASSWORD)
  await page.click('button[type=submit]')
  await page.waitForURL(/\/fleet$/)
  const rows = await page.locator('#hosts tbody tr').allTextContents()
  t.equal(rows.length, 1, 'one host: their own')
  t.match(rows[0], /acme-web01.*acme.*linux.*online/)
  await page.screenshot({ path: path.join(SHOTS, 'fleet-hosts.png'), fullPage: true })

  await page.click('text=acme-web01')
  await page.waitForURL(new RegExp(`/fleet/hosts/${acme.id}$`))
  t.match(await page.textContent('#inventory'), /GiB/, 'the inventory: memory and file systems')
  t.match(await page.textContent('#metrics'), /\d+ %/, 'the latest metrics')
  // Drawn by uPlot in the browser (web/static/plots.js) from the numbers the server put on each figure.
  await page.waitForSelector('#plots figure.chart.interactive .uplot')
  t.equal(await page.locator('#plots figure.chart.interactive').count(), 3, 'three plots, interactive')
  const samples = (await page.evaluate(
    "[...document.querySelectorAll('#plots figure.chart')].reduce((n, f) => n + JSON.parse(f.dataset.plot).series.reduce((m, s) => m + s.values.filter((v) => v !== null).length, 0), 0)",
  )) as number
  t.ok(samples > 0, `with the samples so far on them (${samples})`)
  t.match(await page.textContent('#log-lines'), /acme-web01: upstream timed out/, "the host's journal lines")
  t.notMatch(await page.textContent('#log-lines'), /globex/, "none of another tenant's host")
  await page.fill('form[action$="#logs"] input[name=q]', 'ext4')
  await page.click('form[action$="#logs"] button')
  await page.waitForURL(/q=ext4/)
  t.same((await page.locator('#log-lines tr').allTextContents()).map((r: string) => /EXT4-fs warning/.test(r)), [true], 'searched: the one line with the word')
  await page.goto(`${web.url}/fleet/hosts/${acme.id}`)
  await page.click('button:has-text("Refresh inventory")')
  await page.waitForURL(new RegExp(`/fleet/hosts/${acme.id}\\?done=command-queued$`))
  t.match(await page.textContent('#done'), /Command queued: it runs when the host next reports/, 'it says what it did')
  t.match(await page.textContent('#commands'), /refresh-inventory/)
  let commands = ''
  for (const deadline = Date.now() + 60_000; !/done .*inventory taken/.test(commands) && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 500))
    await page.reload()
    commands = (await page.textContent('#commands')) ?? ''
  }
  t.match(commands, /done .*inventory taken/, 'the agent ran it and said so')
  await page.screenshot({ path: path.join(SHOTS, 'fleet-host.png'), fullPage: true })

  const other = await page.goto(`${web.url}/fleet/hosts/${globex.id}`)
  t.equal(other.status(), 404, "another tenant's host by id")
})
