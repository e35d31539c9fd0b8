/* The content engine offline: scan, train, learn. */
import fs from 'node:fs'
import path from 'node:path'
import type { LogisticModel } from '../../engine/logistic'
import { scanMessage } from '../../engine/engine'
import { DEFAULT_MODEL_PATH, loadActiveModel, loadDefaultModel, saveModel } from '../../engine/models'
import { corpusDir, listMessageFiles, trainOnFiles } from '../../engine/training'
import { buildDefault, WEIGHTS_PATH } from '../../engine/recipe/default-recipe'
import { exportReports, learnNow, pendingReports } from '../../engine/reports'
import { databasePath, loadSettings } from '../../config'
import { type Command, UsageError } from '../command'
import { appliance } from '../context'

function activeModel(useDefault: boolean): LogisticModel {
  // Scanning must work on a machine that never ran the appliance: no database, no model row.
  if (useDefault || !fs.existsSync(databasePath(loadSettings().dataDir))) return loadDefaultModel().model
  return loadActiveModel(appliance().db).model
}

const pct = (n: number, d: number) => `${((100 * n) / Math.max(1, d)).toFixed(2)} %`

function list(v: unknown): string[] {
  if (v === undefined) return []
  return Array.isArray(v) ? v.map(String) : [String(v)]
}

export const engineCommands: Command[] = [
  {
    path: ['scan'],
    usage: 'FILE_OR_DIR... [--json] [--default-model]',
    summary: 'Classify raw messages offline with the same engine as the SMTP path; prints one JSON line per message: {"file","verdict","score","symbols"}.',
    options: {
      json: { type: 'boolean', description: 'JSON lines (the only output format; accepted for uniformity)' },
      'default-model': { type: 'boolean', description: 'use the shipped model, not the newest trained one' },
    },
    async run({ args, opts, out, err }) {
      if (!args.length) throw new UsageError('name at least one file or directory')
      const model = activeModel(!!opts['default-model'])
      let failed = 0
      for (const target of args) {
        for (const file of listMessageFiles(target)) {
          try {
            const r = await scanMessage(fs.readFileSync(file), { model })
            out(JSON.stringify({ file, verdict: r.verdict, score: r.score, symbols: r.symbols }))
          } catch (e) {
            failed++
            err(`${file}: ${(e as Error).message}`)
          }
        }
      }
      return failed ? 1 : 0
    },
  },
  {
    path: ['train'],
    usage: '--ham DIR --spam DIR [--ham DIR ...] | --default-model [--corpus DIR] [--dry-run]',
    summary:
      'Train the statistical classifier from folders of raw messages and store it as the new model version (the running appliance picks it up within seconds); it is calibrated on its own held-out scores so the weights table fits it. --default-model rebuilds what ships: the default model and the weights table fitted for it, by one recipe.',
    options: {
      ham: { type: 'string', multiple: true, description: 'folder (or file) of ham' },
      spam: { type: 'string', multiple: true, description: 'folder (or file) of spam' },
      'default-model': { type: 'boolean', description: `write ${path.relative(process.cwd(), DEFAULT_MODEL_PATH)} and its weights table from the shared corpus` },
      corpus: { type: 'string', description: 'corpus folder with manifest.csv (default ../shared/corpus)' },
      'dry-run': { type: 'boolean', description: 'with --default-model: print the fit, write nothing' },
    },
    async run({ opts, out }) {
      if (opts['default-model']) {
        const corpus = path.resolve(String(opts.corpus ?? corpusDir()))
        const started = Date.now()
        const built = await buildDefault(corpus)
        const r = built.weights.recipe!
        const row = (what: string, e: typeof built.nested) =>
          `| ${what} | ${e.ham} | ${pct(e.fp, e.ham)} | ${pct(e.sureHam, e.ham)} | ${e.spam} | ${pct(e.fn, e.spam)} | ${pct(e.sureMissed, e.spam)} |`
        out(`recipe ${r.name}: ${r.ham} ham and ${r.spam} spam from ${r.sources.length} sources, ${((Date.now() - started) / 1000).toFixed(0)} s`)
        out('| weights | ham | ham flagged | ham at surespam | spam | spam missed | spam not surespam |\n|---|---|---|---|---|---|---|')
        out(row('nested (fold k scored by weights fitted without it)', built.nested))
        out(row('fitted on everything (what is written)', built.inSample))
        out(`hand-set (too little evidence to fit): ${r.handSet.join(' ') || 'none'}`)
        if (opts['dry-run']) {
          out(JSON.stringify(built.weights.weights, null, 2))
          return
        }
        fs.writeFileSync(DEFAULT_MODEL_PATH, built.modelFile)
        fs.writeFileSync(WEIGHTS_PATH, `${JSON.stringify(built.weights, null, 2)}\n`)
        out(`written: ${path.relative(process.cwd(), DEFAULT_MODEL_PATH)} (sha256 ${r.modelSha256.slice(0, 16)}…) and ${path.relative(process.cwd(), WEIGHTS_PATH)}`)
        return
      }
      const ham = list(opts.ham).flatMap(listMessageFiles)
      const spam = list(opts.spam).flatMap(listMessageFiles)
      if (!ham.length || !spam.length) throw new UsageError('train wants at least one ham and one spam message')
      const model = await trainOnFiles([
        ...ham.map((file) => ({ file, spam: false })),
        ...spam.map((file) => ({ file, spam: true })),
      ])
      const id = saveModel(appliance().db, model, `moat train: ${ham.length} ham, ${spam.length} spam`)
      out(`model ${id} trained on ${ham.length} ham and ${spam.length} spam`)
    },
  },
  {
    path: ['learn'],
    usage: '--spam FILE | --ham FILE',
    summary: 'Teach the classifier one message (what "report spam" and "not spam" do) as a new model version.',
    options: {
      spam: { type: 'string', multiple: true, description: 'a message that is spam' },
      ham: { type: 'string', multiple: true, description: 'a message that is not spam' },
    },
    async run({ opts, out }) {
      const spam = list(opts.spam)
      const ham = list(opts.ham)
      if (!spam.length && !ham.length) throw new UsageError('learn wants --spam FILE or --ham FILE')
      const reports = [...spam.map((f) => ({ raw: fs.readFileSync(f), spam: true })), ...ham.map((f) => ({ raw: fs.readFileSync(f), spam: false }))]
      const id = await learnNow(appliance().db, reports, 'moat learn')
      out(`model ${id}: learned ${spam.length} spam and ${ham.length} ham`)
    },
  },
  {
    path: ['reports'],
    usage: '',
    summary: 'How many "report spam" / "not spam" reports are kept, and how many wait for the learn-reports job.',
    run({ out }) {
      const { db } = appliance()
      const kept = (db.prepare(`SELECT count(*) AS n FROM classifier_reports`).get() as { n: number }).n
      out(`${kept} reports kept, ${pendingReports(db)} waiting to be learned`)
    },
  },
  {
    path: ['reports', 'export'],
    usage: 'DIR',
    summary: 'Write the reported messages as a labelled corpus (DIR/manifest.csv, DIR/ham, DIR/spam): MOAT_CORPUS=DIR npm run bench -- accuracy measures the engine on them.',
    run({ args, out }) {
      if (!args[0]) throw new UsageError('name the folder to write')
      const n = exportReports(appliance().db, path.resolve(args[0]))
      out(`${n.ham} ham and ${n.spam} spam written to ${args[0]}`)
    },
  },
]
