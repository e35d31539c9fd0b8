/*
 * Files the web app serves as they are (the stylesheet, htmx, the notifier's and the Outlook
 * add-in's scripts and pages): read once when the app is made, not on every request.
 */
import fs from 'node:fs'

export interface Asset {
  body: Uint8Array<ArrayBuffer>
  type: string
}

export function loadAssets(files: Record<string, { file: string; type: string }>): Map<string, Asset> {
  return new Map(Object.entries(files).map(([name, f]) => [name, { body: new Uint8Array(fs.readFileSync(f.file)), type: f.type }]))
}
