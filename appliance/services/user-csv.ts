/*
 * The user import file, as the CLI and the web UI take it: a header row naming "email" (and
 * optionally "display_name" or "name", and "role"), or no header and one address per line
 * (optionally followed by a display name and a role). Line numbers are the file's, for errors.
 */
import { parse } from 'csv-parse/sync'
import type { UserImportRow } from './tenants'

export function parseUserCsv(text: string): (UserImportRow & { line: number })[] {
  const firstLine = text.slice(0, text.indexOf('\n') >>> 0).toLowerCase()
  const hasHeader = /(^|,)\s*"?email"?\s*(,|$)/.test(firstLine)
  const records = parse(text, {
    columns: hasHeader ? (h: string[]) => h.map((c) => c.trim().toLowerCase()) : false,
    skip_empty_lines: true, trim: true, relax_column_count: true, bom: true,
  }) as (Record<string, string> | string[])[]
  const offset = hasHeader ? 2 : 1
  return records.map((r, i) =>
    Array.isArray(r)
      ? { line: i + offset, email: r[0] ?? '', display_name: r[1], role: (r[2] || undefined) as UserImportRow['role'] }
      : { line: i + offset, email: r.email ?? '', display_name: r.display_name ?? r.name, role: (r.role || undefined) as UserImportRow['role'] },
  )
}
