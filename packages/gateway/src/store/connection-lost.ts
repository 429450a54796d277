/**
 * SQLSTATEs that mean the server went away or will not take the session:
 * class 08 (connection exception), 57P01-57P03 (terminated by an administrator
 * or a shutdown, crash, not accepting connections yet) and 53300 (too many
 * connections).
 */
const POSTGRES_UNAVAILABLE = /^(08[0-9A-Z]{3}|57P0[123]|53300)$/
/** Socket errors of a connection that broke or could not be made. */
const SOCKET_ERRORS = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN'])
/** What `pg` says, without a code, about a connection it lost or could not open in time. */
const PG_MESSAGES = /^(Connection terminated|Client has encountered a connection error|Client was closed and is not queryable|timeout exceeded when trying to connect)/

/**
 * True when a database call failed because the connection to the database
 * was lost or could not be made (a restart, a failover, a terminated backend),
 * not because of what the call asked. The gateway answers such calls with
 * `store_unavailable` (503): the client fails closed and tries again.
 *
 * @example
 * ```ts
 * try {
 *   await store.db.selectFrom('requests').selectAll().execute()
 * } catch (error) {
 *   if (isConnectionLost(error)) throw new CountersignError('store_unavailable', 'The database does not answer; try again shortly.')
 *   throw error
 * }
 * ```
 */
export function isConnectionLost(error: unknown): boolean {
  for (let current = error, depth = 0; typeof current === 'object' && current !== null && depth < 4; depth++) {
    const { code, message, cause } = current as { code?: unknown; message?: unknown; cause?: unknown }
    if (typeof code === 'string' && (POSTGRES_UNAVAILABLE.test(code) || SOCKET_ERRORS.has(code))) return true
    if (typeof message === 'string' && PG_MESSAGES.test(message)) return true
    current = cause
  }
  return false
}
