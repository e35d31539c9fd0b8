/*
 * The update check behind the About page: a feed (a URL, or a local file for an offline
 * appliance and for tests) says which release is the newest. The feed is JSON:
 *   { "latest": "1.4.0", "url": "https://…/moat-1.4.0.tar.gz", "notes": "…" }
 * A feed that cannot be read is reported as such; it never breaks the page.
 */
import fs from 'node:fs'

export interface UpdateStatus {
  current: string
  feed: string | null
  latest: string | null
  newer: boolean
  url: string | null
  notes: string | null
  error: string | null
}

/** Compares dotted numeric versions ("1.10.0" > "1.9.2"); pre-release tags sort before the release. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [core, pre] = v.trim().replace(/^v/, '').split('-', 2)
    return { nums: core.split('.').map((n) => Number(n) || 0), pre: pre ?? null }
  }
  const x = parse(a)
  const y = parse(b)
  for (let i = 0; i < Math.max(x.nums.length, y.nums.length); i++) {
    const d = (x.nums[i] ?? 0) - (y.nums[i] ?? 0)
    if (d) return Math.sign(d)
  }
  if (x.pre === y.pre) return 0
  if (x.pre === null) return 1
  if (y.pre === null) return -1
  return x.pre < y.pre ? -1 : 1
}

export async function checkForUpdate(current: string, feed: string | null, timeoutMs = 5000): Promise<UpdateStatus> {
  const status: UpdateStatus = { current, feed, latest: null, newer: false, url: null, notes: null, error: null }
  if (!feed) return { ...status, error: 'no update feed configured (MOAT_UPDATE_FEED)' }
  try {
    let text: string
    if (/^https?:\/\//.test(feed)) {
      const res = await fetch(feed, { signal: AbortSignal.timeout(timeoutMs), headers: { Accept: 'application/json' } })
      if (!res.ok) throw new Error(`the feed answered HTTP ${res.status}`)
      text = await res.text()
    } else {
      text = fs.readFileSync(feed.replace(/^file:\/\//, ''), 'utf8')
    }
    const data = JSON.parse(text) as { latest?: unknown; url?: unknown; notes?: unknown }
    if (typeof data.latest !== 'string' || !/^v?\d+(\.\d+)*(-[\w.]+)?$/.test(data.latest)) throw new Error('the feed has no valid "latest" version')
    return {
      ...status,
      latest: data.latest,
      newer: compareVersions(data.latest, current) > 0,
      url: typeof data.url === 'string' && /^https?:\/\//.test(data.url) ? data.url : null,
      notes: typeof data.notes === 'string' ? data.notes.slice(0, 2000) : null,
    }
  } catch (err) {
    return { ...status, error: `could not check for updates: ${(err as Error).message}` }
  }
}
