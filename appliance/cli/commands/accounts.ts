/* Sign-in accounts: web admins, and mailbox users' passwords (web UI and SMTP AUTH). */
import fs from 'node:fs'
import { Accounts, REQUIRE_ADMIN_TOTP } from '../../services/accounts'
import { StoredSettings } from '../../services/stored-settings'
import { RelayControl } from '../../services/relay'
import { type DigestFrequency, Digests } from '../../services/digests'
import { TenantError } from '../../services/tenants'
import { type Command, need, UsageError } from '../command'
import { appliance } from '../context'

export const accountCommands: Command[] = [
  {
    path: ['admin', 'create'],
    usage: '--email EMAIL (--password PASSWORD | --password-file FILE) [--msp NAME]',
    summary: 'Create a web admin: the appliance admin (everything), or with --msp an admin of that MSP (its organisations only; "local" is the first MSP, see moat msp add).',
    options: {
      email: { type: 'string', description: 'sign-in address' },
      password: { type: 'string', description: 'the password (visible to other local users in ps; prefer --password-file)' },
      'password-file': { type: 'string', description: 'file holding the password (- for standard input)' },
      msp: { type: 'string', description: 'an admin of this MSP rather than the appliance admin' },
    },
    async run({ opts, out }) {
      if (!opts.email) throw new UsageError('--email is required')
      let password = opts.password as string | undefined
      if (password === undefined) {
        if (!opts['password-file']) throw new UsageError('--password or --password-file is required')
        const file = String(opts['password-file'])
        password = fs.readFileSync(file === '-' ? 0 : file, 'utf8').split(/\r?\n/)[0]
      }
      const msp = typeof opts.msp === 'string' ? appliance().tenants.msp(opts.msp) : null
      const id = await new Accounts(appliance().db).createAdmin(String(opts.email), password, msp ? 'msp_admin' : 'appliance_admin', msp?.id)
      out(`${msp ? `MSP ${msp.name}` : 'appliance'} admin ${String(opts.email).toLowerCase()} created (id ${id})`)
    },
  },
  {
    path: ['user', 'password'],
    usage: 'EMAIL [--password-file FILE]',
    summary: "Set a user's password (SMTP AUTH on the submission port, web UI). Read from FILE or the first line of standard input.",
    options: { 'password-file': { type: 'string', description: 'file holding the password (- for standard input)' } },
    async run({ args, opts, out }) {
      need(args, 1, 'e-mail address')
      const file = String(opts['password-file'] ?? '-')
      const text = fs.readFileSync(file === '-' ? 0 : file, 'utf8')
      const password = text.split(/\r?\n/)[0]
      await new RelayControl(appliance().db).setPassword(args[0], password)
      out(`password set for ${args[0].toLowerCase()}`)
    },
  },
  {
    path: ['user', 'digest'],
    usage: 'EMAIL on|off [--frequency hourly|every4h|daily] [--surespam on|off] [--json]',
    summary: "Switch a user's quarantine digest (off for new accounts), its frequency, and whether it lists surespam.",
    options: {
      frequency: { type: 'string', description: 'hourly, every4h or daily (default daily)' },
      surespam: { type: 'string', description: 'on: list surespam too (default off)' },
      json: { type: 'boolean', description: 'print JSON' },
    },
    run({ args, opts, out }) {
      need(args, 2, 'e-mail address and on|off')
      if (!['on', 'off'].includes(args[1])) throw new UsageError('say on or off')
      const a = appliance()
      const u = a.tenants.userByEmail(args[0].toLowerCase())
      if (!u) throw new TenantError(`no user "${args[0]}"`)
      const d = new Digests(a.db)
      const now = d.preferences(u.id)
      d.setPreferences(u.id, {
        enabled: args[1] === 'on',
        frequency: (opts.frequency as DigestFrequency | undefined) ?? now.frequency,
        includeSurespam: opts.surespam === undefined ? now.includeSurespam : opts.surespam === 'on',
      })
      const p = d.preferences(u.id)
      if (opts.json) return out(JSON.stringify(p))
      out(`digest for ${u.email}: ${p.enabled ? `on, ${p.frequency}${p.includeSurespam ? ', with surespam' : ''}` : 'off'}`)
    },
  },
  {
    path: ['admin', 'require-totp'],
    usage: 'on|off',
    summary: 'Whether appliance and MSP admins must use a TOTP second factor (on by default).',
    run({ args, out }) {
      if (args[0] !== 'on' && args[0] !== 'off') throw new UsageError('say on or off')
      new StoredSettings(appliance().db).set(REQUIRE_ADMIN_TOTP, args[0] === 'on')
      out(`a second factor is ${args[0] === 'on' ? 'required' : 'optional'} for appliance and MSP admins`)
    },
  },
]
