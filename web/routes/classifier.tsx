/*
 * The classifier, for the appliance admin (one model serves every organisation): which model
 * is in use, the users' reports waiting to be learned and learning them now, downloading the
 * reports as a labelled corpus, testing messages against the engine, and teaching it from
 * messages an admin has as files (spam forwarded as attachments, a customer's false positive).
 * The same functions as `moat scan`, `moat learn`, `moat reports` and `moat reports export`.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { type Context, Hono } from 'hono'
import * as tar from 'tar'
import type { Db } from '../../appliance/db/database'
import { scanMessage, type ScanResult } from '../../appliance/engine/engine'
import { loadActiveModel } from '../../appliance/engine/models'
import { exportReports, learnNow, learnPendingReports, pendingReports } from '../../appliance/engine/reports'
import type { Accounts } from '../../appliance/services/accounts'
import { type Env, requireLogin } from '../security'
import { Csrf, Done, doneOf, Layout, when } from '../views/layout'

/** Enough for a folder of samples; a message larger than this is not one to learn from. */
const MAX_FILES = 200
const MAX_FILE_BYTES = 10 * 1024 * 1024

interface Tested {
  name: string
  result: Pick<ScanResult, 'verdict' | 'score' | 'symbols'> | null
  error?: string
}

export function classifierRoutes(deps: { db: Db; accounts: Accounts }): Hono<Env> {
  const app = new Hono<Env>()
  app.use('/classifier', requireLogin(['appliance_admin']))
  app.use('/classifier/*', requireLogin(['appliance_admin']))
  const audit = (c: Context<Env>, action: string, detail: string) => deps.accounts.audit(c.get('session')!.principal, action, detail)

  const page = (c: Context<Env>, opts: { status?: 200 | 400; error?: string; tested?: Tested[] } = {}) => {
    const session = c.get('session')!
    const newest = deps.db.prepare(`SELECT id, description, messages, created_at FROM classifier_models ORDER BY id DESC LIMIT 1`).get() as
      | { id: number; description: string; messages: number; created_at: number }
      | undefined
    const kept = (deps.db.prepare(`SELECT count(*) AS n FROM classifier_reports`).get() as { n: number }).n
    const waiting = pendingReports(deps.db)
    return c.html(
      <Layout title="Classifier" session={session}>
        <h1>Classifier</h1>
        <Done {...doneOf(c)} />
        {opts.error && <p class="error" role="alert">{opts.error}</p>}
        <p id="model">
          {newest
            ? <>In use: model {newest.id}, {when(newest.created_at)}: {newest.description} ({newest.messages.toLocaleString('en')} messages learned).</>
            : <>In use: the model shipped with Moat; nothing learned here yet.</>}
        </p>

        <h2>Reports</h2>
        <p id="reports">{kept.toLocaleString('en')} "spam" and "not spam" reports kept, {waiting.toLocaleString('en')} waiting to be learned. The hourly job learns them; you need not wait.</p>
        <div class="actions">
          <form method="post" action="/classifier/learn-reports"><Csrf session={session} /><button type="submit" disabled={!waiting}>Learn waiting reports now</button></form>
          <a href="/classifier/reports.tar.gz" download>Download the reports (.tar.gz, a labelled corpus)</a>
        </div>

        <h2>Test messages</h2>
        <p class="muted">Raw messages (.eml), as the engine would see them at the door: the content checks and the model, without blocklists, authentication or lists.</p>
        <form method="post" action="/classifier/test" enctype="multipart/form-data" class="filters" id="test">
          <Csrf session={session} />
          <input type="file" name="files" multiple required accept=".eml,message/rfc822,text/plain" />
          <button type="submit">Test</button>
        </form>
        {opts.tested && (
          <table id="tested">
            <thead><tr><th>File</th><th>Verdict</th><th class="num">Score</th><th class="wide">Symbols</th></tr></thead>
            <tbody>
              {opts.tested.map((t) => (
                <tr>
                  <td>{t.name}</td>
                  {t.result
                    ? <><td>{t.result.verdict}</td><td class="num">{t.result.score.toFixed(2)}</td><td class="wide">{t.result.symbols.map((s) => `${s.name} (${s.weight.toFixed(2)})`).join(', ')}</td></>
                    : <td colspan={3} class="error">{t.error}</td>}
                </tr>
              ))}
            </tbody>
          </table>
        )}

        <h2>Teach it</h2>
        <p class="muted">What "report spam" and "not spam" do, for messages you have as files. It learns at once; a message it has learned with the same label already changes nothing.</p>
        <form method="post" action="/classifier/teach" enctype="multipart/form-data" class="filters" id="teach">
          <Csrf session={session} />
          <input type="file" name="files" multiple required accept=".eml,message/rfc822,text/plain" />
          <select name="label" aria-label="these messages are">
            <option value="spam">These are spam</option>
            <option value="ham">These are not spam</option>
          </select>
          <button type="submit">Teach</button>
        </form>
      </Layout>,
      opts.status ?? 200,
    )
  }

  /** The uploaded files, or a sentence saying why not. */
  const uploads = async (c: Context<Env>): Promise<{ files: { name: string; raw: Buffer }[]; label: string } | string> => {
    const body = await c.req.parseBody({ all: true })
    const files = ([] as unknown[]).concat(body.files ?? []).filter((f): f is File => f instanceof File && f.size > 0)
    if (!files.length) return 'Choose at least one message file.'
    if (files.length > MAX_FILES) return `At most ${MAX_FILES} files at a time.`
    const big = files.find((f) => f.size > MAX_FILE_BYTES)
    if (big) return `${big.name} is larger than ${MAX_FILE_BYTES / 1024 / 1024} MB.`
    return { files: await Promise.all(files.map(async (f) => ({ name: f.name, raw: Buffer.from(await f.arrayBuffer()) }))), label: String(body.label) }
  }

  app.get('/classifier', (c) => page(c))

  app.post('/classifier/learn-reports', async (c) => {
    const r = await learnPendingReports(deps.db)
    audit(c, 'classifier-learn', `${r.learned} reports${r.model ? `, model ${r.model}` : ''}`)
    return c.redirect(`/classifier?done=reports-learned&n=${r.learned}`, 303)
  })

  app.post('/classifier/test', async (c) => {
    const up = await uploads(c)
    if (typeof up === 'string') return page(c, { status: 400, error: up })
    const { model } = loadActiveModel(deps.db)
    const tested: Tested[] = []
    for (const f of up.files) {
      try {
        const { verdict, score, symbols } = await scanMessage(f.raw, { model })
        tested.push({ name: f.name, result: { verdict, score, symbols } })
      } catch (err) {
        tested.push({ name: f.name, result: null, error: `Not a message the engine can read: ${(err as Error).message}` })
      }
    }
    return page(c, { tested })
  })

  app.post('/classifier/teach', async (c) => {
    const up = await uploads(c)
    if (typeof up === 'string') return page(c, { status: 400, error: up })
    const { files, label } = up
    if (label !== 'spam' && label !== 'ham') return page(c, { status: 400, error: 'Say whether these are spam or not.' })
    const p = c.get('session')!.principal
    const id = await learnNow(deps.db, files.map((f) => ({ raw: f.raw, spam: label === 'spam' })), `${p.email}: ${files.length} uploaded`)
    audit(c, 'classifier-teach', `${files.length} ${label}, model ${id}`)
    return c.redirect(`/classifier?done=taught-${label}&n=${files.length}`, 303)
  })

  // The reports as `moat reports export` writes them, packed and streamed; the folder goes after.
  app.get('/classifier/reports.tar.gz', (c) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'moat-reports-'))
    let stream: Readable
    try {
      exportReports(deps.db, dir)
      // tar's stream is a Minipass, not a Node Readable: Readable.from takes any async iterable.
      stream = Readable.from(tar.create({ gzip: true, cwd: dir, portable: true }, ['manifest.csv', 'ham', 'spam']))
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true })
      throw err
    }
    // Finished, or the browser went away: either way the folder goes.
    stream.once('close', () => fs.rmSync(dir, { recursive: true, force: true }))
    audit(c, 'classifier-export', 'reports downloaded')
    c.header('Content-Type', 'application/gzip')
    c.header('Content-Disposition', `attachment; filename="moat-reports-${new Date().toISOString().slice(0, 10)}.tar.gz"`)
    return c.body(Readable.toWeb(stream) as unknown as ReadableStream)
  })
  return app
}
