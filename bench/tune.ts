/*
 * npm run tune: fits the weights table to the corpus instead of guessing it. Every message
 * gets the symbols the engine gives it, with the classifier's from a model that never saw
 * it (k-fold); a logistic regression over those symbols, ham and spam weighing the same in
 * total, gives each symbol its weight, scaled so that the spam threshold (5 points) keeps
 * the flagged ham at or under the target rate and no ham reaches surespam (10 points). The
 * scale is what holds the target: weighing ham more in the fit as well (TUNE_HAM_COST)
 * flagged no less ham and kept more spam out of surespam. Rules may only add points (a
 * filter that fires must never excuse spam), and less than the threshold each; the
 * classifier's buckets keep their order (a surer bucket never weighs less), subtract at most
 * 3 points and alone never reach surespam; policy symbols (viruses, dangerous attachments,
 * RBLs, authentication, lists) keep the weights an admin expects.
 *
 * It prints the fit's accuracy both in-sample and nested (weights fitted without the fold
 * they are measured on), then writes appliance/engine/weights.json (--dry-run: only prints).
 */
import fs from 'node:fs'
import path from 'node:path'
import { BUCKETS } from '../appliance/engine/filters/classifier'
import weightsTable from '../appliance/engine/weights.json'
import { heldOutClassifierSymbols, loadSamples } from './accuracy'

const FOLDS = Number(process.env.BENCH_FOLDS ?? 5)
const TARGET_FP = Number(process.env.TUNE_TARGET_FP ?? 0.001)
const HAM_COST = Number(process.env.TUNE_HAM_COST ?? 1)
/**
 * However sure the classifier is that mail is ham, it excuses at most this much: a virus, a
 * dangerous attachment or a blocklisted sender must still count. And no one rule of ours
 * quarantines on its own (5 points); the corpus has too few ham for each rule to prove that.
 */
const CLASSIFIER_MIN_POINTS = -3
/** Surespam is quarantined quietly: the classifier alone never puts mail there, a rule must agree. */
const CLASSIFIER_MAX_POINTS = 9.9
const RULE_MAX_POINTS = 4.5
/** Symbols whose weight is policy, not statistics; also those that never fire offline. */
const FIXED = /^(ATTACH_|AV_|BOUNCE_|ALLOWLIST|BLOCKLIST|RBL_|DBL_|SURBL_|SPF_|DKIM_|DMARC_|ARC_|RULE_)/

export interface Row {
  names: string[]
  spam: boolean
  fold: number
  fixedPoints: number
}

export function fit(rows: Row[], names: string[]): { w: Float64Array; b: number } {
  const idx = new Map(names.map((n, i) => [n, i]))
  const w = new Float64Array(names.length)
  let b = 0
  const nHam = rows.filter((r) => !r.spam).length
  const nSpam = rows.length - nHam
  const cost = (r: Row) => (r.spam ? 1 / nSpam : HAM_COST / nHam)
  const l2 = 1e-4
  const x = rows.map((r) => r.names.map((n) => idx.get(n)).filter((i): i is number => i !== undefined))
  const bucketOrder = classifierBuckets(names)
  // Full-batch gradient descent: a few dozen features, convex, cheap.
  for (let step = 0; step < 3000; step++) {
    const gw = new Float64Array(names.length)
    let gb = 0
    for (let k = 0; k < rows.length; k++) {
      let z = b
      for (const i of x[k]) z += w[i]
      const p = 1 / (1 + Math.exp(-z))
      const g = (p - (rows[k].spam ? 1 : 0)) * cost(rows[k])
      for (const i of x[k]) gw[i] += g
      gb += g
    }
    const rate = 2.0
    for (let i = 0; i < names.length; i++) {
      w[i] -= rate * (gw[i] + l2 * w[i])
      if (!names[i].startsWith('CLASSIFIER_') && w[i] < 0) w[i] = 0
    }
    monotone(w, bucketOrder)
    b -= rate * gb
  }
  return { w, b }
}

/** Indexes of the classifier's bucket symbols in `names`, least spammy first. */
function classifierBuckets(names: string[]): number[] {
  return BUCKETS.map(([, name]) => names.indexOf(name))
    .filter((i) => i >= 0)
    .reverse()
}

/**
 * A surer classifier bucket never weighs less than a less sure one (pool adjacent
 * violators): with few messages in a bucket the fit would otherwise follow their noise.
 */
function monotone(w: Float64Array, order: number[]): void {
  const blocks: { sum: number; n: number }[] = []
  for (const i of order) {
    blocks.push({ sum: w[i], n: 1 })
    while (blocks.length > 1 && blocks.at(-2)!.sum / blocks.at(-2)!.n > blocks.at(-1)!.sum / blocks.at(-1)!.n) {
      const last = blocks.pop()!
      blocks.at(-1)!.sum += last.sum
      blocks.at(-1)!.n += last.n
    }
  }
  let k = 0
  for (const block of blocks) for (let j = 0; j < block.n; j++) w[order[k++]] = block.sum / block.n
}

/** Points per symbol: the logit scaled so that 5 points is the cut that meets TARGET_FP. */
export function toPoints(rows: Row[], names: string[], m: { w: Float64Array; b: number }): Map<string, number> {
  const idx = new Map(names.map((n, i) => [n, i]))
  const z = (r: Row) => r.names.reduce((s, n) => s + (idx.has(n) ? m.w[idx.get(n)!] : 0), 0)
  const ham = rows.filter((r) => !r.spam).map(z).sort((a, b) => b - a)
  const allowed = Math.floor(ham.length * TARGET_FP)
  // The cut lies just above the (allowed+1)-th highest ham logit, and never below zero points.
  const cut = Math.max(ham[allowed] ?? 0, 1e-6) + 1e-6
  // And no ham may reach surespam (10 points): that level is quarantined quietly.
  const scale = Math.min(5 / cut, ham[0] > 0 ? 9.9 / ham[0] : Infinity)
  const bound = (n: string, p: number) => (n.startsWith('CLASSIFIER_') ? Math.min(CLASSIFIER_MAX_POINTS, Math.max(CLASSIFIER_MIN_POINTS, p)) : Math.min(RULE_MAX_POINTS, p))
  return new Map(names.map((n, i) => [n, Math.round(bound(n, m.w[i] * scale) * 100) / 100]))
}

export function evaluate(rows: Row[], points: Map<string, number>): { fp: number; fn: number; sureHam: number; sureMissed: number; ham: number; spam: number } {
  const out = { fp: 0, fn: 0, sureHam: 0, sureMissed: 0, ham: 0, spam: 0 }
  for (const r of rows) {
    const s = r.fixedPoints + r.names.reduce((t, n) => t + (points.get(n) ?? 0), 0)
    if (r.spam) {
      out.spam++
      if (s < 5) out.fn++
      if (s < 10) out.sureMissed++
    } else {
      out.ham++
      if (s >= 5) out.fp++
      if (s >= 10) out.sureHam++
    }
  }
  return out
}

const pct = (n: number, d: number) => `${((100 * n) / d).toFixed(2)} %`

async function main(): Promise<void> {
  const dry = process.argv.includes('--dry-run')
  const started = Date.now()
  const samples = await loadSamples(FOLDS)
  const rows: Row[] = []
  const current = weightsTable.weights as Record<string, number>
  const classifier = heldOutClassifierSymbols(samples, FOLDS)
  samples.forEach((s, i) => {
    const names = [...new Set([...s.fixed, ...classifier[i]].map((x) => x.name))]
    const fixedPoints = names.filter((n) => FIXED.test(n)).reduce((t, n) => t + (current[n] ?? 0), 0)
    rows.push({ names: names.filter((n) => !FIXED.test(n)), spam: s.spam, fold: s.fold, fixedPoints })
  })
  const names = [...new Set([...rows.flatMap((r) => r.names), ...BUCKETS.map(([, n]) => n)])].sort()
  const report: Record<string, string | number>[] = []
  const line = (what: string, e: ReturnType<typeof evaluate>) =>
    report.push({ weights: what, ham: e.ham, 'ham flagged (FP)': pct(e.fp, e.ham), 'ham at surespam': pct(e.sureHam, e.ham), spam: e.spam, 'spam missed (FN)': pct(e.fn, e.spam), 'spam not surespam': pct(e.sureMissed, e.spam) })
  line('current weights.json', evaluate(rows, new Map(names.map((n) => [n, current[n] ?? 0]))))
  // Nested: the weights for fold k are fitted on the other folds only.
  const nested = { fp: 0, fn: 0, sureHam: 0, sureMissed: 0, ham: 0, spam: 0 }
  for (let k = 0; k < FOLDS; k++) {
    const train = rows.filter((r) => r.fold !== k)
    const e = evaluate(rows.filter((r) => r.fold === k), toPoints(train, names, fit(train, names)))
    for (const key of Object.keys(nested) as (keyof typeof nested)[]) nested[key] += e[key]
  }
  line('tuned, nested (fold k scored by weights fitted without it)', nested)
  const points = toPoints(rows, names, fit(rows, names))
  line('tuned on everything (what is written)', evaluate(rows, points))
  console.log(`\n## npm run tune: ${rows.length} messages, ${FOLDS} folds, target FP ${(TARGET_FP * 100).toFixed(2)} %, ham cost ${HAM_COST}; ${((Date.now() - started) / 1000).toFixed(0)} s\n`)
  const cols = Object.keys(report[0])
  console.log(`| ${cols.join(' | ')} |\n|${cols.map(() => '---').join('|')}|`)
  for (const r of report) console.log(`| ${cols.map((c) => r[c]).join(' | ')} |`)
  console.log(`\n| symbol | was | tuned |\n|---|---|---|`)
  for (const n of names) console.log(`| ${n} | ${current[n] ?? '—'} | ${points.get(n)} |`)
  if (dry) return
  const file = path.resolve(__dirname, '../../appliance/engine/weights.json')
  const next = { ...weightsTable, tuned: `npm run tune, ${new Date().toISOString().slice(0, 10)}: ${rows.length} corpus messages, ${FOLDS}-fold classifier symbols, target FP ${(TARGET_FP * 100).toFixed(2)} %`, weights: { ...current } as Record<string, number> }
  for (const n of names) next.weights[n] = points.get(n)!
  fs.writeFileSync(file, `${JSON.stringify(next, null, 2)}\n`)
  console.log(`\nwritten: ${path.relative(process.cwd(), file)}`)
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err)
      process.exit(1)
    },
  )
}
