/*
 * Runtime settings of one appliance process, read once from the environment.
 *
 * Dev mode (the default) listens on loopback only and keeps everything under ./var, so
 * `npm start` needs no root. The image sets MOAT_DATA_DIR=/var/lib/moat and real ports.
 * Every setting has one name, used the same in docs, env and code.
 */
import os from 'node:os'
import path from 'node:path'

export interface Settings {
  /** Root of all state: SQLite files, spool, Haraka's queue and rendered config. */
  dataDir: string
  /** Address SMTP and web listen on. */
  listen: string
  smtpPort: number
  /** Submission port (SMTP AUTH after STARTTLS, for users sending outbound mail). */
  submissionPort: number
  webPort: number
  /** Hard cap Haraka enforces while reading DATA; organisations may set lower limits. */
  maxMessageBytes: number
  /** host:port of a DNS server to use instead of the system resolver (tests). */
  dnsServer: string | null
  /** clamd address (host:port or a Unix socket path); null = antivirus off. */
  clamd: string | null
  /** This appliance's host name: SMTP banner, Received and Authentication-Results headers. */
  hostname: string
  /** Seconds to connect to another server and to wait for each of its answers. */
  outboundTimeoutSeconds: number
  /** Seconds an SMTP client may stay silent before it is answered 421 and disconnected. */
  smtpIdleTimeoutSeconds: number
  /** The web UI's address as users reach it, for links in digests (default: the dev listener). */
  publicUrl: string
  /** Serve the web UI over HTTPS with the appliance's certificate (the image does; dev does not). */
  webTls: boolean
  /** The update feed the About page checks: a URL, or a local file (MOAT_UPDATE_FEED). */
  updateFeed: string | null
  /** Haraka log level: error, warn, notice, info, debug. */
  logLevel: string
  /** Where releases are installed (releases/<version>, current): /opt/moat on the image. */
  installRoot: string
  /** Public keys a release must be signed with (MOAT_RELEASE_KEYS). */
  releaseKeys: string
  /** A command taking "stop"/"start" for all services; null = systemctl on the units. */
  serviceControl: string | null
  /** The setup wizard offers host name and network (the image: a root unit applies them). */
  hostSettings: boolean
}

function port(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new Error(`${name} must be a TCP port number (0-65535), got "${raw}"`)
  }
  return n
}

function seconds(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1 || n > 3600) throw new Error(`${name} must be a whole number of seconds (1-3600), got "${raw}"`)
  return n
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const maxRaw = env.MOAT_MAX_MESSAGE_BYTES
  const maxMessageBytes = maxRaw ? Number(maxRaw) : 50 * 1024 * 1024
  if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 1024) {
    throw new Error(`MOAT_MAX_MESSAGE_BYTES must be a whole number of bytes >= 1024, got "${maxRaw}"`)
  }
  const listen = env.MOAT_LISTEN || '127.0.0.1'
  const webPort = port('MOAT_WEB_PORT', 8080)
  const publicUrl = (env.MOAT_PUBLIC_URL || `http://${listen.includes(':') ? `[${listen}]` : listen}:${webPort}`).replace(/\/+$/, '')
  if (!/^https?:\/\/[^/\s]+$/.test(publicUrl)) throw new Error(`MOAT_PUBLIC_URL must be http(s)://host[:port], got "${env.MOAT_PUBLIC_URL}"`)
  return {
    publicUrl,
    dataDir: path.resolve(env.MOAT_DATA_DIR || 'var'),
    listen,
    smtpPort: port('MOAT_SMTP_PORT', 2525),
    submissionPort: port('MOAT_SUBMISSION_PORT', 2587),
    webPort,
    maxMessageBytes,
    dnsServer: env.MOAT_DNS_SERVER || null,
    clamd: env.MOAT_CLAMD || null,
    hostname: env.MOAT_HOSTNAME || os.hostname(),
    logLevel: env.MOAT_LOG_LEVEL || 'notice',
    updateFeed: env.MOAT_UPDATE_FEED || null,
    installRoot: path.resolve(env.MOAT_INSTALL_ROOT || '/opt/moat'),
    releaseKeys: path.resolve(env.MOAT_RELEASE_KEYS || '/etc/moat/release-keys'),
    serviceControl: env.MOAT_SERVICE_CONTROL || null,
    hostSettings: env.MOAT_HOST_SETTINGS === '1',
    webTls: env.MOAT_WEB_TLS === '1' || env.MOAT_WEB_TLS === 'true',
    outboundTimeoutSeconds: seconds(env.MOAT_OUTBOUND_TIMEOUT, 'MOAT_OUTBOUND_TIMEOUT', 30),
    smtpIdleTimeoutSeconds: seconds(env.MOAT_SMTP_IDLE_TIMEOUT, 'MOAT_SMTP_IDLE_TIMEOUT', 60),
  }
}

export function databasePath(dataDir: string): string {
  return path.join(dataDir, 'moat.db')
}

export function spoolDir(dataDir: string): string {
  return path.join(dataDir, 'spool')
}
