/*
 * The appliance's TLS certificate: a self-signed one is generated at first start (a
 * per-install key, never committed) so STARTTLS works from the first message; an admin
 * replaces DATA_DIR/tls/cert.pem and key.pem with their own.
 *
 * Failure: without the openssl command the appliance runs without STARTTLS and says so.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'

export interface TlsFiles {
  key: string
  cert: string
}

export function ensureCertificate(dataDir: string, hostname: string, log: (msg: string) => void): TlsFiles | null {
  const dir = path.join(dataDir, 'tls')
  const files = { key: path.join(dir, 'key.pem'), cert: path.join(dir, 'cert.pem') }
  if (fs.existsSync(files.key) && fs.existsSync(files.cert)) return files
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  const cn = hostname.replace(/[^A-Za-z0-9.-]/g, '') || 'moat'
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '3650',
      '-subj', `/CN=${cn}`, '-addext', `subjectAltName=DNS:${cn}`, '-keyout', `${files.key}.tmp`, '-out', `${files.cert}.tmp`],
    { encoding: 'utf8' },
  )
  if (r.status !== 0) {
    log(`TLS: could not generate a self-signed certificate (${r.error?.message ?? r.stderr.trim()}); STARTTLS is OFF`)
    return null
  }
  fs.chmodSync(`${files.key}.tmp`, 0o600)
  fs.renameSync(`${files.key}.tmp`, files.key)
  fs.renameSync(`${files.cert}.tmp`, files.cert)
  log(`TLS: generated a self-signed certificate for ${cn} in ${dir} (replace it with your own)`)
  return files
}
