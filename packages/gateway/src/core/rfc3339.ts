/** A time on the wire, in error details and in audit data: RFC 3339, UTC, with milliseconds. */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString()
}
