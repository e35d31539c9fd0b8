/*
 * The Outlook add-in, served by the appliance under /outlook/ (web/outlook/): the XML
 * add-in-only manifest made for this appliance (its own URL, an id made at first use), the
 * task pane and function file, their script (compiled from web/outlook/src), icons, the
 * sign-in dialog (/outlook/connect), and /outlook/, a page with the manifest to download and
 * how Exchange admins and users install it.
 *
 * Outlook frames the add-in's pages (Outlook on the web: outlook.office.com, or the
 * customer's own Exchange OWA host), and they load Office.js from Microsoft's CDN, as Office
 * requires: so these pages have a CSP of their own.
 */
import crypto from 'node:crypto'
import path from 'node:path'
import zlib from 'node:zlib'
import { type Context, Hono } from 'hono'
import type { Db } from '../../appliance/db/database'
import type { Accounts } from '../../appliance/services/accounts'
import { loadAssets } from '../assets'
import type { Env } from '../security'
import { Layout } from '../views/layout'
import { tokenConnectRoutes } from './token-connect'

const STATIC = path.resolve(__dirname, '../../../web/outlook')
const COMPILED = path.resolve(__dirname, '../outlook')
export const OFFICE_JS = 'https://appsforoffice.microsoft.com/lib/1/hosted/office.js'

/** Office.js from Microsoft's CDN; framed by Outlook, whose host the appliance cannot know (on-premises OWA). */
export const ADDIN_CSP = [
  "default-src 'self'",
  "script-src 'self' https://appsforoffice.microsoft.com",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  'frame-ancestors https:',
].join('; ')

const ICON_SIZES = [16, 32, 64, 80, 128] as const

/** The add-in's icon as a PNG: Moat's blue tile with a white envelope, drawn at any size. */
export function iconPng(size: number): Buffer {
  const rows: Buffer[] = []
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 3)
    for (let x = 0; x < size; x++) {
      const u = x / size
      const v = y / size
      const inEnvelope = u > 0.18 && u < 0.82 && v > 0.3 && v < 0.72
      // The flap: a V from the top corners to the middle.
      const flap = inEnvelope && Math.abs(v - 0.3 - (0.5 - Math.abs(u - 0.5)) * 0.7) < 0.05
      const [r, g, b] = inEnvelope && !flap ? [255, 255, 255] : [0x1f, 0x5f, 0xbf]
      row.writeUInt8(r, 1 + x * 3)
      row.writeUInt8(g, 2 + x * 3)
      row.writeUInt8(b, 3 + x * 3)
    }
    rows.push(row)
  }
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(data.length)
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(crc32(body))
    return Buffer.concat([len, body, crc])
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(size, 0)
  header.writeUInt32BE(size, 4)
  header.writeUInt8(8, 8) // 8 bits a channel
  header.writeUInt8(2, 9) // RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header), chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))])
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})
function crc32(buf: Buffer): number {
  let c = 0xffffffff
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

const xml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!)

/** The add-in's id: made at first use, so two appliances' add-ins never collide in a tenant. */
export function addinId(db: Db): string {
  const get = () => (db.prepare(`SELECT value FROM settings WHERE key = 'outlook_addin_id'`).get() as { value: string } | undefined)?.value
  const id = get()
  if (id) return id
  db.prepare(`INSERT OR IGNORE INTO settings (key, value) VALUES ('outlook_addin_id', ?)`).run(crypto.randomUUID())
  return get()!
}

/**
 * The XML add-in-only manifest (works with on-premises Exchange, Microsoft 365, Outlook on the
 * web, new and classic Outlook): a reading-pane button opening the task pane for every client,
 * and Outlook's own Report button (ReportPhishingCommandSurface, Mailbox 1.14) where supported.
 * ReadWriteMailbox: the task pane moves reported mail with EWS on clients without the button.
 */
export function outlookManifest(base: string, id: string, version: string): string {
  const url = (p: string) => xml(`${base}${p}`)
  const v = /^\d+\.\d+\.\d+$/.test(version) ? `${version}.0` : '1.0.0.0'
  // Each VersionOverrides names its own resources: the shared ones, and what only it uses.
  const resources = (indent: string, extra: { urls?: Record<string, string>; short?: Record<string, string>; long?: Record<string, string> }) => {
    const urls = { 'Taskpane.Url': '/outlook/taskpane.html', 'Commands.Url': '/outlook/commands.html', ...extra.urls }
    const short = { 'Group.Label': 'Moat', 'Pane.Label': 'Moat', ...extra.short }
    const long = { 'Pane.Tip': 'Report spam, your quarantine, allowed and blocked senders.', ...extra.long }
    const strings = (m: Record<string, string>) => Object.entries(m).map(([id, v]) => `<bt:String id="${id}" DefaultValue="${xml(v)}"/>`)
    return [
      '<Resources>',
      `  <bt:Images>${ICON_SIZES.map((s) => `<bt:Image id="Icon.${s}" DefaultValue="${url(`/outlook/icon-${s}.png`)}"/>`).join('')}</bt:Images>`,
      `  <bt:Urls>${Object.entries(urls).map(([id, p]) => `<bt:Url id="${id}" DefaultValue="${url(p)}"/>`).join('')}</bt:Urls>`,
      `  <bt:ShortStrings>${strings(short).join('')}</bt:ShortStrings>`,
      `  <bt:LongStrings>${strings(long).join('')}</bt:LongStrings>`,
      '</Resources>',
    ].map((l) => indent + l).join('\n')
  }
  const button = (idAttr: string) => `<Control xsi:type="Button" id="${idAttr}">
                  <Label resid="Pane.Label"/>
                  <Supertip><Title resid="Pane.Label"/><Description resid="Pane.Tip"/></Supertip>
                  <Icon><bt:Image size="16" resid="Icon.16"/><bt:Image size="32" resid="Icon.32"/><bt:Image size="80" resid="Icon.80"/></Icon>
                  <Action xsi:type="ShowTaskpane"><SourceLocation resid="Taskpane.Url"/></Action>
                </Control>`
  const readSurface = (idAttr: string) => `<ExtensionPoint xsi:type="MessageReadCommandSurface">
              <OfficeTab id="TabDefault">
                <Group id="moatGroup${idAttr}">
                  <Label resid="Group.Label"/>
                  ${button(`moatPane${idAttr}`)}
                </Group>
              </OfficeTab>
            </ExtensionPoint>`
  return `<?xml version="1.0" encoding="UTF-8"?>
<OfficeApp xmlns="http://schemas.microsoft.com/office/appforoffice/1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:bt="http://schemas.microsoft.com/office/officeappbasictypes/1.0" xmlns:mailappor="http://schemas.microsoft.com/office/mailappversionoverrides/1.0" xsi:type="MailApp">
  <Id>${xml(id)}</Id>
  <Version>${v}</Version>
  <ProviderName>Moat</ProviderName>
  <DefaultLocale>en-US</DefaultLocale>
  <DisplayName DefaultValue="Moat"/>
  <Description DefaultValue="Report spam to your Moat appliance, and manage your quarantine, allowed and blocked senders."/>
  <IconUrl DefaultValue="${url('/outlook/icon-64.png')}"/>
  <HighResolutionIconUrl DefaultValue="${url('/outlook/icon-128.png')}"/>
  <SupportUrl DefaultValue="${url('/outlook/')}"/>
  <AppDomains>
    <AppDomain>${xml(base)}</AppDomain>
  </AppDomains>
  <Hosts>
    <Host Name="Mailbox"/>
  </Hosts>
  <Requirements>
    <Sets>
      <Set Name="Mailbox" MinVersion="1.1"/>
    </Sets>
  </Requirements>
  <FormSettings>
    <Form xsi:type="ItemRead">
      <DesktopSettings>
        <SourceLocation DefaultValue="${url('/outlook/taskpane.html')}"/>
        <RequestedHeight>450</RequestedHeight>
      </DesktopSettings>
    </Form>
  </FormSettings>
  <Permissions>ReadWriteMailbox</Permissions>
  <Rule xsi:type="RuleCollection" Mode="Or">
    <Rule xsi:type="ItemIs" ItemType="Message" FormType="Read"/>
  </Rule>
  <DisableEntityHighlighting>false</DisableEntityHighlighting>
  <VersionOverrides xmlns="http://schemas.microsoft.com/office/mailappversionoverrides" xsi:type="VersionOverridesV1_0">
    <Requirements>
      <bt:Sets DefaultMinVersion="1.3">
        <bt:Set Name="Mailbox"/>
      </bt:Sets>
    </Requirements>
    <Hosts>
      <Host xsi:type="MailHost">
        <DesktopFormFactor>
          <FunctionFile resid="Commands.Url"/>
            ${readSurface('V10')}
        </DesktopFormFactor>
      </Host>
    </Hosts>
${resources('    ', {})}
    <VersionOverrides xmlns="http://schemas.microsoft.com/office/mailappversionoverrides/1.1" xsi:type="VersionOverridesV1_1">
      <Requirements>
        <bt:Sets DefaultMinVersion="1.3">
          <bt:Set Name="Mailbox"/>
        </bt:Sets>
      </Requirements>
      <Hosts>
        <Host xsi:type="MailHost">
          <Runtimes>
            <Runtime resid="Commands.Url">
              <Override type="javascript" resid="Script.Url"/>
            </Runtime>
          </Runtimes>
          <DesktopFormFactor>
            <FunctionFile resid="Commands.Url"/>
            ${readSurface('V11')}
            <ExtensionPoint xsi:type="ReportPhishingCommandSurface">
              <ReportPhishingCustomization>
                <Control xsi:type="Button" id="moatReport">
                  <Label resid="Report.Label"/>
                  <Supertip><Title resid="Report.Label"/><Description resid="Report.Tip"/></Supertip>
                  <Icon><bt:Image size="16" resid="Icon.16"/><bt:Image size="32" resid="Icon.32"/><bt:Image size="80" resid="Icon.80"/></Icon>
                  <Action xsi:type="ExecuteFunction"><FunctionName>onSpamReport</FunctionName></Action>
                </Control>
                <PreProcessingDialog>
                  <Title resid="Report.Label"/>
                  <Description resid="Report.Dialog"/>
                  <ReportingOptions>
                    <Title resid="Options.Title"/>
                    <Option resid="Option.Spam"/>
                    <Option resid="Option.Phishing"/>
                    <Option resid="Option.Unwanted"/>
                  </ReportingOptions>
                  <FreeTextLabel resid="Report.FreeText"/>
                  <MoreInfo>
                    <MoreInfoText resid="Report.MoreInfo"/>
                    <MoreInfoUrl resid="Help.Url"/>
                  </MoreInfo>
                </PreProcessingDialog>
                <SourceLocation resid="Commands.Url"/>
              </ReportPhishingCustomization>
            </ExtensionPoint>
          </DesktopFormFactor>
        </Host>
      </Hosts>
${resources('      ', {
    urls: { 'Script.Url': '/outlook/addin.js', 'Help.Url': '/outlook/' },
    short: {
      'Report.Label': 'Report spam',
      'Options.Title': 'Why are you reporting this message?',
      'Option.Spam': 'Spam or junk',
      'Option.Phishing': 'Phishing: it asks for a password, payment or data',
      'Option.Unwanted': 'Unwanted newsletter',
      'Report.FreeText': 'Anything else (optional):',
      'Report.MoreInfo': "About Moat's report button",
    },
    long: {
      'Report.Tip': 'Report this message to Moat as spam and move it to Junk.',
      'Report.Dialog': 'Moat learns from your report, so mail like this is caught for everyone in your organisation.',
    },
  })}
    </VersionOverrides>
  </VersionOverrides>
</OfficeApp>
`
}

export function outlookRoutes(deps: { db: Db; accounts: Accounts; publicUrl: string; version: string }): Hono<Env> {
  const app = new Hono<Env>()
  const addinPage = (c: Context<Env>, body: Uint8Array<ArrayBuffer>, type: string) => {
    c.header('Content-Type', type)
    c.header('Content-Security-Policy', ADDIN_CSP)
    return c.body(body)
  }
  app.get('/outlook/manifest.xml', (c) => {
    c.header('Content-Disposition', 'attachment; filename="moat-outlook-manifest.xml"')
    const manifest = outlookManifest(deps.publicUrl.replace(/\/+$/, ''), addinId(deps.db), deps.version)
    return addinPage(c, new TextEncoder().encode(manifest), 'application/xml; charset=utf-8')
  })
  const assets = loadAssets({
    'taskpane.html': { file: path.join(STATIC, 'taskpane.html'), type: 'text/html; charset=utf-8' },
    'commands.html': { file: path.join(STATIC, 'commands.html'), type: 'text/html; charset=utf-8' },
    'addin.css': { file: path.join(STATIC, 'addin.css'), type: 'text/css; charset=utf-8' },
    'connect.js': { file: path.join(STATIC, 'connect.js'), type: 'text/javascript; charset=utf-8' },
    'addin.js': { file: path.join(COMPILED, 'addin.js'), type: 'text/javascript; charset=utf-8' },
  })
  for (const [name, a] of assets) app.get(`/outlook/${name}`, (c) => addinPage(c, a.body, a.type))
  const icons = new Map(ICON_SIZES.map((s) => [s, new Uint8Array(iconPng(s))]))
  app.get('/outlook/:icon{icon-[0-9]+\\.png}', (c) => {
    const png = icons.get(Number(/\d+/.exec(c.req.param('icon'))![0]) as (typeof ICON_SIZES)[number])
    if (!png) return c.notFound()
    c.header('Cache-Control', 'max-age=86400')
    return addinPage(c, png, 'image/png')
  })
  app.route('/', tokenConnectRoutes(deps.accounts, { path: '/outlook/connect', client: 'Outlook add-in', scripts: [OFFICE_JS, '/outlook/connect.js'], csp: ADDIN_CSP }))

  app.get('/outlook', (c) => c.redirect('/outlook/', 301))
  // Public, as Outlook's Help link opens it without a session; the admin part shows for admins.
  app.get('/outlook/', (c) => {
    const session = c.get('session')
    const admin = !!session && !session.mfaPending && session.principal.role !== 'user'
    return c.html(
      <Layout title="Outlook add-in" session={session}>
        <h1>Outlook add-in</h1>
        <p>Report spam from Outlook (Outlook's own Report button where it has one, a Moat button in the reading pane everywhere), see and release your quarantine, allow or block senders and search your mail, without leaving Outlook.</p>
        <p><a href="/outlook/manifest.xml" download id="manifest">Download the manifest (moat-outlook-manifest.xml)</a>: made for this appliance ({deps.publicUrl}).</p>
        {admin && (
          <>
            <h2>For Exchange and Microsoft 365 administrators: everyone at once</h2>
            <ul>
              <li>Microsoft 365: Microsoft 365 admin center → Settings → Integrated apps → Upload custom apps → "Upload manifest file (.xml)", then assign users or groups. It can take up to a day to appear in Outlook.</li>
              <li>Exchange Server 2016/2019 or Subscription Edition: in the Exchange Management Shell, <code>New-App -OrganizationApp -FileData ([System.IO.File]::ReadAllBytes("C:\moat-outlook-manifest.xml")) -DefaultStateForUser Enabled</code>.</li>
              <li>Outlook's built-in Report button runs Moat's report where the client supports it (Mailbox 1.14: Outlook on the web, new Outlook, classic Outlook 2307 and later); to have Outlook show only Moat's, turn off Microsoft's own reporting in the Defender portal's user-reported settings.</li>
              <li>Outlook must reach this appliance at {deps.publicUrl} over HTTPS with a certificate it trusts.</li>
            </ul>
          </>
        )}
        <h2>For one person</h2>
        <ul>
          <li>Outlook on the web and new Outlook: open <code>https://aka.ms/olksideload</code> → My add-ins → Custom add-ins → Add a custom add-in → Add from file, and choose the manifest.</li>
          <li>Classic Outlook: Home → Get Add-ins (or File → Manage Add-ins), then the same.</li>
          <li>Then open a message, choose Moat in the ribbon and sign in once. The add-in gets a token of its own, listed on your <a href="/account">account page</a>, where you can revoke it.</li>
        </ul>
        <p class="muted">Microsoft's manifest validator (office-addin-manifest validate) sends the file to a Microsoft service, so it cannot run on the appliance; Moat's tests check the manifest's form and every element the report button needs.</p>
      </Layout>,
    )
  })
  return app
}
