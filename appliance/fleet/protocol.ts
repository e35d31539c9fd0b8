/*
 * What the agent and the console agree on: the wire format of enrollment and reports, and
 * how a request is signed. Agent-initiated HTTPS only, so nothing listens at a customer site.
 *
 * Identity: the agent makes its own Ed25519 key pair; enrollment (with a one-organisation
 * token) gives the console its public key and the agent its host id. Every later request
 * is signed over method, path, host id and the SHA-256 of the body; the body's reports carry
 * the agent's own sequence numbers, strictly increasing, and the console refuses any that
 * does not follow the last one it stored: a replay stores nothing, and an agent that never
 * heard the answer to a delivered batch learns the last stored number and drops what it has.
 */
import crypto from 'node:crypto'

export const ENROLL_PATH = '/fleet/v1/enroll'
export const REPORTS_PATH = '/fleet/v1/reports'
/** GET ?since=VERSION, signed like a report (empty body): what the MSP's other appliances learned (fleet/learning.ts). */
export const FINGERPRINTS_PATH = '/fleet/v1/fingerprints'
/** The console's Ed25519 signature over a fingerprints bundle's body, and its public key (SPKI DER, base64). */
export const BUNDLE_SIGNATURE_HEADER = 'x-moat-bundle-signature'
export const BUNDLE_KEY_HEADER = 'x-moat-bundle-key'
export const HOST_HEADER = 'x-moat-host'
export const SIGNATURE_HEADER = 'x-moat-signature'

export const REPORT_KINDS = ['inventory', 'metrics', 'logs', 'health', 'command', 'fingerprints'] as const
export type ReportKind = (typeof REPORT_KINDS)[number]
export const HOST_KINDS = ['appliance', 'linux', 'windows'] as const
export type HostKind = (typeof HOST_KINDS)[number]

/** At most this much per request: a batch, never the whole backlog of a week away. */
export const MAX_BODY_BYTES = 1024 * 1024
export const MAX_REPORTS_PER_BATCH = 200

export interface Report {
  seq: number
  kind: ReportKind
  /** when the agent took it (ms since the epoch) */
  at: number
  data: unknown
}

/**
 * What the console may ask of a host. Commands wait at the console until the host next
 * reports (a host that is offline runs them when it is back); every answer to a batch of
 * reports carries those not yet done, and the agent reports each result as a 'command'
 * report ({ id, ok, output }), running each id once.
 */
export const COMMAND_KINDS = ['refresh-inventory', 'collect-logs', 'restart-services', 'apply-update'] as const
export type CommandKind = (typeof COMMAND_KINDS)[number]
/** Commands only a Moat appliance can run (its services, its releases). */
export const APPLIANCE_COMMANDS: readonly CommandKind[] = ['restart-services', 'apply-update']

export interface Command {
  id: number
  kind: CommandKind
  /** apply-update: the https:// URL of a signed release (.moat) */
  arg?: string | null
}

/** A command's output the console keeps (a log bundle is the largest). */
export const MAX_COMMAND_OUTPUT = 256 * 1024

export interface EnrollRequest {
  token: string
  /** the agent's Ed25519 public key, SPKI DER in base64 */
  publicKey: string
  name: string
  kind: HostKind
  version?: string
  os?: string
}

export function signedText(method: string, path: string, hostId: number, body: string): Buffer {
  const digest = crypto.createHash('sha256').update(body).digest('hex')
  return Buffer.from(`${method.toUpperCase()}\n${path}\n${hostId}\n${digest}`)
}

export function sign(privateKey: crypto.KeyObject, method: string, path: string, hostId: number, body: string): string {
  return crypto.sign(null, signedText(method, path, hostId, body), privateKey).toString('base64')
}

export function verify(publicKeyB64: string, signature: string, method: string, path: string, hostId: number, body: string): boolean {
  try {
    const key = crypto.createPublicKey({ key: Buffer.from(publicKeyB64, 'base64'), format: 'der', type: 'spki' })
    if (key.asymmetricKeyType !== 'ed25519') return false
    return crypto.verify(null, signedText(method, path, hostId, body), key, Buffer.from(signature, 'base64'))
  } catch {
    return false
  }
}

/** The console certificate's pin, as `sha256/<base64>` of its DER (what the agent checks on every connection). */
export function certificatePin(der: Buffer): string {
  return `sha256/${crypto.createHash('sha256').update(der).digest('base64')}`
}
