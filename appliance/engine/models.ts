/*
 * Where the classifier model comes from: the newest trained model in the database, or the
 * default model that ships with Moat (trained on the public SpamAssassin and foff-milter
 * mail only), so a fresh install classifies from its first message.
 */
import fs from 'node:fs'
import path from 'node:path'
import type { Db } from '../db/database'
import { deserialiseLogistic, type LogisticModel, serialiseLogistic } from './logistic'
import { TOKEN_SCHEME } from './tokenize'

export const DEFAULT_MODEL_PATH = path.resolve(__dirname, '../../../appliance/models/default-classifier.bin.gz')

export interface StoredModel {
  id: number | null
  description: string
  model: LogisticModel
  /**
   * The newest stored version when this one was chosen: only a newer one is worth loading.
   * (Not `id`: when stored versions are skipped for their old tokens, the two differ.)
   */
  newestStoredId: number | null
}

export function loadDefaultModel(opts: { learn?: boolean } = {}): StoredModel {
  return { id: null, description: 'default model shipped with Moat', model: deserialiseLogistic(fs.readFileSync(DEFAULT_MODEL_PATH), opts), newestStoredId: null }
}

export function latestModelId(db: Db): number | null {
  const row = db.prepare(`SELECT max(id) AS id FROM classifier_models WHERE kind = 'logistic'`).get() as { id: number | null }
  return row.id
}

/**
 * The model in use: the newest stored one trained on today's tokens. After an update that
 * changed the tokens, older versions mean nothing to the new tokenizer, so the shipped
 * model serves until the next `moat train`. { learn: true } also loads what learning needs.
 */
export function loadActiveModel(db: Db, opts: { learn?: boolean } = {}): StoredModel {
  const rows = db
    .prepare(`SELECT id, description, data FROM classifier_models WHERE kind = 'logistic' ORDER BY id DESC`)
    .iterate() as Iterable<{ id: number; description: string; data: Buffer }>
  let newestStoredId: number | null = null
  for (const row of rows) {
    newestStoredId ??= row.id
    let model: LogisticModel
    try {
      model = deserialiseLogistic(row.data, opts)
    } catch {
      continue
    }
    if (model.scheme === TOKEN_SCHEME) return { id: row.id, description: row.description, model, newestStoredId }
  }
  return { ...loadDefaultModel(opts), newestStoredId }
}

export function saveModel(db: Db, model: LogisticModel, description: string): number {
  return storeModel(db, serialiseLogistic(model), model.messages, description)
}

/** Stores a model serialised already (serialising takes long; callers keep it out of a transaction). */
export function storeModel(db: Db, data: Buffer, messages: number, description: string, now = Date.now()): number {
  const info = db
    .prepare(`INSERT INTO classifier_models (kind, description, messages, data, created_at) VALUES ('logistic', ?, ?, ?, ?)`)
    .run(description, messages, data, now)
  return Number(info.lastInsertRowid)
}
