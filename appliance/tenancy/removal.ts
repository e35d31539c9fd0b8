/*
 * Removing an organisation or a domain, for the CLI and the UI alike. Before an admin confirms,
 * they are shown what goes with it (footprint). An organisation is suspended first, so no new
 * mail is accepted for it while its archive is deleted batch by batch; only then does its row
 * go, and the foreign keys take its domains, users, lists and settings with it. Deleting the
 * messages ourselves (rather than leaving them to the cascade) also removes their full-text
 * index entries and raw bytes, which no foreign key reaches: left behind, a later message that
 * reused a row id would match another tenant's words.
 */
import type { Db } from '../db/database'
import type { Archive } from '../services/archive'
import { Tenants } from '../services/tenants'

export interface OrgFootprint {
  domains: number
  users: number
  aliases: number
  messages: number
  quarantined: number
  /** Accepted mail not yet delivered to the customer's server: removal means it never will be. */
  undelivered: number
}

export function orgFootprint(db: Db, orgId: number): OrgFootprint {
  return db
    .prepare(
      `SELECT (SELECT count(*) FROM domains WHERE org_id = @id) AS domains,
              (SELECT count(*) FROM users WHERE org_id = @id) AS users,
              (SELECT count(*) FROM aliases WHERE org_id = @id) AS aliases,
              (SELECT count(*) FROM messages WHERE org_id = @id) AS messages,
              (SELECT count(*) FROM quarantine WHERE org_id = @id AND released_at IS NULL) AS quarantined,
              (SELECT count(*) FROM deliveries WHERE org_id = @id AND state IN ('pending', 'queued', 'deferred')) AS undelivered`,
    )
    .get({ id: orgId }) as OrgFootprint
}

export function domainFootprint(db: Db, domainId: number): { users: number; aliases: number } {
  return db
    .prepare(`SELECT (SELECT count(*) FROM users WHERE domain_id = @id) AS users, (SELECT count(*) FROM aliases WHERE domain_id = @id) AS aliases`)
    .get({ id: domainId }) as { users: number; aliases: number }
}

/** Suspends, drops the archive in batches, then deletes the organisation. Returns messages dropped. */
export async function removeOrganisation(db: Db, archive: Archive, name: string): Promise<number> {
  const tenants = new Tenants(db)
  const org = tenants.requireOrg(name)
  tenants.setSuspended(org.name, true)
  const dropped = await archive.dropOrganisation(org.id)
  tenants.removeOrg(org.name)
  return dropped
}
