/*
 * A Moat release as one file that `moat update` accepts: a tar of release.json (version,
 * size and SHA-256 of the payload), release.sig (an Ed25519 signature of release.json by
 * the vendor's release key) and payload.tar.gz (the release tree: bin, dist, node, …).
 * The appliance trusts the public keys in its release-keys folder (MOAT_RELEASE_KEYS,
 * /etc/moat/release-keys on the image) and nothing else; the private key stays with
 * whoever builds releases (packer/build.sh makes one beside the image if none is given).
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import * as tar from 'tar'

export const RELEASE_FORMAT = 'moat-release-1'
const ENTRIES = ['release.json', 'release.sig', 'payload.tar.gz'] as const

export class ReleaseError extends Error {}

export interface ReleaseInfo {
  format: typeof RELEASE_FORMAT
  version: string
  created_at: number
  payload_sha256: string
  payload_bytes: number
}

/** A new release signing key pair: release.key (private, 0600) and release.pub.pem. */
export function makeReleaseKey(dir: string): { key: string; pub: string } {
  fs.mkdirSync(dir, { recursive: true })
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519')
  const key = path.join(dir, 'release.key')
  const pub = path.join(dir, 'release.pub.pem')
  fs.writeFileSync(key, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  fs.writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }))
  return { key, pub }
}

async function sha256File(file: string): Promise<string> {
  const h = crypto.createHash('sha256')
  await pipeline(fs.createReadStream(file), h)
  return h.digest('hex')
}

/**
 * Packs the release tree `tree` (its top level: bin, dist, package.json, …) into `out`. The
 * version is the tree's own (package.json), the one its web service will report healthy.
 */
export async function packRelease(tree: string, out: string, keyFile: string): Promise<ReleaseInfo> {
  if (!fs.existsSync(path.join(tree, 'bin/moat'))) throw new ReleaseError(`${tree} is not a Moat release tree (no bin/moat)`)
  const version = (JSON.parse(fs.readFileSync(path.join(tree, 'package.json'), 'utf8')) as { version: string }).version
  const work = fs.mkdtempSync(path.join(path.dirname(path.resolve(out)), '.release-'))
  try {
    const payload = path.join(work, 'payload.tar.gz')
    await tar.create({ gzip: { level: 6 }, file: payload, cwd: tree, portable: true }, fs.readdirSync(tree))
    const info: ReleaseInfo = { format: RELEASE_FORMAT, version, created_at: Date.now(), payload_sha256: await sha256File(payload), payload_bytes: fs.statSync(payload).size }
    const json = Buffer.from(`${JSON.stringify(info, null, 1)}\n`)
    fs.writeFileSync(path.join(work, 'release.json'), json)
    const key = crypto.createPrivateKey(fs.readFileSync(keyFile))
    fs.writeFileSync(path.join(work, 'release.sig'), `${crypto.sign(null, json, key).toString('base64')}\n`)
    await tar.create({ file: out, cwd: work, portable: true }, [...ENTRIES])
    return info
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
}

export function trustedKeys(dir: string): crypto.KeyObject[] {
  let files: string[]
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.pem'))
  } catch {
    return []
  }
  return files.map((f) => crypto.createPublicKey(fs.readFileSync(path.join(dir, f))))
}

/**
 * Checks a release file and unpacks its three parts into `work` (which it creates). Only
 * those three plain files are taken from the outer tar; the payload is extracted later,
 * and only after its signature and hash are checked.
 */
export async function openRelease(file: string, keysDir: string, work: string): Promise<{ info: ReleaseInfo; payload: string }> {
  const keys = trustedKeys(keysDir)
  if (!keys.length) throw new ReleaseError(`no trusted release keys in ${keysDir}: this appliance cannot check a release`)
  fs.mkdirSync(work, { recursive: true })
  const seen = new Set<string>()
  try {
    await tar.extract({
      file,
      cwd: work,
      strict: true,
      filter: (p, entry) => {
        const ok = (ENTRIES as readonly string[]).includes(p) && (entry as tar.ReadEntry).type === 'File' && !seen.has(p)
        if (ok) seen.add(p)
        return ok
      },
    })
  } catch (err) {
    throw new ReleaseError(`not a Moat release file: ${(err as Error).message}`)
  }
  for (const e of ENTRIES) if (!seen.has(e)) throw new ReleaseError(`not a Moat release file: ${e} is missing`)
  const json = fs.readFileSync(path.join(work, 'release.json'))
  const sig = Buffer.from(fs.readFileSync(path.join(work, 'release.sig'), 'utf8').trim(), 'base64')
  if (!keys.some((k) => crypto.verify(null, json, k, sig))) throw new ReleaseError('the release signature does not match any trusted release key')
  let info: ReleaseInfo
  try {
    info = JSON.parse(json.toString('utf8')) as ReleaseInfo
  } catch {
    throw new ReleaseError('release.json is not JSON')
  }
  if (info.format !== RELEASE_FORMAT || typeof info.version !== 'string' || !/^\d+(\.\d+)*([-+][\w.]+)?$/.test(info.version)) {
    throw new ReleaseError(`unknown release format or version (${info.format} ${info.version})`)
  }
  const payload = path.join(work, 'payload.tar.gz')
  if ((await sha256File(payload)) !== info.payload_sha256) throw new ReleaseError('the payload does not match its signed SHA-256: the file is damaged')
  return { info, payload }
}

/** Extracts a checked payload into `dir`. Links are kept (node_modules/.bin) but none may leave dir. */
export async function extractPayload(payload: string, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true })
  await tar.extract({ file: payload, cwd: dir, strict: true, preservePaths: false })
  const root = fs.realpathSync(dir)
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      if (e.isSymbolicLink()) {
        const target = path.resolve(path.dirname(p), fs.readlinkSync(p))
        if (target !== root && !target.startsWith(`${root}${path.sep}`)) throw new ReleaseError(`the release holds a link out of its folder: ${path.relative(root, p)}`)
      } else if (e.isDirectory()) walk(p)
    }
  }
  walk(root)
}
