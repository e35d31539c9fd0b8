/*
 * Debian's OpenLDAP server (slapd) on a free loopback port with an Active Directory-like
 * schema: Debian's own msuser.schema (Microsoft's user class, with proxyAddresses and
 * userAccountControl). The suffix's root account loads entries; a read-only service account,
 * as an admin would make for Moat, reads them. Anonymous users read nothing.
 */
import { tcpAnswers } from '../../appliance/net/tcp-answers'
import { type ChildProcess, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { Client } from 'ldapts'
import { freePort } from './appliance'

export const SUFFIX = 'dc=corp,dc=test'
export const ROOT_DN = `cn=admin,${SUFFIX}`
export const READER_DN = `cn=moat-reader,${SUFFIX}`
export const READER_PASSWORD = 'reader password 42'
const ROOT_PASSWORD = 'root password 42'

export interface Slapd {
  url: string
  /** a client bound as the suffix's root, to add and change entries */
  admin(): Promise<Client>
  stop(): Promise<void>
}

/** An AD user entry: the attributes Active Directory gives a mailbox user. */
export function adUser(cn: string, attrs: { mail?: string; proxyAddresses?: string[]; userAccountControl?: number; displayName?: string }) {
  return {
    objectClass: ['user'],
    cn,
    sn: cn,
    instanceType: '4',
    nTSecurityDescriptor: 'AQAEgA==',
    objectCategory: `cn=Person,cn=Schema,cn=Configuration,${SUFFIX}`,
    userAccountControl: String(attrs.userAccountControl ?? 512),
    ...(attrs.mail ? { mail: attrs.mail } : {}),
    ...(attrs.proxyAddresses ? { proxyAddresses: attrs.proxyAddresses } : {}),
    ...(attrs.displayName ? { displayName: attrs.displayName } : {}),
  }
}

export async function startSlapd(dir: string): Promise<Slapd> {
  fs.mkdirSync(path.join(dir, 'db'), { recursive: true })
  const port = await freePort()
  const config = path.join(dir, 'slapd.conf')
  fs.writeFileSync(
    config,
    [
      ...['core', 'cosine', 'inetorgperson', 'nis', 'msuser'].map((s) => `include /etc/ldap/schema/${s}.schema`),
      `pidfile ${path.join(dir, 'slapd.pid')}`,
      'modulepath /usr/lib/ldap',
      'moduleload back_mdb',
      'database mdb',
      `suffix "${SUFFIX}"`,
      `rootdn "${ROOT_DN}"`,
      `rootpw "${ROOT_PASSWORD}"`,
      `directory ${path.join(dir, 'db')}`,
      'access to attrs=userPassword by anonymous auth by * none',
      'access to * by users read by * none',
      '',
    ].join('\n'),
  )
  const url = `ldap://127.0.0.1:${port}`
  const proc: ChildProcess = spawn('/usr/sbin/slapd', ['-h', `${url}/`, '-f', config, '-d', '0'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let said = ''
  proc.stderr?.on('data', (d) => (said += d))
  for (let i = 0; i < 100 && !(await tcpAnswers('127.0.0.1', port)); i++) {
    if (proc.exitCode !== null) throw new Error(`slapd did not start: ${said}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  const server: Slapd = {
    url,
    async admin() {
      const c = new Client({ url })
      await c.bind(ROOT_DN, ROOT_PASSWORD)
      return c
    },
    async stop() {
      if (proc.exitCode !== null) return
      await new Promise((r) => (proc.once('exit', r), proc.kill('SIGTERM')))
    },
  }
  const admin = await server.admin()
  await admin.add(SUFFIX, { objectClass: ['dcObject', 'organization'], o: 'corp', dc: 'corp' })
  await admin.add(READER_DN, { objectClass: ['organizationalRole', 'simpleSecurityObject'], cn: 'moat-reader', userPassword: READER_PASSWORD })
  await admin.add(`ou=people,${SUFFIX}`, { objectClass: ['organizationalUnit'], ou: 'people' })
  await admin.add(`ou=empty,${SUFFIX}`, { objectClass: ['organizationalUnit'], ou: 'empty' })
  await admin.unbind()
  return server
}
