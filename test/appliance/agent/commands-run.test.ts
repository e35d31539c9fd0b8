/*
 * The agent's commands, on real parts: a real journal file for the log bundle, the request
 * file the image's moat-restart.path watches, and a release fetched over real HTTPS (a
 * loopback server with its own certificate, trusted the way an admin trusts a private CA:
 * NODE_EXTRA_CA_CERTS) into the file moat-update.path watches.
 */
import { spawn, spawnSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import https from 'node:https'
import path from 'node:path'
import t from 'tap'
import { incomingReleaseFile, restartRequestFile, runCommand } from '../../../appliance/agent/commands-run'
import { JOURNAL_REMOTE, writeJournal } from '../../helpers/journal'

const noInventory = { takeInventory: async () => {} }

t.test('collect-logs: the last journal lines of every priority', async (t) => {
  if (!fs.existsSync(JOURNAL_REMOTE)) return t.fail(`${JOURNAL_REMOTE} is missing`)
  const journal = t.testdir()
  writeJournal(journal, Array.from({ length: 30 }, (_, i) => ({ at: Date.now() - 30_000 + i, priority: i % 8, ident: 'app', message: `line ${i}` })))
  const out = await runCommand({ id: 1, kind: 'collect-logs' }, { ...noInventory, journalDir: journal, platform: 'linux' })
  t.match(out, /^log bundle: the last 30 journal lines, every priority\n/)
  t.match(out, /app\[?\d*\]?: line 0\n[\s\S]*line 29/, 'info and debug lines too, oldest first')
})

t.test('restart-services: a request for the path unit, on appliances only', async (t) => {
  const dataDir = t.testdir()
  await t.rejects(runCommand({ id: 2, kind: 'restart-services' }, noInventory), /for Moat appliances/)
  t.match(await runCommand({ id: 2, kind: 'restart-services' }, { ...noInventory, applianceDataDir: dataDir }), /requested/)
  t.match(JSON.parse(fs.readFileSync(restartRequestFile(dataDir), 'utf8')), { by: 'fleet', command: 2 })
})

t.test('apply-update: the release fetched over HTTPS, whole, to where moat-update.path looks', async (t) => {
  const dir = t.testdir()
  const key = path.join(dir, 'key.pem')
  const cert = path.join(dir, 'cert.pem')
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
  t.equal(made.status, 0, String(made.stderr))
  const release = crypto.randomBytes(3 * 1024 * 1024)
  const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
    if (req.url === '/moat-0.2.0.moat') return res.writeHead(200, { 'content-length': release.length }).end(release)
    res.writeHead(404).end('no such release')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  const base = `https://127.0.0.1:${(server.address() as { port: number }).port}`
  const dataDir = path.join(dir, 'data')
  // In a child (Node reads NODE_EXTRA_CA_CERTS at start), not blocking this process's server.
  const run = (arg: string) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const code = `require(${JSON.stringify(path.join(__dirname, '../../../appliance/agent/commands-run.js'))}).runCommand({ id: 3, kind: 'apply-update', arg: ${JSON.stringify(arg)} }, { applianceDataDir: ${JSON.stringify(dataDir)}, takeInventory: async () => {} }).then((o) => console.log(o), (e) => { console.error(e.message); process.exit(1) })`
      const p = spawn(process.execPath, ['-e', code], { env: { ...process.env, NODE_EXTRA_CA_CERTS: cert } })
      let stdout = ''
      let stderr = ''
      p.stdout.on('data', (d) => (stdout += d))
      p.stderr.on('data', (d) => (stderr += d))
      p.on('exit', (status) => resolve({ status, stdout, stderr }))
    })
  const missing = await run(`${base}/moat-9.9.9.moat`)
  t.equal(missing.status, 1)
  t.match(missing.stderr, /answered 404/)
  t.notOk(fs.existsSync(incomingReleaseFile(dataDir)) || fs.existsSync(`${incomingReleaseFile(dataDir)}.part`), 'nothing left for the path unit to pick up')
  const ok = await run(`${base}/moat-0.2.0.moat`)
  t.equal(ok.status, 0, ok.stderr)
  t.match(ok.stdout, new RegExp(`sha256 ${crypto.createHash('sha256').update(release).digest('hex')}`))
  t.ok(fs.readFileSync(incomingReleaseFile(dataDir)).equals(release), 'byte for byte')
  await t.rejects(runCommand({ id: 4, kind: 'apply-update', arg: 'http://127.0.0.1/x.moat' }, { ...noInventory, applianceDataDir: dataDir }), /https/)
})
