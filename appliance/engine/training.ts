/*
 * Training the classifier from folders of raw messages (a site's `moat train`), and reading
 * the labelled corpus. The shipped default model is made by recipe/default-recipe.ts.
 */
import fs from 'node:fs'
import path from 'node:path'
import { type FeatureVector, features, type LogisticModel } from './logistic'
import { trainCalibrated } from './recipe/calibration'
import { parseMessage } from './message'
import { TOKEN_SCHEME, tokenize, type Tokens } from './tokenize'

/** The labelled corpus beside the checkout (shared/corpus), or MOAT_CORPUS. */
export function corpusDir(): string {
  return path.resolve(process.env.MOAT_CORPUS || path.join(__dirname, '../../../../shared/corpus'))
}

export function listMessageFiles(target: string): string[] {
  const st = fs.statSync(target)
  if (st.isFile()) return [target]
  const out: string[] = []
  for (const entry of fs.readdirSync(target, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue
    const full = path.join(target, entry.name)
    if (entry.isDirectory()) out.push(...listMessageFiles(full))
    else if (entry.isFile()) out.push(full)
  }
  return out.sort()
}

export async function tokensOfFile(file: string): Promise<Tokens> {
  return tokenize(await parseMessage(fs.readFileSync(file)))
}

/** Folds of a site's training set: enough to calibrate, few enough to stay quick. */
const SITE_FOLDS = 5

/**
 * Trains a new model from scratch on labelled files, calibrated on its own held-out scores
 * so the shipped weights table fits it as it fits the default model.
 */
export async function trainOnFiles(files: { file: string; spam: boolean }[]): Promise<LogisticModel> {
  const samples: { f: FeatureVector; spam: boolean }[] = []
  for (const f of files) samples.push({ f: features(await tokensOfFile(f.file)), spam: f.spam })
  // Ham and spam each dealt round the folds, so every fold has both.
  const nSpam = samples.filter((s) => s.spam).length
  const folds = Math.max(1, Math.min(SITE_FOLDS, nSpam, samples.length - nSpam))
  const dealt = { ham: 0, spam: 0 }
  const withFolds = samples.map((s) => ({ ...s, fold: (s.spam ? dealt.spam++ : dealt.ham++) % folds }))
  const { model } = trainCalibrated(withFolds, folds, { scheme: TOKEN_SCHEME })
  model.provenance = { recipe: 'moat train', ham: samples.length - nSpam, spam: nSpam }
  return model
}

export interface ManifestRow {
  path: string
  label: 'ham' | 'spam'
  source: string
  sha256: string
  /** Symbols the message got when it was received (`moat reports export`); none in shared/corpus. */
  symbols: string[]
}

export function readManifest(corpusDir: string): ManifestRow[] {
  const lines = fs.readFileSync(path.join(corpusDir, 'manifest.csv'), 'utf8').split('\n')
  const head = lines[0].split(',')
  const idx = (name: string) => head.indexOf(name)
  return lines
    .slice(1)
    .filter(Boolean)
    .map((l) => {
      const c = l.split(',')
      const symbols = idx('symbols') >= 0 ? (c[idx('symbols')] ?? '').split(' ').filter(Boolean) : []
      return { path: c[idx('path')], label: c[idx('label')] as 'ham' | 'spam', source: c[idx('source')], sha256: c[idx('sha256')], symbols }
    })
}
