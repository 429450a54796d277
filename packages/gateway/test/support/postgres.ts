import pg from 'pg'

const URL_ = process.env.COUNTERSIGN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/**
 * PostgreSQL for end-to-end tests: each run gets its own schema (the
 * gateway's `--database-schema`), dropped afterwards. Unreachable PostgreSQL skips the
 * tests with a notice, except under CI=true where it fails them.
 */
export async function postgresForTests(): Promise<{ skip: boolean; url: string; dropSchema(name: string): Promise<void> }> {
  const problem = await reach()
  if (problem !== undefined) {
    if (process.env.CI === 'true') throw new Error(`PostgreSQL at ${URL_} is unreachable (${problem}); CI=true requires the postgres tests.`)
    console.warn(`PostgreSQL at ${URL_} is unreachable (${problem}): skipping the postgres end-to-end tests.`)
  }
  return {
    skip: problem !== undefined,
    url: URL_,
    async dropSchema(name) {
      await query(`drop schema if exists ${name} cascade`)
    },
  }
}

async function query(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: URL_ })
  await client.connect()
  try {
    await client.query(text)
  } finally {
    await client.end()
  }
}

async function reach(): Promise<string | undefined> {
  try {
    await query('select 1')
    return undefined
  } catch (error) {
    return (error as Error).message
  }
}
