/*
 * TOTP (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), the second factor every
 * authenticator app speaks; written on node:crypto, a page of code, rather than a dependency.
 * Secrets are base32 (RFC 4648) as the apps expect them.
 */
import crypto from 'node:crypto'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
export const STEP_SECONDS = 30

export function base32Encode(buf: Buffer): string {
  let bits = 0
  let value = 0
  let out = ''
  for (const byte of buf) {
    value = (value << 8) | byte
    bits += 8
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31]
  return out
}

export function base32Decode(text: string): Buffer {
  const clean = text.toUpperCase().replace(/[\s=-]/g, '')
  let bits = 0
  let value = 0
  const out: number[] = []
  for (const ch of clean) {
    const i = ALPHABET.indexOf(ch)
    if (i < 0) throw new Error('not base32')
    value = (value << 5) | i
    bits += 5
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255)
      bits -= 8
    }
  }
  return Buffer.from(out)
}

export function newSecret(): string {
  return base32Encode(crypto.randomBytes(20))
}

/** The code for one time step. */
export function codeAt(secret: string, step: number): string {
  const counter = Buffer.alloc(8)
  counter.writeBigUInt64BE(BigInt(step))
  const mac = crypto.createHmac('sha1', base32Decode(secret)).update(counter).digest()
  const offset = mac[mac.length - 1] & 15
  const n = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000
  return String(n).padStart(6, '0')
}

export function stepOf(now: number): number {
  return Math.floor(now / 1000 / STEP_SECONDS)
}

/**
 * The step a code matches, allowing one step of clock drift either way, and only steps after
 * `lastStep` (a code works once); null when it matches none.
 */
export function verify(secret: string, code: string, now: number, lastStep: number | null): number | null {
  const c = code.replace(/\s/g, '')
  if (!/^\d{6}$/.test(c)) return null
  const here = stepOf(now)
  for (const step of [here, here - 1, here + 1]) {
    if (lastStep !== null && step <= lastStep) continue
    if (crypto.timingSafeEqual(Buffer.from(codeAt(secret, step)), Buffer.from(c))) return step
  }
  return null
}

export function otpauthUri(secret: string, account: string, issuer = 'Moat'): string {
  return `otpauth://totp/${encodeURIComponent(issuer)}:${encodeURIComponent(account)}?secret=${secret}&issuer=${encodeURIComponent(issuer)}&algorithm=SHA1&digits=6&period=${STEP_SECONDS}`
}
