/*
 * Moat beside SpamAssassin and Rspamd on identical data, in one run: every engine learns
 * (Bayes for the peers, Moat's classifier) from the same training part of the corpus (the
 * folds other than 0, by sha256) and scores the same held-out sample of fold 0, with the
 * verdict headers of upstream filters removed and network tests off for all (the peers'
 * DNS points at a closed loopback port). Speed is messages per second on one core, one
 * message at a time: Moat's whole content engine (parse, filters, classifier) in-process,
 * spamd through spamc, Rspamd over its HTTP protocol.
 *
 * The peers are Debian's packages (spamassassin + spamd, rspamd, redis-server for Rspamd's
 * Bayes); one that is not installed is left out of the table, and the table says so.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { bucketSymbols } from '../appliance/engine/filters/classifier'
import { calibratedProbability } from '../appliance/engine/logistic'
import { trainCalibrated } from '../appliance/engine/recipe/calibration'
import { DEFAULT_THRESHOLDS, score, type Verdict, verdictFor } from '../appliance/engine/symbols'
import { corpusDir, type ManifestRow, readManifest } from '../appliance/engine/training'
import { corpusRaw, countVerdict, emptyCounts, foldOf, loadSamples, type VerdictCounts } from './accuracy'
import { freePort } from './ports'


interface EngineResult {
  engine: string
  note: string
  counts: VerdictCounts
  perSecond: number | null
  learnSeconds: number
}


async function waitPort(port: number, proc: ChildProcess, what: string, timeoutMs = 180_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${what} exited ${proc.exitCode}`)
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1')
      s.once('connect', () => (s.destroy(), resolve(true)))
      s.once('error', () => resolve(false))
    })
    if (up) return
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port}`)
    await new Promise((r) => setTimeout(r, 300))
  }
}

/**
 * A peer's verdicts on the test sample (two at a time, as its two workers take them), then
 * its speed: `timed` messages one after another, so one core's rate.
 */
async function measure<T>(test: Part[], check: (file: string) => Promise<T>, verdict: (r: T) => Verdict, timed: number): Promise<{ counts: VerdictCounts; perSecond: number }> {
  const counts = emptyCounts()
  await pool(test, 2, async (p) => countVerdict(counts, p.spam, verdict(await check(p.file))))
  const t1 = Date.now()
  for (const p of test.slice(0, timed)) await check(p.file)
  return { counts, perSecond: Math.min(timed, test.length) / ((Date.now() - t1) / 1000) }
}

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0

/** Runs fn over items, `width` at a time. */
async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++])
  }))
}

interface Part {
  row: ManifestRow
  file: string
  spam: boolean
}

/** The training part and a held-out sample of fold 0, written out without verdict headers. */
function split(dir: string, folds: number, testSize: number): { train: Part[]; test: Part[] } {
  const rows = readManifest(corpusDir())
  const write = (r: ManifestRow, sub: string): Part => {
    const file = path.join(dir, sub, r.label, r.sha256)
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, corpusRaw(r))
    return { row: r, file, spam: r.label === 'spam' }
  }
  const held = rows.filter((r) => foldOf(r, folds) === 0).sort((a, b) => a.sha256.localeCompare(b.sha256))
  const step = Math.max(1, held.length / testSize)
  const test: Part[] = []
  for (let i = 0; i < held.length && test.length < testSize; i += step) test.push(write(held[Math.floor(i)], 'test'))
  const train = rows.filter((r) => foldOf(r, folds) !== 0).map((r) => write(r, 'train'))
  return { train, test }
}

async function moat(parts: { train: Part[]; test: Part[] }, folds: number): Promise<EngineResult> {
  const t0 = Date.now()
  const wanted = new Set([...parts.train, ...parts.test].map((p) => p.row.sha256))
  const rows = readManifest(corpusDir())
  const samples = await loadSamples(folds, (_s, i) => wanted.has(rows[i].sha256))
  const chosen = rows.filter((r) => wanted.has(r.sha256))
  const bySha = new Map(samples.map((s, i) => [chosen[i].sha256, s]))
  // As `moat train` and the default recipe make it: calibrated on its own held-out folds, so
  // the shipped weights table fits it.
  const trainSamples = parts.train.map((p) => bySha.get(p.row.sha256)!)
  const { model } = trainCalibrated(trainSamples.map((s) => ({ f: s.features, spam: s.spam, fold: parseInt(s.sha256.slice(8, 16), 16) % folds })), folds)
  const learnSeconds = (Date.now() - t0) / 1000
  const counts = emptyCounts()
  for (const p of parts.test) {
    const s = bySha.get(p.row.sha256)!
    countVerdict(counts, p.spam, verdictFor(score([...s.fixed, ...bucketSymbols(calibratedProbability(model, s.features))]).score, DEFAULT_THRESHOLDS))
  }
  return { engine: 'Moat', note: 'rules + logistic classifier', counts, perSecond: moatScanRate(parts.test.map((p) => p.file)), learnSeconds }
}

/**
 * Speed as the issue means it: `moat scan` itself, one process (one core), over the held-out
 * files; its start (Node, the model) is measured on one file and taken off. Measured here,
 * in a process that holds the whole parsed corpus, the garbage collector would set the pace.
 */
function moatScanRate(files: string[]): number {
  const cli = path.resolve(__dirname, '../appliance/cli/main.js')
  const seconds = (list: string[]) => {
    const t = process.hrtime.bigint()
    const r = spawnSync(process.execPath, [cli, 'scan', '--default-model', ...list], { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 1 << 26 })
    if (r.status !== 0) throw new Error(`moat scan exited with ${r.status}`)
    return Number(process.hrtime.bigint() - t) / 1e9
  }
  const start = Math.min(seconds(files.slice(0, 1)), seconds(files.slice(0, 1)))
  return (files.length - 1) / Math.max(1e-3, seconds(files) - start)
}

async function spamassassin(dir: string, parts: { train: Part[]; test: Part[] }, closedDns: number): Promise<EngineResult | string> {
  if (!has('spamd') || !has('sa-learn') || !has('spamc')) return 'SpamAssassin: not installed (apt-get install spamassassin spamd spamc)'
  const site = path.join(dir, 'sa-site')
  const bayes = path.join(dir, 'sa-bayes')
  fs.mkdirSync(site, { recursive: true })
  fs.mkdirSync(bayes, { recursive: true, mode: 0o777 })
  fs.chmodSync(bayes, 0o777)
  // Debian's plugin loads (*.pre) and rules (/usr/share/spamassassin), no sa-update, no
  // network tests; Bayes on, learning only what we teach it.
  for (const f of fs.readdirSync('/etc/spamassassin').filter((f) => f.endsWith('.pre'))) fs.copyFileSync(path.join('/etc/spamassassin', f), path.join(site, f))
  fs.writeFileSync(path.join(site, 'local.cf'), [
    'use_bayes 1', 'bayes_auto_learn 0', `bayes_path ${bayes}/bayes`, 'bayes_file_mode 0777', 'skip_rbl_checks 1',
    `dns_server 127.0.0.1:${closedDns}`, 'dns_available no', 'use_razor2 0', 'use_pyzor 0', '',
  ].join('\n'))
  const t0 = Date.now()
  for (const label of ['spam', 'ham'] as const) {
    const learn = spawnSync('sa-learn', ['--siteconfigpath', site, '--dbpath', bayes, `--${label}`, '--no-sync', path.join(dir, 'train', label)], { encoding: 'utf8', maxBuffer: 1 << 26 })
    if (learn.status !== 0) throw new Error(`sa-learn --${label}: ${learn.stderr}`)
  }
  spawnSync('sa-learn', ['--siteconfigpath', site, '--dbpath', bayes, '--sync'])
  const learnSeconds = (Date.now() - t0) / 1000
  const port = await freePort()
  const spamd = spawn('spamd', ['-L', '-x', '--siteconfigpath', site, '-i', '127.0.0.1', '-p', String(port), '-A', '127.0.0.1', '--max-children', '2', '--min-children', '2', '-u', 'nobody', '-s', 'stderr'], { stdio: ['ignore', 'ignore', 'ignore'] })
  try {
    await waitPort(port, spamd, 'spamd')
    const check = (file: string) =>
      new Promise<number>((resolve, reject) => {
        const c = spawn('spamc', ['-d', '127.0.0.1', '-p', String(port), '-c', '-s', '67108864'], { stdio: ['pipe', 'pipe', 'ignore'] })
        let out = ''
        c.stdout.on('data', (d) => (out += d))
        c.on('close', () => {
          const m = /^(-?[\d.]+)\//.exec(out)
          if (m) resolve(Number(m[1]))
          else reject(new Error(`spamc: ${out}`))
        })
        fs.createReadStream(file).pipe(c.stdin)
      })
    // SpamAssassin has one level (required_score 5); 10 stands in for "surespam" here.
    const m = await measure(parts.test, check, (s) => (s >= 10 ? 'surespam' : s >= 5 ? 'spam' : 'clean'), 60)
    return { engine: 'SpamAssassin 4.0 (spamd)', note: 'Debian rules, Bayes, network tests off; ≥ 10 as "surespam"', ...m, learnSeconds }
  } finally {
    spamd.kill('SIGTERM')
  }
}

async function rspamd(dir: string, parts: { train: Part[]; test: Part[] }, closedDns: number): Promise<EngineResult | string> {
  if (!has('rspamd') || !has('redis-server')) return 'Rspamd: not installed (apt-get install rspamd redis-server)'
  const [redisPort, normal, controller, proxy] = [await freePort(), await freePort(), await freePort(), await freePort()]
  const conf = path.join(dir, 'rspamd')
  const local = path.join(conf, 'local.d')
  for (const d of ['local.d', 'db', 'run', 'log']) fs.mkdirSync(path.join(conf, d), { recursive: true })
  const files: Record<string, string> = {
    'worker-normal.inc': `bind_socket = "127.0.0.1:${normal}";\ncount = 2;\n`,
    'worker-controller.inc': `bind_socket = "127.0.0.1:${controller}";\nsecure_ip = "127.0.0.1";\n`,
    'worker-proxy.inc': `bind_socket = "127.0.0.1:${proxy}";\n`,
    'worker-fuzzy.inc': 'count = -1;\n',
    'redis.conf': `servers = "127.0.0.1:${redisPort}";\n`,
    'classifier-bayes.conf': 'backend = "redis";\nautolearn = false;\n',
    'options.inc': `dns {\n  nameserver = ["127.0.0.1:${closedDns}"];\n  timeout = 0.2s;\n  retransmits = 1;\n}\n`,
    'logging.inc': `type = "file";\nfilename = "${conf}/log/rspamd.log";\nlevel = "error";\n`,
    // Network tests off, as for the others: no blocklist, fuzzy-hash or ASN lookups.
    'rbl.conf': 'enabled = false;\n',
    'fuzzy_check.conf': 'enabled = false;\n',
    'asn.conf': 'enabled = false;\n',
    // Greylisting (on whenever Redis is) answers "soft reject" to a first delivery: a delay, not a verdict.
    'greylist.conf': 'enabled = false;\n',
    'ratelimit.conf': 'enabled = false;\n',
  }
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(local, name), text)
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', conf], { stdio: 'ignore' })
  const vars = ['LOCAL_CONFDIR', conf, 'DBDIR', path.join(conf, 'db'), 'RUNDIR', path.join(conf, 'run'), 'LOGDIR', path.join(conf, 'log')]
  const args = ['-f', '-i', '-u', 'root', '-g', 'root', '-c', '/etc/rspamd/rspamd.conf', '-p', path.join(conf, 'run/rspamd.pid')]
  for (let i = 0; i < vars.length; i += 2) args.push('--var', `${vars[i]}=${vars[i + 1]}`)
  const daemon = spawn('rspamd', args, { stdio: 'ignore' })
  try {
    await waitPort(redisPort, redis, 'redis-server')
    await waitPort(normal, daemon, 'rspamd')
    await waitPort(controller, daemon, 'rspamd controller')
    const t0 = Date.now()
    await pool(parts.train, 2, async (p) => {
      const res = await fetch(`http://127.0.0.1:${controller}/${p.spam ? 'learnspam' : 'learnham'}`, { method: 'POST', body: fs.readFileSync(p.file) })
      // 204: nothing to learn (no text), 208: already learned (a duplicate body).
      if (res.status !== 200 && res.status !== 204 && res.status !== 208) {
        const text = await res.text()
        if (!/already learned|too small|no tokens/i.test(text)) throw new Error(`rspamd learn: ${res.status} ${text}`)
      } else await res.arrayBuffer()
    })
    const learnSeconds = (Date.now() - t0) / 1000
    const check = async (file: string) => {
      const res = await fetch(`http://127.0.0.1:${normal}/checkv2`, { method: 'POST', body: fs.readFileSync(file) })
      return (await res.json()) as { action: string; score: number }
    }
    const m = await measure(parts.test, check, (r) => (r.score >= 15 ? 'surespam' : r.score >= 6 ? 'spam' : 'clean'), 100)
    return { engine: 'Rspamd 3.4', note: 'stock config, Bayes (Redis), network tests off; its "add header" score (6) as spam, "reject" (15) as "surespam"', ...m, learnSeconds }
  } finally {
    daemon.kill('SIGTERM')
    redis.kill('SIGTERM')
  }
}

const pct = (n: number, d: number) => (d ? `${((100 * n) / d).toFixed(2)} %` : '')

export async function benchPeers(folds: number, testSize: number, table: (title: string, rows: Record<string, string | number>[]) => void): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moat-peers-'))
  fs.chmodSync(dir, 0o755)
  try {
    const parts = split(dir, folds, testSize)
    const closedDns = await freePort()
    const results: (EngineResult | string)[] = [await moat(parts, folds)]
    results.push(await spamassassin(dir, parts, closedDns))
    results.push(await rspamd(dir, parts, closedDns))
    const sa = results.find((r): r is EngineResult => typeof r !== 'string' && r.engine.startsWith('SpamAssassin'))
    const rows = results.filter((r): r is EngineResult => typeof r !== 'string').map((r) => ({
      engine: r.engine,
      ham: r.counts.ham,
      'ham flagged (FP)': pct(r.counts.hamFlagged, r.counts.ham),
      'ham at surespam': pct(r.counts.hamSurespam, r.counts.ham),
      spam: r.counts.spam,
      'spam missed (FN)': pct(r.counts.spamMissed, r.counts.spam),
      'spam not surespam': pct(r.counts.spamNotSure, r.counts.spam),
      'msg/s per core': r.perSecond ? Number(r.perSecond.toFixed(1)) : '',
      '× spamd speed': r.perSecond && sa?.perSecond ? Number((r.perSecond / sa.perSecond).toFixed(1)) : '',
      'learn s': Number(r.learnSeconds.toFixed(0)),
      how: r.note,
    }))
    table(`Moat beside SpamAssassin and Rspamd: all learn from the same ${parts.train.length} messages (folds ≠ 0 of ${folds}) and score the same ${parts.test.length} held-out ones`, rows)
    for (const r of results) if (typeof r === 'string') console.log(`left out: ${r}`)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
