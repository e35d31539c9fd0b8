/*
 * The appliance's web service and Debian's Chromium (playwright-core) for a browser test,
 * both stopped when the test ends, and a sign-in through the real login form.
 */
import fs from 'node:fs'
import path from 'node:path'
import { moat, moatOk, provisionAcme, ROOT, type RunningWeb, startWeb, workDir } from './appliance'

const { chromium } = require('playwright-core')

export const CHROMIUM = '/usr/bin/chromium'
export const SHOTS = path.join(ROOT, 'artifacts/screenshots')
export const NO_CHROMIUM = !fs.existsSync(CHROMIUM) && 'no /usr/bin/chromium'

/** The admins' password in the browser tests that use applianceWithAdmins. */
export const ADMIN_PASSWORD = 'a long admin password here'

/**
 * acme's appliance (example.com delivering to `sinkPort`, alice) with its appliance admin
 * root@moat.test (no TOTP, for the browser) and acme's organisation admin boss@example.com.
 */
export function applianceWithAdmins(t: Parameters<typeof workDir>[0], sinkPort = 2525): string {
  const dir = workDir(t)
  provisionAcme(dir, sinkPort)
  moatOk(dir, ['admin', 'create', '--email', 'root@moat.test', '--password', ADMIN_PASSWORD])
  moatOk(dir, ['admin', 'require-totp', 'off'])
  moatOk(dir, ['user', 'add', 'boss@example.com', '--role', 'org_admin'])
  if (moat(dir, ['user', 'password', 'boss@example.com'], `${ADMIN_PASSWORD}\n`).code !== 0) throw new Error("could not set boss's password")
  return dir
}

// playwright-core's types are not a dependency; a page is used through its own methods.
type Page = any

export async function webInBrowser(t: { teardown(fn: () => unknown): void }, dataDir: string, password: string, env: Record<string, string> = {}): Promise<{ web: RunningWeb; browser: any; signIn(email: string): Promise<Page> }> {
  fs.mkdirSync(SHOTS, { recursive: true })
  const web = await startWeb(dataDir, env)
  t.teardown(() => web.stop())
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  t.teardown(() => browser.close())
  return {
    web,
    browser,
    async signIn(email: string) {
      const page = await browser.newPage()
      await page.goto(`${web.url}/login`)
      await page.fill('input[name=email]', email)
      await page.fill('input[name=password]', password)
      await page.click('button[type=submit]')
      await page.waitForURL(/:\d+\/$/) // everyone lands on the home page
      return page
    },
  }
}
