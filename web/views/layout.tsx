/* The page frame: navigation by role, the CSRF token for htmx, assets served by the app itself. */
import type { Child } from 'hono/jsx'
import type { Session } from '../../appliance/services/accounts'

export function Layout(props: { title: string; session: Session | null; children: Child }) {
  const s = props.session
  const admin = s?.principal.role === 'appliance_admin'
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        {/* htmx must not inject its inline indicator style: the CSP allows no inline styles. */}
        <meta name="htmx-config" content='{"includeIndicatorStyles":false}' />
        <title>{props.title} · Moat</title>
        <link rel="stylesheet" href="/static/moat.css" />
        <link rel="icon" href="/static/favicon.svg" type="image/svg+xml" />
        <script src="/static/htmx.min.js" defer></script>
        <link rel="stylesheet" href="/static/uPlot.min.css" />
        <script src="/static/uPlot.iife.min.js" defer></script>
        <script src="/static/plots.js" defer></script>
      </head>
      <body hx-headers={s ? JSON.stringify({ 'X-CSRF-Token': s.csrf }) : undefined}>
        <header>
          <strong>Moat</strong>
          {s && (
            <nav>
              <a href="/">Today</a>
              <a href="/quarantine">Quarantine</a>
              <a href="/archive">Archive</a>
              <a href="/lists">Lists</a>
              <a href="/tracking">Tracking</a>
              {s.principal.role !== 'user' && <a href={s.principal.orgId && s.principal.role === 'org_admin' ? `/orgs/${s.principal.orgId}` : '/orgs'}>Organisations</a>}
              {s.principal.role !== 'user' && <a href="/stats">Statistics</a>}
              {s.principal.role !== 'user' && <a href="/rules">Rules</a>}
              {admin && <a href="/delivery">Delivery</a>}
              {admin && <a href="/outbound">Outbound</a>}
              {s.principal.role !== 'user' && <a href="/fleet">Fleet</a>}
              {s.principal.role !== 'user' && <a href="/audit">Audit</a>}
              {admin && <a href="/msps">MSPs</a>}
              {admin && <a href="/status">Status</a>}
              {admin && <a href="/settings">Settings</a>}
              <a href="/about">About</a>
              <a href="/account">{s.principal.email}</a>
              <form method="post" action="/logout" class="inline">
                <input type="hidden" name="_csrf" value={s.csrf} />
                <button type="submit">Sign out</button>
              </form>
            </nav>
          )}
        </header>
        {s?.viewOrgName ? (
          <form method="post" action="/view/leave" class="banner">
            <input type="hidden" name="_csrf" value={s.csrf} />
            Working inside {s.viewOrgName}: you see only its mail and settings. <button type="submit">Back to all organisations</button>
          </form>
        ) : null}
        {s?.openAlerts ? (
          <p class="banner" role="alert"><a href="/alerts">{s.openAlerts === 1 ? '1 open alert' : `${s.openAlerts} open alerts`}</a> — held senders or the appliance on a blocklist need a look.</p>
        ) : null}
        <main>{props.children}</main>
      </body>
    </html>
  )
}

export function Csrf(props: { session: Session }) {
  return <input type="hidden" name="_csrf" value={props.session.csrf} />
}

/**
 * The line that says what an action just did ("Released 3 messages."). Actions redirect with
 * ?done=<what>&n=<count>; only the known kinds are shown, so a crafted link cannot put words
 * on the page.
 */
const DONE: Record<string, (n: number) => string> = {
  release: (n) => `Released ${n} message${n === 1 ? '' : 's'}.`,
  delete: (n) => `Deleted ${n} message${n === 1 ? '' : 's'}.`,
  'not-spam': (n) => `Released ${n} message${n === 1 ? '' : 's'} and reported ${n === 1 ? 'it' : 'them'} as not spam: Moat learns from ${n === 1 ? 'it' : 'them'}.`,
  'allow-sender': () => 'Sender allowed; the message was released.',
  'block-sender': () => 'Sender blocked: their mail will be quarantined.',
  'report-spam': () => 'Reported as spam: Moat learns from it, and mail like it will be caught.',
  'list-added': () => 'Added to the list: it applies to the next message.',
  'list-removed': () => 'Removed from the list.',
  'rule-added': () => 'Rule added: it applies to the next message.',
  'rule-on': () => 'Rule switched on.',
  'rule-off': () => 'Rule switched off.',
  'rule-removed': () => 'Rule removed.',
  'totp-on': () => 'The second factor is on: signing in asks for a code from now on.',
  'totp-off': () => 'The second factor is off.',
  'token-revoked': () => 'Token revoked: whatever held it is signed out.',
  'alert-ack': () => 'Alert acknowledged.',
  'org-created': () => 'Organisation created.',
  'policy-saved': () => 'Policy saved: it applies to the next message.',
  suspended: () => 'Suspended: its mail is refused until it is resumed.',
  resumed: () => 'Resumed: its mail is accepted again.',
  'domain-added': () => 'Domain added: its mail is accepted from now on.',
  'domain-removed': () => 'Domain removed: its mail is refused from now on.',
  'org-removed': (n) => `Organisation removed, with ${n} archived message${n === 1 ? '' : 's'}.`,
  'tag-mode': (n) => `Tag mode is ${n ? 'on: spam is delivered with X-Moat headers' : 'off: spam is quarantined'}.`,
  'catch-all': (n) => `Catch-all is ${n ? 'on: every local part is accepted' : 'off: only known users and aliases are accepted'}.`,
  'verify-recipients': (n) => `Recipient verification is ${n ? "on: unknown recipients are asked of the domain's server" : 'off'}.`,
  digests: (n) => `Digests changed for ${n} user${n === 1 ? '' : 's'}.`,
  'digest-sender': () => 'Digest sender saved.',
  'user-added': () => 'User added.',
  'user-role': () => 'Role changed.',
  'user-removed': () => 'User removed: mail to the address is refused unless the domain is catch-all.',
  'user-password': () => 'Password set: it works for the web and for SMTP AUTH from now on.',
  'alias-added': () => 'Alias added: its mail goes to the user from now on.',
  'alias-removed': () => 'Alias removed.',
  'dkim-make': () => 'DKIM key made: publish the record below, then switch signing on.',
  'dkim-enable': () => 'Outbound mail is signed with DKIM from now on.',
  'dkim-disable': () => 'DKIM signing is off.',
  'dkim-rotate': () => 'New DKIM key made: signing is off until its record is published and it is switched on.',
  'sender-held': () => 'Sender held: their outbound mail waits here until released.',
  'sender-released': (n) => `Sender released: ${n} held deliver${n === 1 ? 'y goes' : 'ies go'} out now.`,
  'relay-added': () => 'The network may relay for this organisation (its own domains as sender only).',
  'relay-removed': () => 'The network may no longer relay.',
  'route-added': () => 'Route added: it applies to the next delivery.',
  'route-removed': () => 'Route removed: that mail goes by DNS MX again.',
  'reports-learned': (n) => `Learned ${n} report${n === 1 ? '' : 's'}: the mail path uses the new model within seconds.`,
  'taught-spam': (n) => `Learned ${n} message${n === 1 ? '' : 's'} as spam: the mail path uses the new model within seconds.`,
  'taught-ham': (n) => `Learned ${n} message${n === 1 ? '' : 's'} as not spam: the mail path uses the new model within seconds.`,
  'rules-imported': (n) => `Imported ${n} rule${n === 1 ? '' : 's'}: they apply to the next message.`,
  'fingerprints-revoked': (n) => `Withdrew ${n} fingerprint${n === 1 ? '' : 's'}: the mail path drops them within seconds.`,
  retention: () => 'Saved: the nightly clean-up keeps records this long from now on.',
  'totp-required': () => 'Appliance and MSP admins must use a second factor from their next sign-in.',
  'totp-optional': () => 'A second factor is optional for admins now.',
  'bounce-key': () => 'New bounce key: outbound mail is stamped with it from now on.',
  'fleet-incidents': () => 'Saved: fleet incidents go there from the next one.',
  'fleet-agents': () => 'Saved: the agents follow at their next report.',
  'fleet-thresholds': () => 'Saved: incidents open at these thresholds from the next check.',
  'rbl-checked': (n) => (n ? `Checked: listed on ${n} blocklist${n === 1 ? '' : 's'}, below.` : 'Checked: not listed anywhere.'),
  'rbl-ips': () => 'Saved: these addresses are watched from the next check.',
  'rbl-zones': () => 'Saved: these blocklists are watched from the next check.',
  'command-queued': () => 'Command queued: it runs when the host next reports.',
  'learning-withdrawn': (n) => `Withdrew ${n} fingerprint${n === 1 ? '' : 's'} this host shared; the other appliances drop them at their next pull.`,
  'host-revoked': () => 'Host revoked: its agent is refused from now on.',
  'msp-added': () => 'MSP added: give it an admin, then its organisations.',
  'msp-admin-added': () => 'MSP admin added: they see only that MSP\'s organisations.',
  'org-moved': () => 'Organisation handed over: the other MSP\'s admins manage it from now on.',
}

/** The ?done= and ?n= of a page's request, for <Done>. */
export function doneOf(c: { req: { query(name: string): string | undefined } }): { done?: string; n?: string } {
  return { done: c.req.query('done'), n: c.req.query('n') }
}

export function Done(props: { done?: string; n?: string }) {
  const say = props.done ? DONE[props.done] : undefined
  if (!say) return null
  const n = Math.max(0, Math.min(100_000, Number(props.n) || 0))
  return <p class="done" role="status" id="done">{say(n)}</p>
}

export function when(ms: number | null): string {
  return ms ? new Date(ms).toISOString().replace('T', ' ').slice(0, 16) : ''
}
