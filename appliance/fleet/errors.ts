/** A refusal the console answers with its HTTP status (the agents' API) or a 400 (the pages). */
export class FleetError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 = 400,
    readonly lastSeq?: number,
  ) {
    super(message)
  }
}
