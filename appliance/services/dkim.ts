/*
 * DKIM signing of outbound mail, a key per domain. The key is made when the admin first asks
 * for the domain's DNS record (`moat domain dkim DOMAIN`), and signing starts when they say it
 * is published (`--enable`). Signing itself is mailauth's (relaxed/relaxed, rsa-sha256).
 */
import crypto from 'node:crypto'
import type { Db } from '../db/database'
import { TenantError } from './tenants'

const { dkimSign } = require('mailauth')

export interface DkimInfo {
  domain: string
  selector: string
  enabled: boolean
  /** The TXT record to publish at <selector>._domainkey.<domain>. */
  record: string
}

interface Row {
  id: number
  name: string
  dkim_selector: string | null
  dkim_private_key: string | null
  dkim_enabled: number
}

function txtRecord(privateKeyPem: string): string {
  const pub = crypto.createPublicKey(privateKeyPem).export({ type: 'spki', format: 'der' }).toString('base64')
  return `v=DKIM1; k=rsa; p=${pub}`
}

/**
 * The record as a zone-file line. A 2048-bit key's record is longer than the 255 characters
 * one TXT string may hold, so it is written as several quoted strings, which resolvers join.
 */
export function zoneLine(info: DkimInfo): string {
  const parts = info.record.match(/.{1,255}/g) ?? []
  return `${info.selector}._domainkey.${info.domain}. IN TXT ${parts.map((p) => `"${p}"`).join(' ')}`
}

export class Dkim {
  private readonly q
  private cache = new Map<string, { at: number; row: Row | undefined }>()

  constructor(db: Db) {
    this.q = {
      domain: db.prepare(`SELECT id, name, dkim_selector, dkim_private_key, dkim_enabled FROM domains WHERE name = ?`),
      setKey: db.prepare(`UPDATE domains SET dkim_selector = ?, dkim_private_key = ? WHERE id = ?`),
      setEnabled: db.prepare(`UPDATE domains SET dkim_enabled = ? WHERE id = ?`),
    }
  }

  private row(domain: string): Row {
    const row = this.q.domain.get(domain.trim().toLowerCase()) as Row | undefined
    if (!row) throw new TenantError(`no domain "${domain}"`)
    return row
  }

  /** The domain's key and DNS record, making the key on first use; optionally switches signing. */
  info(domain: string, opts: { enable?: boolean; rotate?: boolean } = {}): DkimInfo {
    let row = this.row(domain)
    if (!row.dkim_private_key || opts.rotate) {
      const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
      const d = new Date()
      // A new selector per key, so a rotated key can be published beside the old one.
      const selector = `moat${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, '0')}${crypto.randomBytes(2).toString('hex')}`
      this.q.setKey.run(selector, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), row.id)
      if (opts.rotate) this.q.setEnabled.run(0, row.id)
    }
    if (opts.enable !== undefined) this.q.setEnabled.run(opts.enable ? 1 : 0, row.id)
    row = this.row(domain)
    this.cache.clear()
    return { domain: row.name, selector: row.dkim_selector!, enabled: row.dkim_enabled === 1, record: txtRecord(row.dkim_private_key!) }
  }

  /** A DKIM-Signature header line (CRLF-terminated) for this message, or '' if the domain does not sign. */
  async sign(message: Buffer, domain: string, now = Date.now()): Promise<string> {
    const d = domain.toLowerCase()
    let c = this.cache.get(d)
    if (!c || now - c.at > 5000) {
      c = { at: now, row: this.q.domain.get(d) as Row | undefined }
      this.cache.set(d, c)
    }
    const row = c.row
    if (!row?.dkim_enabled || !row.dkim_private_key || !row.dkim_selector) return ''
    const res = await dkimSign(message, {
      canonicalization: 'relaxed/relaxed',
      signatureData: [{ signingDomain: row.name, selector: row.dkim_selector, privateKey: row.dkim_private_key, algorithm: 'rsa-sha256' }],
    })
    if (res.errors?.length) throw new Error(`DKIM signing for ${d} failed: ${res.errors[0].error ?? res.errors[0]}`)
    return res.signatures as string
  }
}
