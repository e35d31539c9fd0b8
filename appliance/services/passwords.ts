/*
 * Password hashing for every login Moat has (SMTP AUTH, web UI, API): scrypt from Node's
 * crypto, so no native dependency. The stored form names its parameters, so they can be
 * raised later without invalidating old hashes.
 *
 * Format: scrypt$N$r$p$<salt base64>$<hash base64>
 */
import crypto from 'node:crypto'

const N = 1 << 15
const R = 8
const P = 1
const KEYLEN = 32
// scrypt needs 128*N*r bytes; Node's default cap (32 MiB) is exactly that, so allow headroom.
const MAXMEM = 64 * 1024 * 1024

export const MIN_PASSWORD_LENGTH = 10

function scrypt(password: string, salt: Buffer, n: number, r: number, p: number, len: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    crypto.scrypt(password.normalize('NFKC'), salt, len, { N: n, r, p, maxmem: MAXMEM }, (err, key) => (err ? reject(err) : resolve(key))),
  )
}

export async function hashPassword(password: string): Promise<string> {
  if (password.length < MIN_PASSWORD_LENGTH) throw new Error(`a password needs at least ${MIN_PASSWORD_LENGTH} characters`)
  const salt = crypto.randomBytes(16)
  const key = await scrypt(password, salt, N, R, P, KEYLEN)
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64')}$${key.toString('base64')}`
}

// Verifying against a missing hash still costs one scrypt, so "no such user" and "wrong
// password" take the same time.
const DUMMY = `scrypt$${N}$${R}$${P}$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(KEYLEN).toString('base64')}`

export async function verifyPassword(password: string, stored: string | null | undefined): Promise<boolean> {
  const parts = (stored || DUMMY).split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [n, r, p] = parts.slice(1, 4).map(Number)
  const salt = Buffer.from(parts[4], 'base64')
  const expected = Buffer.from(parts[5], 'base64')
  if (!(n > 1 && r > 0 && p > 0 && expected.length >= 16)) return false
  const key = await scrypt(password, salt, n, r, p, expected.length)
  return crypto.timingSafeEqual(key, expected) && !!stored
}
