/*
 * `npm run bench -- fleet`: one console (a real `moat web` over HTTPS, its own self-signed
 * certificate) and simulated agents that sign each request with their own Ed25519 key, as
 * real agents do. For 1,000 and 10,000 enrolled hosts:
 * - the hosts' real pace (one metrics report a host a minute) for BENCH_FLEET_SECONDS: p99
 *   ingest latency and the console's CPU per report at the load it will really see;
 * - then as fast as the console takes them (BENCH_FLEET_CONCURRENCY requests in flight):
 *   sustained reports/s, the headroom over the real pace;
 * - database growth per host-day and the steady size of a host (two days of samples and
 *   30 days of hourly roll-ups), from SQLite's own page accounting;
 * - the Fleet page (first page of hosts) and a host page, as the MSP's admin.
 * And a real agent process with its default schedules: CPU and memory on the host.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import https from 'node:https'
import os from 'node:os'
import path from 'node:path'
import { openDatabase } from '../appliance/db/database'
import { Fleet } from '../appliance/fleet/console'
import { REPORTS_PATH, HOST_HEADER, SIGNATURE_HEADER, sign } from '../appliance/fleet/protocol'
import { Accounts, REQUIRE_ADMIN_TOTP } from '../appliance/services/accounts'
import { Tenants } from '../appliance/services/tenants'
import { freePort } from './ports'
import { percentile } from './smtp-load'

const ROOT = path.resolve(__dirname, '../..')
const PASSWORD = 'bench password, loopback only'

type Table = (title: string, rows: Record<string, string | number>[]) => void

interface SimHost {
  id: number
  key: crypto.KeyObject
  seq: number
}

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : 0
}

function sample(i: number): Record<string, number> {
  return { cpu: 10 + (i % 50), load1: 0.4, memUsed: 3_100_000_000 + i, memTotal: 8_000_000_000, swapUsed: 0, diskUse: 40 + (i % 30), processes: 210, netRx: 12345.6, netTx: 2345.6, diskRead: 4096, diskWrite: 81920 }
}

async function startConsole(dataDir: string): Promise<{ proc: ChildProcess; url: string; stop(): Promise<void> }> {
  const port = await freePort()
  const proc = spawn(process.execPath, [path.join(ROOT, 'bin/moat'), 'web'], {
    env: { ...process.env, MOAT_DATA_DIR: dataDir, MOAT_WEB_PORT: String(port), MOAT_WEB_TLS: '1', MOAT_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const url = `https://127.0.0.1:${port}`
  const agent = new https.Agent({ rejectUnauthorized: false })
  for (const deadline = Date.now() + 30_000; ; ) {
    const ok = await new Promise<boolean>((resolve) => https.get(`${url}/healthz`, { agent }, (r) => (r.resume(), resolve(r.statusCode === 200))).on('error', () => resolve(false)))
    if (ok) break
    if (Date.now() > deadline) throw new Error('the console did not come up')
    await new Promise((r) => setTimeout(r, 200))
  }
  agent.destroy()
  return { proc, url, stop: () => new Promise((r) => (proc.exitCode !== null ? r() : (proc.once('exit', () => r()), proc.kill('SIGTERM')))) }
}

function post(agent: https.Agent, url: string, h: SimHost, now: number): Promise<number> {
  h.seq++
  const body = JSON.stringify({ reports: [{ seq: h.seq, kind: 'metrics', at: now, data: sample(h.seq) }] })
  const u = new URL(REPORTS_PATH, url)
  return new Promise((resolve, reject) => {
    const req = https.request(
      { hostname: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent, headers: {
        'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
        [HOST_HEADER]: String(h.id), [SIGNATURE_HEADER]: sign(h.key, 'POST', REPORTS_PATH, h.id, body),
      } },
      (res) => {
        res.resume()
        res.on('end', () => (res.statusCode === 200 ? resolve(res.statusCode) : reject(new Error(`console answered ${res.statusCode}`))))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

/** Open loop at `perSecond`, for `seconds`: latencies (ms) of each request. */
async function atPace(agent: https.Agent, url: string, hosts: SimHost[], perSecond: number, seconds: number, clock: { now: number }): Promise<number[]> {
  const lat: number[] = []
  const inflight: Promise<void>[] = []
  const start = Date.now()
  const total = Math.round(perSecond * seconds)
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / perSecond
    const wait = due - Date.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    const h = hosts[i % hosts.length]
    const t0 = performance.now()
    clock.now += 60_000 / hosts.length
    inflight.push(post(agent, url, h, Math.round(clock.now)).then(() => void lat.push(performance.now() - t0)))
  }
  await Promise.all(inflight)
  return lat
}

/** Closed loop, `concurrency` in flight, for `seconds`: how many reports the console took. */
async function flatOut(agent: https.Agent, url: string, hosts: SimHost[], concurrency: number, seconds: number, clock: { now: number }): Promise<{ done: number; ms: number; lat: number[] }> {
  const end = Date.now() + seconds * 1000
  let next = 0
  let done = 0
  const lat: number[] = []
  const t0 = Date.now()
  // Each worker owns its own hosts, so one host's sequence numbers never race.
  const worker = async (w: number) => {
    const mine = hosts.filter((_, i) => i % concurrency === w)
    while (Date.now() < end) {
      const h = mine[next++ % mine.length]
      clock.now += 60_000 / hosts.length
      const s = performance.now()
      await post(agent, url, h, Math.round(clock.now))
      lat.push(performance.now() - s)
      done++
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)))
  return { done, ms: Date.now() - t0, lat }
}

function tableBytes(dbFile: string, tables: string[]): number {
  const db = openDatabase(dbFile)
  try {
    db.pragma('wal_checkpoint(TRUNCATE)')
    return db.prepare(`SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN (${tables.map(() => '?').join(',')})`).pluck().get(...tables) as number
  } finally {
    db.close()
  }
}

async function pageMs(url: string, cookie: string, n = 20): Promise<{ p50: number; p95: number; bytes: number }> {
  const agent = new https.Agent({ rejectUnauthorized: false, keepAlive: true })
  const times: number[] = []
  let bytes = 0
  for (let i = -3; i < n; i++) {
    const t0 = performance.now()
    bytes = await new Promise<number>((resolve, reject) =>
      https.get(url, { agent, headers: { cookie } }, (r) => {
        let b = 0
        r.on('data', (d) => (b += d.length))
        r.on('end', () => (r.statusCode === 200 ? resolve(b) : reject(new Error(`${url}: ${r.statusCode}`))))
      }).on('error', reject),
    )
    if (i >= 0) times.push(performance.now() - t0)
  }
  agent.destroy()
  return { p50: percentile(times, 50), p95: percentile(times, 95), bytes }
}

export async function benchFleet(table: Table, opts: { seconds: number; concurrency: number; agentSeconds: number; sizes: number[] }): Promise<void> {
  const rows: Record<string, string | number>[] = []
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moat-bench-fleet-'))
  try {
    for (const size of opts.sizes) {
      const dir = path.join(tmp, String(size))
      fs.mkdirSync(dir)
      const dbFile = path.join(dir, 'moat.db')
      const db = openDatabase(dbFile)
      const tenants = new Tenants(db)
      const fleet = new Fleet(db)
      const orgs = Array.from({ length: 40 }, (_, i) => tenants.addOrg(`customer-${i}`))
      const hosts: SimHost[] = []
      const enrollStart = Date.now()
      const tokens = orgs.map((o) => fleet.createToken(o.id, { by: 'bench', expiresDays: 1 }).token)
      for (let i = 0; i < size; i++) {
        const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519')
        const r = fleet.enroll({ token: tokens[i % tokens.length], publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'), name: `host-${i}`, kind: i % 5 === 0 ? 'appliance' : i % 3 ? 'linux' : 'windows' })
        hosts.push({ id: r.hostId, key: privateKey, seq: 0 })
      }
      const enrollS = (Date.now() - enrollStart) / 1000
      await new Accounts(db).createAdmin('msp@bench.test', PASSWORD)
      db.prepare(`INSERT INTO settings (key, value) VALUES (?, 'false')`).run(REQUIRE_ADMIN_TOTP)
      const login = await new Accounts(db).login('msp@bench.test', PASSWORD, '127.0.0.1')
      if (!login.ok) throw new Error('bench login')
      db.close()

      const console_ = await startConsole(dir)
      const agent = new https.Agent({ rejectUnauthorized: false, keepAlive: true, maxSockets: Math.max(64, opts.concurrency) })
      const clock = { now: Date.now() - 86_400_000 }
      try {
        // Every host reports once first (a console restart's catch-up), untimed: warm-up.
        for (let i = 0; i < hosts.length; i += opts.concurrency) await Promise.all(hosts.slice(i, i + opts.concurrency).map((h) => post(agent, console_.url, h, Math.round((clock.now += 1)))))
        const pace = size / 60
        const before = tableBytes(dbFile, ['fleet_metrics', 'fleet_metrics_hourly'])
        const cpu0 = cpuSeconds(console_.proc.pid!)
        const paced = await atPace(agent, console_.url, hosts, pace, opts.seconds, clock)
        const cpuPaced = cpuSeconds(console_.proc.pid!) - cpu0
        const cpu1 = cpuSeconds(console_.proc.pid!)
        const flat = await flatOut(agent, console_.url, hosts, opts.concurrency, opts.seconds, clock)
        const cpuFlat = cpuSeconds(console_.proc.pid!) - cpu1
        const rss = rssMiB(console_.proc.pid!)
        const after = tableBytes(dbFile, ['fleet_metrics', 'fleet_metrics_hourly'])
        const samples = paced.length + flat.done
        const perSample = (after - before) / samples
        const cookie = `moat_session=${login.session.token}`
        const list = await pageMs(`${console_.url}/fleet`, cookie)
        const one = await pageMs(`${console_.url}/fleet/hosts/${hosts[7].id}`, cookie)
        const rate = (flat.done * 1000) / flat.ms
        rows.push({
          hosts: size,
          'enrolled in': `${enrollS.toFixed(1)} s`,
          'real pace /s': Math.round(pace * 10) / 10,
          'p99 ms at pace': percentile(paced, 99),
          'console CPU ms/report at pace': (cpuPaced * 1000) / paced.length,
          'flat out reports/s': Math.round(rate),
          'headroom (× pace)': rate / pace,
          'p99 ms flat out': percentile(flat.lat, 99),
          'console CPU ms/report flat out': (cpuFlat * 1000) / flat.done,
          'console RSS MiB': Math.round(rss),
          'DB per host-day KiB': (perSample * 1440) / 1024,
          'Fleet page p50 ms': list.p50,
          'Fleet page p95 ms': list.p95,
          'host page p50 ms': one.p50,
        })
      } finally {
        agent.destroy()
        await console_.stop()
      }
    }
    table(
      `Fleet console: simulated agents (real Ed25519 signatures, HTTPS keep-alive) against one \`moat web\` on this machine (${os.cpus().length} cores, load generator on the same cores); targets: ≥ 500 reports/s (3× 10,000 hosts), Fleet page < 200 ms at 10,000 hosts, a host-month < 5 MB`,
      rows,
    )
    await benchAgent(table, tmp, opts.agentSeconds)
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

/** A real agent process, default schedules, enrolled into a real console: its own cost on the host. */
async function benchAgent(table: Table, tmp: string, seconds: number): Promise<void> {
  const dir = path.join(tmp, 'agent-console')
  fs.mkdirSync(dir)
  const db = openDatabase(path.join(dir, 'moat.db'))
  const org = new Tenants(db).addOrg('acme')
  const token = new Fleet(db).createToken(org.id, { by: 'bench' }).token
  db.close()
  const console_ = await startConsole(dir)
  const env = { ...process.env, MOAT_AGENT_DIR: path.join(tmp, 'agent') }
  const bin = path.join(ROOT, 'bin/moat-agent')
  try {
    await new Promise<void>((resolve, reject) =>
      spawn(process.execPath, [bin, 'enroll', console_.url, '--token', token, '--name', 'bench'], { env, stdio: 'ignore' }).on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`enroll exited ${c}`)))),
    )
    const proc = spawn(process.execPath, [bin, 'run'], { env, stdio: 'ignore' })
    // The first minute includes start-up and the inventory taken at start; a host runs for months.
    await new Promise((r) => setTimeout(r, 20_000))
    const cpu0 = cpuSeconds(proc.pid!)
    const t0 = Date.now()
    let maxRss = 0
    while (Date.now() - t0 < seconds * 1000) {
      maxRss = Math.max(maxRss, rssMiB(proc.pid!))
      await new Promise((r) => setTimeout(r, 1000))
    }
    const used = cpuSeconds(proc.pid!) - cpu0
    const startup = cpu0
    proc.kill('SIGTERM')
    table(`The agent on a host: a real moat-agent process, default schedules (metrics and logs every minute, inventory daily and at start), measured ${seconds} s after its first 20 s; targets: < 1 % of a core, < 80 MB RSS`, [
      { 'CPU at start-up (s)': startup, 'CPU average (% of a core)': (100 * used) / seconds, 'max RSS MiB': Math.round(maxRss * 10) / 10 },
    ])
  } finally {
    await console_.stop()
  }
}
