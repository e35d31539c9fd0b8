/* Small file operations the appliance's services share. */
import fs from 'node:fs'
import path from 'node:path'

/**
 * Writes a whole file or nothing: a reader (a systemd path unit, the web UI, a restart
 * after a crash) never sees half of it. The temporary name ends in .moat-tmp, which no
 * reader of these folders picks up.
 */
export function writeFileAtomic(file: string, text: string, mode = 0o644): void {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  const tmp = `${file}.moat-tmp`
  fs.writeFileSync(tmp, text, { mode })
  fs.renameSync(tmp, file)
}
