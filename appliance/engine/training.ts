/*
 * Training the classifier from folders of raw messages, and the shipped default model.
 * The default is trained only on mail whose licence allows shipping a model derived from
 * it (the SpamAssassin public corpus and foff-milter's); see shared/corpus/README.md.
 */
import fs from 'node:fs'
import path from 'node:path'
import { type FeatureVector, features, type LogisticModel, trainLogistic } from './logistic'
import { parseMessage } from './message'
import { TOKEN_SCHEME, tokenize, type Tokens } from './tokenize'

/** The labelled corpus beside the checkout (shared/corpus), or MOAT_CORPUS. */
export function corpusDir(): string {
  return path.resolve(process.env.MOAT_CORPUS || path.join(__dirname, '../../../../shared/corpus'))
}

export const SHIPPABLE_SOURCES = ['sa-easy_ham', 'sa-easy_ham_2', 'sa-hard_ham', 'sa-spam', 'sa-spam_2', 'foff-milter']

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

/** Trains a new model from scratch on labelled files. */
export async function trainOnFiles(files: { file: string; spam: boolean }[]): Promise<LogisticModel> {
  const samples: { f: FeatureVector; spam: boolean }[] = []
  for (const f of files) samples.push({ f: features(await tokensOfFile(f.file)), spam: f.spam })
  return trainLogistic(samples, { scheme: TOKEN_SCHEME })
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

export async function trainDefaultModel(corpusDir: string): Promise<LogisticModel> {
  const rows = readManifest(corpusDir).filter((r) => SHIPPABLE_SOURCES.includes(r.source))
  return trainOnFiles(rows.map((r) => ({ file: path.join(corpusDir, r.path), spam: r.label === 'spam' })))
}
