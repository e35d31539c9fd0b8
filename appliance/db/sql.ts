/* Small SQL-building helpers shared by the services that filter by a tenant scope. */

/** `column IN (?, ?, …)` with its arguments; an empty list matches nothing. */
export function whereIn(column: string, values: readonly unknown[]): { sql: string; args: unknown[] } {
  return { sql: `${column} IN (${values.map(() => '?').join(',') || 'NULL'})`, args: [...values] }
}
