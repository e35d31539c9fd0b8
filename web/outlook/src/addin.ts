/*
 * Moat's Outlook add-in (served by the appliance under /outlook/, so the API is this page's
 * own origin). One script for both of its surfaces:
 * - the function file behind Outlook's built-in Report button (ReportPhishingCommandSurface,
 *   Mailbox 1.14): the message as EML to POST /api/v1/report-spam, then Outlook moves it to
 *   Junk (onSpamReport);
 * - the task pane, for every client: report spam / not spam for the open message (moved with
 *   EWS where the client allows), the user's new spam counts and quarantine (release, not
 *   spam, allow sender), allow or block the open message's sender, an archive search, and
 *   About with the version check.
 * Sign-in: a dialog to the appliance's own login page hands back a per-user API token, kept
 * in the mailbox's roaming settings (so the Report button's runtime has it too) and
 * revocable on the account page. Written as a plain script (no modules): Outlook loads it
 * with Office.js, and the tests load the same file with office-addin-mock.
 */

const TOKEN_SETTING = 'moatToken'

class NotConnected extends Error {
  constructor() {
    super('Connect the add-in to Moat first (Sign in).')
  }
}

/** An Office callback API as a promise; a failed result rejects with its message. */
function officeCall<T>(start: (done: (r: Office.AsyncResult<T>) => void) => void): Promise<T> {
  return new Promise((resolve, reject) =>
    start((r) => (r.status === Office.AsyncResultStatus.Failed ? reject(new Error(r.error?.message ?? 'Outlook refused')) : resolve(r.value))),
  )
}

function moatToken(): string | null {
  const t = Office.context.roamingSettings.get(TOKEN_SETTING)
  return typeof t === 'string' && t.startsWith('moat_') ? t : null
}

async function saveToken(token: string | null): Promise<void> {
  if (token) Office.context.roamingSettings.set(TOKEN_SETTING, token)
  else Office.context.roamingSettings.remove(TOKEN_SETTING)
  await officeCall<void>((done) => Office.context.roamingSettings.saveAsync(done))
}

/** A call to this appliance's API with the user's token; a refused token means sign in again. */
async function moatFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const token = moatToken()
  if (!token) throw new NotConnected()
  const res = await fetch(path, { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: `Bearer ${token}` } })
  if (res.status === 401) {
    await saveToken(null)
    throw new NotConnected()
  }
  if (!res.ok) throw new Error(((await res.json().catch(() => ({}))) as { error?: string }).error ?? `Moat answered HTTP ${res.status}`)
  return res
}

function base64Bytes(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

/** The open message as Outlook has it (EML), reported as spam or as not spam. */
async function reportOpenMessage(spam: boolean): Promise<{ report: number }> {
  const eml = await officeCall<string>((done) => Office.context.mailbox.item!.getAsFileAsync(done))
  const res = await moatFetch(spam ? '/api/v1/report-spam' : '/api/v1/report-not-spam', { method: 'POST', headers: { 'Content-Type': 'message/rfc822' }, body: new Blob([base64Bytes(eml)]) })
  return (await res.json()) as { report: number }
}

/**
 * Moves the open message with EWS (classic Outlook and Exchange, ReadWriteMailbox): older
 * clients have no Report button to do it. False where the client cannot.
 */
async function moveOpenMessage(folder: 'junkemail' | 'inbox'): Promise<boolean> {
  const mailbox = Office.context.mailbox
  const id = mailbox.item?.itemId
  if (!id || typeof mailbox.makeEwsRequestAsync !== 'function') return false
  const safeId = id.replace(/[<>&"']/g, '')
  const request =
    '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">' +
    '<soap:Header><t:RequestServerVersion Version="Exchange2013"/></soap:Header><soap:Body><m:MoveItem>' +
    `<m:ToFolderId><t:DistinguishedFolderId Id="${folder}"/></m:ToFolderId><m:ItemIds><t:ItemId Id="${safeId}"/></m:ItemIds>` +
    '</m:MoveItem></soap:Body></soap:Envelope>'
  try {
    const answer = await officeCall<string>((done) => mailbox.makeEwsRequestAsync(request, done))
    return /ResponseClass="Success"/.test(answer)
  } catch {
    return false
  }
}

/** The Report button (ReportPhishingCommandSurface): report, then Outlook moves it to Junk. */
function onSpamReport(event: Office.AddinCommands.Event & { completed(opts?: unknown): void }): void {
  reportOpenMessage(true).then(
    () =>
      event.completed({
        onErrorDeleteItem: false,
        moveItemTo: Office.MailboxEnums.MoveSpamItemTo.JunkFolder,
        showPostProcessingDialog: { title: 'Moat', description: 'Thank you. Moat learns from your report: mail like this will be caught for everyone in your organisation.' },
      }),
    (err: Error) => event.completed({ onErrorDeleteItem: false, showPostProcessingDialog: { title: 'Moat', description: `The report was not sent: ${err.message}` } }),
  )
}

// ---- the task pane ----

const $ = (id: string) => document.getElementById(id)!

function el(tag: string, text?: string, attrs: Record<string, string> = {}): HTMLElement {
  const e = document.createElement(tag)
  if (text !== undefined) e.textContent = text
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v)
  return e
}

function say(text: string, error = false): void {
  const s = $('status')
  s.textContent = text
  s.className = error ? 'error' : 'done'
}

/** Runs a pane action and says what it did, or why not. */
async function act(what: () => Promise<string>): Promise<void> {
  try {
    say(await what())
  } catch (err) {
    say((err as Error).message, true)
    if (err instanceof NotConnected) showConnected()
  }
}

function openSender(): string | null {
  const from = Office.context.mailbox.item?.from
  return from?.emailAddress ? from.emailAddress.toLowerCase() : null
}

function showConnected(): void {
  const on = !!moatToken()
  $('connect').hidden = on
  $('pane').hidden = !on
}

function connect(): Promise<void> {
  return new Promise((resolve) => {
    Office.context.ui.displayDialogAsync(`${location.origin}/outlook/connect`, { height: 60, width: 30 }, (r) => {
      if (r.status === Office.AsyncResultStatus.Failed) {
        say(`The sign-in window did not open: ${r.error.message}`, true)
        return resolve()
      }
      const dialog = r.value
      dialog.addEventHandler(Office.EventType.DialogMessageReceived, (arg) => {
        dialog.close()
        const message = (arg as { message?: string }).message ?? ''
        saveToken(message.startsWith('moat_') ? message : null)
          .then(() => {
            showConnected()
            return refresh()
          })
          .then(resolve, resolve)
      })
    })
  })
}

async function showCounts(): Promise<void> {
  const since = Date.now() - 86_400_000
  const c = (await (await moatFetch(`/api/v1/counts?since=${since}`)).json()) as { spam: number; surespam: number }
  $('counts').textContent = `${c.spam} new spam, ${c.surespam} surespam in the last 24 hours`
}

interface QuarantineItem {
  id: number
  subject: string | null
  from: string | null
  sender: string
  verdict: string
  score: number
}

async function showQuarantine(): Promise<void> {
  const list = $('quarantine')
  list.replaceChildren()
  const { items } = (await (await moatFetch('/api/v1/quarantine?limit=20')).json()) as { items: (QuarantineItem & { released_at: string | null })[] }
  for (const q of items.filter((i) => !i.released_at)) {
    const li = el('li', undefined, { 'data-id': String(q.id) })
    li.append(el('strong', q.subject || '(no subject)'), el('div', `${q.from || q.sender || '<>'} · ${q.verdict} ${q.score.toFixed(1)}`, { class: 'muted' }))
    const release = el('button', 'Release', { type: 'button' })
    release.onclick = () => act(async () => (await moatFetch(`/api/v1/quarantine/${q.id}/release`, { method: 'POST' }), li.remove(), `Released “${q.subject || '(no subject)'}”.`))
    const notSpam = el('button', 'Not spam', { type: 'button' })
    notSpam.onclick = () => act(async () => (await moatFetch(`/api/v1/quarantine/${q.id}/report`, { method: 'POST' }), li.remove(), `Released and reported as not spam: “${q.subject || '(no subject)'}”.`))
    const allow = el('button', 'Allow sender', { type: 'button' })
    allow.onclick = () => act(async () => `${await listSender('allow', q.sender)} ${(await moatFetch(`/api/v1/quarantine/${q.id}/release`, { method: 'POST' }), li.remove(), 'The message was released.')}`)
    li.append(release, notSpam, allow)
    list.append(li)
  }
  if (!list.children.length) list.append(el('li', 'Nothing waiting in your quarantine.', { class: 'muted' }))
}

async function listSender(kind: 'allow' | 'block', address: string | null): Promise<string> {
  if (!address) throw new Error('This message has no sender address.')
  await moatFetch('/api/v1/lists', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ kind, pattern: address }) })
  return `${address} is on your ${kind} list.`
}

async function search(q: string): Promise<void> {
  const hits = $('hits')
  hits.replaceChildren()
  const { items } = (await (await moatFetch(`/api/v1/archive?q=${encodeURIComponent(q)}&limit=20`)).json()) as { items: { id: number; subject: string | null; from_header: string | null; mail_from: string }[] }
  for (const h of items) {
    const li = el('li')
    li.append(el('a', h.subject || '(no subject)', { href: `/archive/${Number(h.id)}`, target: '_blank' }), el('span', ` — ${h.from_header || h.mail_from}`, { class: 'muted' }))
    hits.append(li)
  }
  if (!items.length) hits.append(el('li', 'No messages match.', { class: 'muted' }))
}

async function showVersion(): Promise<void> {
  const v = (await (await moatFetch('/api/v1/version')).json()) as { version: string; latest: string | null; newer: boolean; error: string | null }
  $('version').textContent = v.newer ? `Moat ${v.version}; ${v.latest} is available.` : v.error ? `Moat ${v.version}.` : `Moat ${v.version}, the newest release.`
}

async function refresh(): Promise<void> {
  if (!moatToken()) return
  const sender = openSender()
  $('sender').textContent = sender ?? '(no message open)'
  await Promise.all([showCounts(), showQuarantine(), showVersion()]).catch((err: Error) => say(err.message, true))
}

function paneInit(): void {
  $('connect-button').onclick = () => void connect()
  $('report').onclick = () => act(async () => `Reported as spam; Moat learns from it.${(await reportOpenMessage(true), await moveOpenMessage('junkemail')) ? ' Moved to Junk.' : ''}`)
  $('not-spam').onclick = () => act(async () => `Reported as not spam.${(await reportOpenMessage(false), await moveOpenMessage('inbox')) ? ' Moved to the Inbox.' : ''}`)
  $('allow').onclick = () => act(() => listSender('allow', openSender()))
  $('block').onclick = () => act(() => listSender('block', openSender()))
  $('search').onsubmit = (e) => {
    e.preventDefault()
    void act(async () => (await search(($('q') as HTMLInputElement).value.trim()), ''))
  }
  $('sign-out').onclick = () => act(async () => (await saveToken(null), showConnected(), 'Signed out. Revoke the token on your account page to end it for good.'))
  showConnected()
  void refresh().then(() => document.body.setAttribute('data-ready', 'yes'))
}

Office.onReady(() => {
  // The Report button's runtime has no page: only associate. The task pane has one.
  if (typeof Office.actions?.associate === 'function') Office.actions.associate('onSpamReport', onSpamReport)
  if (typeof document === 'undefined') return
  // Office may be ready before the page is parsed (the scripts load in its head).
  const start = () => document.getElementById('pane') && paneInit()
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start)
  else start()
})
