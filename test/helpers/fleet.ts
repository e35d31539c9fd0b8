/*
 * A host enrolled straight into a console's store, with its own Ed25519 key, whose reports go
 * through the console's real ingest, signed as an agent signs them.
 */
import crypto from 'node:crypto'
import type { Fleet } from '../../appliance/fleet/console'
import { type HostKind, REPORTS_PATH, sign } from '../../appliance/fleet/protocol'

export interface TestHost {
  hostId: number
  /** Sends reports as one signed batch, numbered on from the last; the console's answer. */
  send(reports: { kind: string; at: number; data: unknown }[], now?: number): ReturnType<Fleet['ingest']>
}

export function enrollTestHost(fleet: Fleet, orgId: number, name: string, kind: HostKind = 'linux', at = Date.now()): TestHost {
  const keys = crypto.generateKeyPairSync('ed25519')
  const publicKey = keys.publicKey.export({ format: 'der', type: 'spki' }).toString('base64')
  const { hostId } = fleet.enroll({ token: fleet.createToken(orgId, { by: 'test' }, at).token, publicKey, name, kind }, at)
  let seq = 0
  return {
    hostId,
    send(reports, now = at) {
      const body = JSON.stringify({ reports: reports.map((r) => ({ seq: ++seq, ...r })) })
      return fleet.ingest(hostId, sign(keys.privateKey, 'POST', REPORTS_PATH, hostId, body), 'POST', REPORTS_PATH, body, now)
    },
  }
}
