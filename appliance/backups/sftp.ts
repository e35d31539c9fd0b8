/*
 * Backups off the box over SFTP (ssh2-sftp-client over ssh2: a maintained SSH implementation
 * in JavaScript, so the appliance needs no ssh binary and no agent).
 *
 * The appliance signs in with its own ed25519 key, made the first time it is needed and kept
 * in the database: a restored appliance goes on writing to the same server. The admin adds
 * its public key to the server's authorized_keys. The server's host key is pinned: the first
 * connection (made when the admin sets the target, who sees the fingerprint) records it, and
 * every later one must present the same key, so a backup never goes to an impostor.
 *
 * Uploads go to NAME.partial and are renamed once complete and of the right size: a copy cut
 * off half-way is never taken for a backup, and pruning never counts one.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type SftpClient from 'ssh2-sftp-client'
import type { StoredSettings } from '../services/stored-settings'

// Loaded when first used: every `moat` command loads this module, and ssh2 alone took a
// third of a second of each one's start (the test suite runs the CLI hundreds of times).
const sftpClient = (): typeof SftpClient => require('ssh2-sftp-client')
const sshUtils = (): typeof import('ssh2').utils => require('ssh2').utils

const KEY_SETTING = 'backup_ssh_key'

export interface SftpTarget {
  host: string
  port: number
  username: string
  /** folder on the server the backups go to */
  path: string
  /** the pinned host key, as OpenSSH prints it (SHA256:…), or null until the first connection */
  hostKey: string | null
}

export class SftpError extends Error {}

/** The appliance's key pair for SFTP, made at first use. */
export function backupKey(settings: StoredSettings): { privateKey: string; publicKey: string } {
  let key = settings.get<{ privateKey: string; publicKey: string } | null>(KEY_SETTING, null)
  if (!key) {
    const pair = sshUtils().generateKeyPairSync('ed25519', { comment: 'moat-backup' })
    key = { privateKey: pair.private, publicKey: pair.public }
    settings.set(KEY_SETTING, key)
  }
  return key
}

/** A host key's fingerprint in OpenSSH's form, so the admin can compare it with `ssh-keygen -lf`. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${crypto.createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`
}

/** What a listing gives: the backups in the target folder, newest first. */
export interface RemoteFile {
  name: string
  size: number
  modified: number
}

export class SftpStore {
  /** The fingerprint the server presented on the last connection. */
  seenHostKey: string | null = null

  constructor(
    private readonly target: SftpTarget,
    private readonly key: { privateKey: string },
    private readonly timeoutMs = 20_000,
  ) {}

  private async connect(): Promise<SftpClient> {
    const client = new (sftpClient())('moat-backup')
    const t = this.target
    try {
      await client.connect({
        host: t.host,
        port: t.port,
        username: t.username,
        privateKey: this.key.privateKey,
        readyTimeout: this.timeoutMs,
        hostVerifier: (key: Buffer) => {
          this.seenHostKey = fingerprint(key)
          return t.hostKey === null || t.hostKey === this.seenHostKey
        },
      })
    } catch (err) {
      await client.end().catch(() => undefined)
      const msg = (err as Error).message
      if (this.seenHostKey && t.hostKey && this.seenHostKey !== t.hostKey) {
        throw new SftpError(`${t.host}:${t.port} presented host key ${this.seenHostKey}, not the pinned ${t.hostKey}: refusing to send backups there (if the server's key really changed, set the target again)`)
      }
      if (/authentication/i.test(msg)) throw new SftpError(`${t.username}@${t.host}:${t.port} refused the appliance's key: add it to that account's authorized_keys`)
      throw new SftpError(`cannot reach ${t.host}:${t.port} over SFTP: ${msg}`)
    }
    return client
  }

  private async session<T>(work: (c: SftpClient) => Promise<T>): Promise<T> {
    const client = await this.connect()
    try {
      return await work(client)
    } catch (err) {
      if (err instanceof SftpError) throw err
      throw new SftpError(`SFTP on ${this.target.host}: ${(err as Error).message}`)
    } finally {
      await client.end().catch(() => undefined)
    }
  }

  /** Connects, checks the folder is there and writable, and returns the host key seen. */
  check(): Promise<string> {
    return this.session(async (c) => {
      const probe = `${this.target.path}/.moat-write-test-${crypto.randomBytes(4).toString('hex')}`
      if (!(await c.exists(this.target.path))) throw new SftpError(`${this.target.path} does not exist on ${this.target.host}`)
      await c.put(Buffer.from('moat\n'), probe)
      await c.delete(probe)
      return this.seenHostKey as string
    })
  }

  /** Uploads a file under its own name, whole or not at all. */
  upload(file: string): Promise<void> {
    const name = path.basename(file)
    const size = fs.statSync(file).size
    return this.session(async (c) => {
      const partial = `${this.target.path}/${name}.partial`
      await c.fastPut(file, partial)
      const stat = await c.stat(partial)
      if (stat.size !== size) throw new SftpError(`the copy on ${this.target.host} has ${stat.size} bytes, not ${size}`)
      await c.rename(partial, `${this.target.path}/${name}`)
    })
  }

  list(matches: (name: string) => boolean): Promise<RemoteFile[]> {
    return this.session(async (c) => {
      const files = await c.list(this.target.path)
      return files
        .filter((f) => f.type === '-' && matches(f.name))
        .map((f) => ({ name: f.name, size: f.size, modified: f.modifyTime }))
        .sort((a, b) => (a.name < b.name ? 1 : -1))
    })
  }

  remove(names: string[]): Promise<void> {
    return this.session(async (c) => {
      for (const name of names) await c.delete(`${this.target.path}/${name}`, true)
    })
  }

  download(name: string, to: string): Promise<void> {
    return this.session(async (c) => {
      await c.fastGet(`${this.target.path}/${name}`, to)
    })
  }
}
