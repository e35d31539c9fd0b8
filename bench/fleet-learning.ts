/*
 * `npm run bench -- fleet-learning`: does sharing what users report across an MSP's
 * appliances catch more spam, and flag no more ham, than each appliance learning alone?
 *
 * A simulation with the real parts that decide: the shipped model and weights score every
 * message (moat scan's engine), each appliance has its own FingerprintIndex, and words move
 * between them through the console's real code (fleet/learning.ts on a SQLite file: a host's
 * word relayed with trust capped at HOST_CAP, or vouched for once the host is proven), after
 * the delays the schedules give.
 *
 * The stream, over STREAM_DAYS in time order, to SITES appliances:
 *   - spam campaigns: phishing_pot messages (never trained on), each sent as near-duplicate
 *     copies (bench/campaign-variants.ts) to several sites over a few hours;
 *   - the corpus' ham, each message to one site; and newsletters (foff-milter's ham) sent as
 *     copies to several sites, some of which users wrongly report as spam.
 * Users report REPORT_SHARE of the spam that reaches their inbox after a delay, and
 * MISREPORT_SHARE of delivered newsletters; surespam is auto-learned behind the job's
 * safeguards. Rows: isolated appliances, fleet sharing. Targets (issue 23): the fleet misses
 * ≤ 1/3 of what isolated appliances miss, adds no ham flagged, and a reported campaign is
 * blocked at every site within 2 minutes of its first report.
 */
import { scanMessage } from '../appliance/engine/engine'
import { matchSymbols } from '../appliance/engine/filters/fuzzy'
import { parseMessage } from '../appliance/engine/message'
import { loadDefaultModel } from '../appliance/engine/models'
import { corpusRaw } from '../appliance/engine/recipe/corpus'
import { DEFAULT_THRESHOLDS, weightOf } from '../appliance/engine/symbols'
import { corpusDir, readManifest } from '../appliance/engine/training'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { openDatabase } from '../appliance/db/database'
import { Fleet } from '../appliance/fleet/console'
import { MAX_WORDS_PER_BUNDLE } from '../appliance/fleet/learning'
import { Tenants } from '../appliance/services/tenants'
import { FingerprintIndex, FLEET_REPORTER, TRUST } from '../appliance/learning/fingerprint-index'
import { fingerprintKeys } from '../appliance/learning/fingerprint-store'
import { type Fingerprints, fingerprintsOf, signatureFromHex } from '../appliance/learning/fingerprints'
import { AUTO_RULE_POINTS, AUTO_SPAM_SCORE } from '../appliance/learning/learn-fingerprints'
import { campaignCopy, rng } from './campaign-variants'

type Table = (title: string, rows: Record<string, string | number>[]) => void

export interface FleetLearningOptions {
  sites: number
  campaigns: number
  days: number
  reportShare: number
  misreportShare: number
  /** of ham wrongly quarantined, the share whose user says "not spam" (an hour later, from the digest) */
  notSpamShare: number
  /** mean minutes over which a campaign's copies arrive, one table row pair each */
  tempos: number[]
  /** the fingerprints job's period: a report becomes a local word this long after */
  jobSeconds: number
  /** agent share + flush + console + the other agent's pull, at the default schedules */
  relaySeconds: number
}

const MIN = 60_000
const DAY = 86_400_000

interface Copy {
  id: number
  site: number
  /** when it arrives: the campaign's start plus `offset` campaign tempos (set per tempo) */
  at: number
  start: number
  offset: number
  spam: boolean
  /** campaign number (spam) or newsletter number (ham copies); -1 for one-off ham */
  campaign: number
  base: number
  rules: number
  fps: Fingerprints
}

interface Prepared {
  copies: Copy[]
  /** per campaign: its sites and the lowest base score of its copies at each (the probe) */
  probes: Map<number, Map<number, { base: number; fps: Fingerprints }>>
}

async function prepare(o: FleetLearningOptions): Promise<Prepared> {
  const model = loadDefaultModel().model
  const r = rng(20261207)
  const rows = readManifest(corpusDir())
  const seeds = rows.filter((x) => x.source === 'phishing_pot').sort((a, b) => a.sha256.localeCompare(b.sha256)).slice(0, o.campaigns)
  const newsletters = rows.filter((x) => x.label === 'ham' && x.source === 'foff-milter')
  const ham = rows.filter((x) => x.label === 'ham' && x.source !== 'foff-milter')
  const copies: Copy[] = []
  const probes: Prepared['probes'] = new Map()
  let id = 0
  const score = async (raw: Buffer) => {
    const s = await scanMessage(raw, { model })
    const rules = s.symbols.filter((x) => !x.name.startsWith('CLASSIFIER_')).reduce((sum, x) => sum + Math.max(0, x.weight), 0)
    return { base: s.score, rules, fps: fingerprintsOf(s.parsed) }
  }
  const pickSites = (n: number) => {
    const all = Array.from({ length: o.sites }, (_, i) => i)
    for (let i = all.length - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1))
      ;[all[i], all[j]] = [all[j], all[i]]
    }
    return all.slice(0, n)
  }
  const campaign = async (raw: Buffer, c: number, spam: boolean, sites: number[], perSite: () => number) => {
    const original = await parseMessage(raw)
    const start = r() * (o.days * DAY - 12 * 3_600_000)
    const probe = new Map<number, { base: number; fps: Fingerprints }>()
    for (const site of sites) {
      for (let k = perSite(); k > 0; k--) {
        // Copies go out over a while, most of them early (exponential, mean one tempo).
        const offset = -Math.log(1 - r())
        const s = await score(campaignCopy(original, ++id, `user${k}@site${site}.example`))
        copies.push({ id, site, at: 0, start, offset, spam, campaign: c, ...s })
        const p = probe.get(site)
        if (!p || s.base < p.base) probe.set(site, { base: s.base, fps: s.fps })
      }
    }
    probes.set(c, probe)
  }
  for (const [c, row] of seeds.entries()) await campaign(corpusRaw(row), c, true, pickSites(2 + Math.floor(r() * 7)), () => 1 + Math.floor(r() * 5))
  for (const [i, row] of newsletters.entries()) await campaign(corpusRaw(row), seeds.length + i, false, pickSites(3 + Math.floor(r() * 5)), () => 1 + Math.floor(r() * 3))
  for (const row of ham) {
    const s = await score(corpusRaw(row))
    copies.push({ id: ++id, site: Math.floor(r() * o.sites), at: 0, start: r() * o.days * DAY, offset: 0, spam: false, campaign: -1, ...s })
  }
  return { copies, probes }
}

interface Outcome {
  spam: number
  spamMissed: number
  missedByDay: number[]
  spamByDay: number[]
  ham: number
  hamFlagged: number
  reports: number
  misreports: number
  /** per reported campaign: ms from its first report until every site it reached blocks it; null: never all */
  spread: (number | null)[]
  /** spam missed before its campaign's first report anywhere (no learning could have helped), and of campaigns never reported */
  missedBeforeReport: number
  missedNeverReported: number
}

type Mode = 'isolated' | 'fleet' | 'oracle'

interface Pending {
  kind: 'local' | 'share' | 'pull'
  at: number
  site: number
  fps: Fingerprints
  label: 'spam' | 'ham'
  reporter: string
  trust: number
  campaign: number
}

/** How often an appliance's agent asks the console for the fleet's words. */
const PULL_TICK = 30_000

/** A console of its own for one simulated run: one MSP, one organisation, an appliance a site, enrolled as agents enrol. */
function fleetConsole(sites: number): { learning: Fleet['learning']; hosts: number[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moat-fleet-learning-'))
  const db = openDatabase(path.join(dir, 'console.db'))
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }))
  const org = new Tenants(db).addOrg('customers')
  const fleet = new Fleet(db)
  const hosts = Array.from({ length: sites }, (_, i) => {
    const publicKey = crypto.generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).toString('base64')
    return fleet.enroll({ token: fleet.createToken(org.id, { by: 'bench' }).token, publicKey, name: `site${i}`, kind: 'appliance' }).hostId
  })
  return { learning: fleet.learning, hosts }
}

function simulate(prepared: Prepared, o: FleetLearningOptions, mode: Mode, tempoMinutes: number): Outcome {
  const copies = prepared.copies.map((c) => ({ ...c, at: Math.min(o.days * DAY - 1, c.start + c.offset * tempoMinutes * MIN) })).sort((a, b) => a.at - b.at)
  const p = { ...prepared, copies }
  const fleet = mode === 'fleet'
  const r = rng(7)
  const sites = Array.from({ length: o.sites }, () => new FingerprintIndex())
  const out: Outcome = { spam: 0, spamMissed: 0, missedByDay: Array(o.days).fill(0), spamByDay: Array(o.days).fill(0), ham: 0, hamFlagged: 0, reports: 0, misreports: 0, spread: [], missedBeforeReport: 0, missedNeverReported: 0 }
  let entry = 0
  // Words waiting for their time: learned locally, shared with the console, pulled from it.
  const pending: Pending[] = []
  const firstReport = new Map<number, number>()
  const missed: Copy[] = []
  const blocked = new Map<number, Set<number>>()
  const doneSpread = new Set<number>()
  const points = (site: number, fps: Fingerprints) => matchSymbols(sites[site].match(fps)).reduce((s, x) => s + weightOf(x.name), 0)
  const teach = (site: number, fps: Fingerprints, label: 'spam' | 'ham', reporter: string, trust: number) => {
    for (const k of fingerprintKeys(fps)) sites[site].add({ id: ++entry, kind: k.kind, key: k.key, sig: k.kind === 'text' ? signatureFromHex(k.key)! : undefined, label, reporter, trust })
  }
  // Fleet sharing goes through the console's real code (fleet/learning.ts, on a SQLite file):
  // it caps, vouches for proven appliances (fleet/reputation.ts) and relays; each appliance
  // pulls what is new on its agent's schedule and keeps one entry per host and fingerprint.
  const console_ = fleet ? fleetConsole(o.sites) : null
  const pulled = Array(o.sites).fill(0)
  const relayed = new Map<string, number>()
  const campaignOfKey = new Map<string, number>()
  const pulls = new Set<string>()
  const word = (at: number, site: number, fps: Fingerprints, label: 'spam' | 'ham', reporter: string, trust: number, campaign: number) => {
    pending.push({ kind: 'local', at: at + o.jobSeconds * 1000, site, fps, label, reporter, trust, campaign })
    if (fleet) pending.push({ kind: 'share', at: at + o.jobSeconds * 1000, site, fps, label, reporter, trust, campaign })
    pending.sort((a, b) => a.at - b.at)
  }
  const checkSpread = (campaign: number, at: number) => {
    // Has every site this campaign reached started blocking it?
    const probe = p.probes.get(campaign)
    if (!probe || !firstReport.has(campaign) || doneSpread.has(campaign)) return
    const set = blocked.get(campaign) ?? new Set()
    blocked.set(campaign, set)
    for (const [site, pr] of probe) if (!set.has(site) && pr.base + points(site, pr.fps) >= DEFAULT_THRESHOLDS.spam) set.add(site)
    if (set.size === probe.size) {
      doneSpread.add(campaign)
      out.spread.push(at - firstReport.get(campaign)!)
    }
  }
  const share = (w: Pending) => {
    const keys = fingerprintKeys(w.fps)
    for (const k of keys) campaignOfKey.set(`${k.kind}:${k.key}`, w.campaign)
    console_!.learning.ingest(console_!.hosts[w.site], keys.map((k) => ({ kind: k.kind, key: k.key, label: w.label, reporter: w.reporter, trust: w.trust })), Math.round(w.at))
    // Every other appliance's agent pulls at its next tick after the relay time.
    const tick = Math.ceil((w.at + o.relaySeconds * 1000) / PULL_TICK) * PULL_TICK
    for (let s = 0; s < o.sites; s++) {
      if (s === w.site || pulls.has(`${s}|${tick}`)) continue
      pulls.add(`${s}|${tick}`)
      pending.push({ kind: 'pull', at: tick, site: s, fps: w.fps, label: w.label, reporter: '', trust: 0, campaign: -1 })
    }
    pending.sort((a, b) => a.at - b.at)
  }
  const pull = (site: number, at: number) => {
    const touched = new Set<number>()
    for (;;) {
      const bundle = console_!.learning.since(console_!.hosts[site], pulled[site])
      for (const w of bundle.words) {
        const reporter = `${FLEET_REPORTER}${w.host}`
        const id = `${site}|${reporter}|${w.kind}|${w.key}|${w.label}`
        const old = relayed.get(id)
        if (old !== undefined) sites[site].remove(old)
        relayed.delete(id)
        if (w.trust > 0) {
          sites[site].add({ id: ++entry, kind: w.kind, key: w.key, sig: w.kind === 'text' ? signatureFromHex(w.key)! : undefined, label: w.label, reporter, trust: w.trust })
          relayed.set(id, entry)
        }
        const c = campaignOfKey.get(`${w.kind}:${w.key}`)
        if (c !== undefined) touched.add(c)
      }
      pulled[site] = bundle.version
      if (bundle.words.length < MAX_WORDS_PER_BUNDLE) break
    }
    for (const c of touched) checkSpread(c, at)
  }
  const apply = (until: number) => {
    while (pending.length && pending[0].at <= until) {
      const w = pending.shift()!
      if (w.kind === 'share') share(w)
      else if (w.kind === 'pull') pull(w.site, w.at)
      else {
        teach(w.site, w.fps, w.label, w.reporter, w.trust)
        checkSpread(w.campaign, w.at)
      }
    }
  }
  for (const c of p.copies) {
    apply(c.at)
    const score = c.base + points(c.site, c.fps)
    // The oracle: from a campaign's first report anywhere, every later copy everywhere is caught.
    const oracle = mode === 'oracle' && c.spam && firstReport.has(c.campaign) && c.at >= firstReport.get(c.campaign)!
    const flagged = score >= DEFAULT_THRESHOLDS.spam || oracle
    const day = Math.min(o.days - 1, Math.floor(c.at / DAY))
    if (c.spam) {
      out.spam++
      out.spamByDay[day]++
      if (!flagged) {
        missed.push(c)
        out.spamMissed++
        out.missedByDay[day]++
        if (r() < o.reportShare) {
          // Users notice it a while later: a few minutes to an hour.
          const at = c.at + MIN - Math.log(1 - r()) * 10 * MIN
          out.reports++
          if (!firstReport.has(c.campaign) || at < firstReport.get(c.campaign)!) firstReport.set(c.campaign, at)
          word(at, c.site, c.fps, 'spam', `user:${c.id}`, TRUST.user, c.campaign)
        }
      } else if (score >= DEFAULT_THRESHOLDS.surespam && score >= AUTO_SPAM_SCORE && c.rules >= AUTO_RULE_POINTS) {
        word(c.at, c.site, c.fps, 'spam', 'auto', TRUST.auto, c.campaign)
      }
    } else {
      out.ham++
      if (flagged) {
        out.hamFlagged++
        // Some users find it in the quarantine (the hourly digest) and say "not spam".
        if (r() < o.notSpamShare) word(c.at + 60 * MIN, c.site, c.fps, 'ham', `user:${c.id}`, TRUST.user, c.campaign)
      } else if (c.campaign >= 0 && r() < o.misreportShare) {
        out.misreports++
        word(c.at + 5 * MIN, c.site, c.fps, 'spam', `user:${c.id}`, TRUST.user, c.campaign)
      }
    }
  }
  apply(Infinity)
  for (const m of missed) {
    const first = firstReport.get(m.campaign)
    if (first === undefined) out.missedNeverReported++
    else if (m.at < first + o.jobSeconds * 1000) out.missedBeforeReport++
  }
  for (const c of firstReport.keys()) if (!doneSpread.has(c) && p.probes.has(c) && c < p.probes.size) out.spread.push(null)
  return out
}

const pct = (n: number, d: number) => `${((100 * n) / Math.max(1, d)).toFixed(2)} %`
const minutes = (ms: number | undefined) => (ms === undefined ? '—' : `${(ms / MIN).toFixed(1)} min`)

export async function benchFleetLearning(table: Table, o: FleetLearningOptions): Promise<void> {
  const t0 = Date.now()
  const p = await prepare(o)
  console.log(`${p.copies.length} messages to ${o.sites} appliances over ${o.days} days (scored in ${((Date.now() - t0) / 1000).toFixed(0)} s)`)
  const rows: { name: string; r: Outcome; base: Outcome }[] = []
  for (const tempo of o.tempos) {
    const isolated = simulate(p, o, 'isolated', tempo)
    const label = tempo >= 60 ? `${tempo / 60} h` : `${tempo} min`
    rows.push({ name: `isolated appliances (campaigns over ~${label})`, r: isolated, base: isolated })
    rows.push({ name: `fleet sharing (~${label})`, r: simulate(p, o, 'fleet', tempo), base: isolated })
    rows.push({ name: `anchor: oracle, first report blocks all (~${label})`, r: simulate(p, o, 'oracle', tempo), base: isolated })
  }
  table(
    `Learning across the fleet: ${o.sites} appliances, ${o.campaigns} spam campaigns, users report ${Math.round(o.reportShare * 100)} % of the spam they get`,
    rows.map(({ name, r, base }) => {
      const spread = r.spread.filter((x): x is number => x !== null).sort((a, b) => a - b)
      return {
        '': name,
        'spam missed': pct(r.spamMissed, r.spam),
        '× isolated': (r.spamMissed / Math.max(1, base.spamMissed)).toFixed(2),
        ...Object.fromEntries(r.missedByDay.map((m, d) => [`day ${d + 1}`, pct(m, r.spamByDay[d])])),
        'ham flagged': name.startsWith('anchor') ? '—' : pct(r.hamFlagged, r.ham),
        'missed before any report': r.missedBeforeReport,
        'missed, never reported': r.missedNeverReported,
        reports: r.reports,
        // The oracle blocks at once by definition; its probes say nothing.
        ...(name.startsWith('anchor')
          ? { 'campaigns blocked everywhere': '—', 'first report → all sites, median': '0', p95: '0', max: '0' }
          : {
              'campaigns blocked everywhere': `${spread.length}/${r.spread.length}`,
              'first report → all sites, median': minutes(spread[Math.floor(spread.length / 2)]),
              p95: minutes(spread[Math.floor(spread.length * 0.95)]),
              max: minutes(spread.at(-1)),
            }),
      }
    }),
  )
  console.log(`spam ${rows[0].r.spam}, ham ${rows[0].r.ham}; newsletter copies wrongly reported: ${rows.map((x) => x.r.misreports).join(', ')}`)
}
