/*
 * What every admin API group shares: the organisation by name within the token's scope (any
 * other is a 404, as in the UI), the role checks, tenant errors turned into 400 / 409, and
 * the audit log line every change writes.
 */
import type { Db } from '../../appliance/db/database'
import type { Accounts, Principal, Scope } from '../../appliance/services/accounts'
import type { RawStore } from '../../appliance/services/raw-store'
import { type Domain, type Organisation, TenantError, Tenants } from '../../appliance/services/tenants'
import { type AdminApi, ApiError } from './define'

export type Role = Principal['role']

export interface ApiContext {
  api: AdminApi
  db: Db
  accounts: Accounts
  raws: RawStore
  tenants: Tenants
  /** The organisation by name, if the token's scope includes it; otherwise a 404. */
  orgIn(scope: Scope, name: string): Organisation
  /** The domain by name, if it is this organisation's; otherwise a 404. */
  domainIn(org: Organisation, name: string): Domain
  /** Refuses (403) a role not among these. */
  only(principal: Principal, roles: Role[], what: string): void
  /** Runs a service call, turning its TenantError (or another error class given) into a 400, or 409 for "exists already". */
  call<T>(fn: () => T, ...errors: (new (...a: never[]) => Error)[]): T
  audit(principal: Principal, action: string, detail: string): void
}

export function apiContext(api: AdminApi, db: Db, accounts: Accounts, raws: RawStore): ApiContext {
  const tenants = new Tenants(db)
  return {
    api, db, accounts, raws, tenants,
    orgIn(scope, name) {
      const org = tenants.orgByName(name)
      if (!org || (scope.orgIds !== null && !scope.orgIds.includes(org.id))) throw new ApiError(404, `no organisation "${name}"`)
      return org
    },
    domainIn(org, name) {
      const d = tenants.domainByName(name)
      if (!d || d.org_id !== org.id) throw new ApiError(404, `no domain ${name} in ${org.name}`)
      return d
    },
    only(principal, roles, what) {
      if (!roles.includes(principal.role)) throw new ApiError(403, `only ${roles.map((r) => r.replace('_', ' ')).join(' and ')}s may ${what}`)
    },
    call(fn, ...errors) {
      try {
        return fn()
      } catch (err) {
        if (err instanceof TenantError || errors.some((e) => err instanceof e)) throw new ApiError(/(exists|registered) already/.test((err as Error).message) ? 409 : 400, (err as Error).message)
        throw err
      }
    },
    audit: (p, action, detail) => accounts.audit(p, action, `${detail} (API)`),
  }
}

export const MSP_ROLES: Role[] = ['appliance_admin', 'msp_admin']
