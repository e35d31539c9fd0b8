/*
 * The agent: enrolls once, then buffers every report before it tries to send it, and sends
 * the buffer in sequence order, signed, in bounded batches. A report is sent at least once and
 * stored once (the console keys reports by host and sequence). While the console is away the
 * agent backs off with jitter (5 s doubling to 5 minutes), so that a console restart is not a
 * stampede of every agent at once, and catches up a batch at a time.
 */
import crypto from 'node:crypto'
import os from 'node:os'
import { type Command, ENROLL_PATH, HOST_HEADER, type HostKind, MAX_BODY_BYTES, MAX_REPORTS_PER_BATCH, REPORTS_PATH, SIGNATURE_HEADER, sign } from '../fleet/protocol'
import type { AgentConfig } from '../fleet/agent-config'
import { type Answer, request } from './client'
import type { AgentState } from './state'

export class AgentError extends Error {}

export const BACKOFF_MIN_MS = 5000
export const BACKOFF_MAX_MS = 5 * 60_000

export interface EnrollOptions {
  token: string
  kind: HostKind
  version: string
  name?: string
  /** the console key pin given on the install line; otherwise the one first seen is kept */
  pin?: string
}

export async function enroll(state: AgentState, consoleUrl: string, opts: EnrollOptions): Promise<{ hostId: number; pin: string }> {
  const url = new URL(consoleUrl)
  if (url.protocol !== 'https:') throw new AgentError('the console URL must start with https://')
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519')
  const body = JSON.stringify({
    token: opts.token,
    publicKey: publicKey.export({ format: 'der', type: 'spki' }).toString('base64'),
    name: opts.name ?? os.hostname(),
    kind: opts.kind,
    version: opts.version,
    os: `${os.type()} ${os.release()}`,
  })
  let a: Answer
  try {
    a = await request(url.origin, { method: 'POST', path: ENROLL_PATH, body, pin: opts.pin ?? null })
  } catch (err) {
    throw new AgentError(`could not reach the console at ${url.origin}: ${(err as Error).message}`)
  }
  if (a.status !== 201) throw new AgentError(`the console refused the enrollment (${a.status}): ${safeError(a.body)}`)
  const r = JSON.parse(a.body) as { hostId: number; orgId: number }
  state.saveIdentity({ consoleUrl: url.origin, hostId: r.hostId, orgId: r.orgId, pin: a.pin, privateKey })
  return { hostId: r.hostId, pin: a.pin }
}

function safeError(body: string): string {
  try {
    return String((JSON.parse(body) as { error?: string }).error ?? body).slice(0, 200)
  } catch {
    return body.slice(0, 200)
  }
}

/** `config`: the console's settings for this host's organisation, from its last answer (undefined: no answer). */
export type FlushResult = { sent: number; pending: number; error?: string; commands?: Command[]; config?: AgentConfig | null }

/** Sends what is buffered, batch by batch, until the buffer is empty or the console fails. */
export async function flush(state: AgentState, opts: { maxBatches?: number } = {}): Promise<FlushResult> {
  const id = state.identity()
  if (!id) throw new AgentError('not enrolled: run "enroll URL --token T" first')
  let sent = 0
  let commands: Command[] = []
  let config: AgentConfig | null | undefined
  for (let b = 0; b < (opts.maxBatches ?? Infinity); b++) {
    const batch = state.next(MAX_REPORTS_PER_BATCH, MAX_BODY_BYTES / 2)
    if (!batch.length) break
    const body = `{"reports":[${batch.map((r) => `{"seq":${r.seq},"kind":${JSON.stringify(r.kind)},"at":${r.at},"data":${r.data}}`).join(',')}]}`
    let a: Answer
    try {
      a = await request(id.consoleUrl, {
        method: 'POST', path: REPORTS_PATH, body, pin: id.pin,
        headers: { [HOST_HEADER]: String(id.hostId), [SIGNATURE_HEADER]: sign(id.privateKey, 'POST', REPORTS_PATH, id.hostId, body) },
      })
    } catch (err) {
      return { sent, pending: state.pending(), error: (err as Error).message }
    }
    if (a.status === 200) {
      state.delivered(batch[batch.length - 1].seq)
      sent += batch.length
      const answer = JSON.parse(a.body) as { commands?: Command[]; config?: AgentConfig | null }
      commands = answer.commands ?? []
      config = answer.config ?? null
    } else if (a.status === 409) {
      // Delivered before, the answer lost: the console says how far it has them.
      const last = Number((JSON.parse(a.body) as { lastSeq?: number }).lastSeq)
      if (!Number.isSafeInteger(last) || last < batch[0].seq) return { sent, pending: state.pending(), error: `the console refused the batch: ${safeError(a.body)}` }
      state.delivered(last)
    } else {
      return { sent, pending: state.pending(), error: `the console answered ${a.status}: ${safeError(a.body)}` }
    }
  }
  return { sent, pending: state.pending(), commands, config }
}

/** The wait before the next try after `failures` failed flushes in a row: doubling, with full jitter. */
export function backoffMs(failures: number, random = Math.random, maxMs = BACKOFF_MAX_MS): number {
  const cap = Math.min(maxMs, BACKOFF_MIN_MS * 2 ** Math.max(0, failures - 1))
  return Math.round(cap / 2 + random() * (cap / 2))
}
