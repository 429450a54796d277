import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite'
import { CompiledQuery, IdentifierNode, RawNode, createQueryId } from 'kysely'
import type { DatabaseConnection, Driver, QueryCompiler, QueryResult } from 'kysely'

/**
 * A Kysely driver over one `node:sqlite` connection. SQLite allows one writer
 * at a time, so every query and every transaction takes the connection through
 * a mutex: a transaction started by one caller never interleaves with another
 * caller's statements.
 *
 * Group commit: with `synchronous=FULL` each COMMIT is an fsync, which would
 * cap throughput at the disk's fsync rate. So a transaction runs as a
 * SAVEPOINT inside a physical transaction; when it commits it releases its
 * savepoint and waits, while other callers' transactions join, until one
 * COMMIT at the next turn of the event loop makes them all durable. Each
 * caller's commit resolves only after that COMMIT, so nothing is answered
 * before it is durable, and a failing transaction rolls back to its own
 * savepoint without touching the others. A read that runs in between may see
 * a change whose COMMIT is still pending (never one that is rolled back).
 */
export class NodeSqliteDriver implements Driver {
  readonly #database: DatabaseSync
  readonly #connection: NodeSqliteConnection
  readonly #mutex = new ConnectionMutex()
  /** True while a physical transaction is open. */
  #open = false
  /** True while a COMMIT of the open physical transaction is scheduled. */
  #flushScheduled = false
  /** Transactions released to their savepoint, waiting for the physical COMMIT. */
  #group: Array<{ resolve: () => void; reject: (error: unknown) => void }> = []
  /** Holds whose commit handed the connection on early; releasing them must not unlock again. */
  readonly #handedOn = new WeakSet<DatabaseConnection>()

  constructor(database: DatabaseSync) {
    this.#database = database
    this.#connection = new NodeSqliteConnection(database)
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#mutex.lock()
    // A handle per hold, so a release can tell whose hold it ends.
    return new ConnectionHold(this.#connection)
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    if (!this.#open) {
      // IMMEDIATE takes the write lock up front. A deferred BEGIN that reads first
      // and writes later can fail with SQLITE_BUSY on the upgrade when another
      // process wrote in between, and busy_timeout does not retry that case.
      await connection.executeQuery(CompiledQuery.raw('begin immediate'))
      this.#open = true
    }
    await connection.executeQuery(CompiledQuery.raw('savepoint countersign_tx'))
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('release countersign_tx'))
    const durable = new Promise<void>((resolve, reject) => this.#group.push({ resolve, reject }))
    this.#scheduleFlush()
    // Hand the connection on now, so queued transactions can join this commit.
    this.#handedOn.add(connection)
    this.#mutex.unlock()
    await durable
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback to countersign_tx'))
    await connection.executeQuery(CompiledQuery.raw('release countersign_tx'))
    this.#scheduleFlush()
  }

  async savepoint(
    connection: DatabaseConnection,
    savepointName: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await connection.executeQuery(compileQuery(savepointCommand('savepoint', savepointName), createQueryId()))
  }

  async rollbackToSavepoint(
    connection: DatabaseConnection,
    savepointName: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await connection.executeQuery(compileQuery(savepointCommand('rollback to', savepointName), createQueryId()))
  }

  async releaseSavepoint(
    connection: DatabaseConnection,
    savepointName: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    await connection.executeQuery(compileQuery(savepointCommand('release', savepointName), createQueryId()))
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    if (this.#handedOn.delete(connection)) return
    this.#mutex.unlock()
  }

  async destroy(): Promise<void> {
    await this.#mutex.lock()
    try {
      if (this.#open) this.#commitGroup()
    } finally {
      this.#mutex.unlock()
    }
    if (this.#database.isOpen) this.#database.close()
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    setImmediate(() => void this.#flush())
  }

  /** Waits its turn for the connection (so no transaction is cut in half), then COMMITs the group. */
  async #flush(): Promise<void> {
    await this.#mutex.lock()
    this.#flushScheduled = false
    try {
      if (this.#open) this.#commitGroup()
    } catch {
      // #commitGroup has already rejected every member of the group.
    } finally {
      this.#mutex.unlock()
    }
  }

  /** COMMITs the physical transaction and settles every transaction in it. */
  #commitGroup(): void {
    const group = this.#group
    this.#group = []
    this.#open = false
    try {
      this.#database.exec('commit')
    } catch (error) {
      // The physical transaction is gone either way; no member of it is durable.
      if (this.#database.isTransaction) this.#database.exec('rollback')
      for (const member of group) member.reject(error)
      throw error
    }
    for (const member of group) member.resolve()
  }
}

/** One caller's hold on the shared connection. */
class ConnectionHold implements DatabaseConnection {
  readonly #connection: DatabaseConnection

  constructor(connection: DatabaseConnection) {
    this.#connection = connection
  }

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    return this.#connection.executeQuery(compiledQuery)
  }

  streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.#connection.streamQuery(compiledQuery, chunkSize)
  }
}

/** Prepared statements kept per connection; Kysely's SQL text repeats, so preparing once saves most of a query's cost. */
const STATEMENT_CACHE_SIZE = 500

class NodeSqliteConnection implements DatabaseConnection {
  readonly #database: DatabaseSync
  readonly #statements = new Map<string, { statement: StatementSync; rows: boolean }>()

  constructor(database: DatabaseSync) {
    this.#database = database
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const { statement, rows } = this.#prepare(compiledQuery.sql)
    const parameters = compiledQuery.parameters.map(toSqliteValue)
    if (rows) {
      return { rows: statement.all(...parameters) as R[] }
    }
    const { changes, lastInsertRowid } = statement.run(...parameters)
    return { rows: [], numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid) }
  }

  #prepare(sql: string): { statement: StatementSync; rows: boolean } {
    let prepared = this.#statements.get(sql)
    if (prepared === undefined) {
      const statement = this.#database.prepare(sql)
      prepared = { statement, rows: returnsRows(statement, sql) }
      // Generated SQL varies with batch sizes; a full cache starts over rather than grow without bound.
      if (this.#statements.size >= STATEMENT_CACHE_SIZE) this.#statements.clear()
      this.#statements.set(sql, prepared)
    }
    return prepared
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery, chunkSize = 100): AsyncIterableIterator<QueryResult<R>> {
    const { statement } = this.#prepare(compiledQuery.sql)
    const parameters = compiledQuery.parameters.map(toSqliteValue)
    let chunk: R[] = []
    for (const row of statement.iterate(...parameters)) {
      chunk.push(row as R)
      if (chunk.length >= chunkSize) {
        yield { rows: chunk }
        chunk = []
      }
    }
    if (chunk.length > 0) yield { rows: chunk }
  }
}

/**
 * `columns()` arrived in Node 22.16; older 22.x releases fall back to looking
 * at the statement, which is enough for the SQL Kysely generates.
 */
function returnsRows(statement: StatementSync, sql: string): boolean {
  if (typeof statement.columns === 'function') return statement.columns().length > 0
  return /^\s*(select|with|pragma|values|explain)\b/i.test(sql) || /\breturning\b/i.test(sql)
}

function toSqliteValue(value: unknown): SQLInputValue {
  // SQLite has no boolean type; Kysely passes JS booleans through unchanged.
  if (typeof value === 'boolean') return value ? 1 : 0
  if (value === undefined) return null
  return value as SQLInputValue
}

function savepointCommand(command: string, savepointName: string): RawNode {
  // The identifier node quotes the name, so it cannot smuggle SQL in.
  return RawNode.createWithChildren([RawNode.createWithSql(`${command} `), IdentifierNode.create(savepointName)])
}

class ConnectionMutex {
  #held = false
  readonly #waiting: Array<() => void> = []

  async lock(): Promise<void> {
    if (!this.#held) {
      this.#held = true
      return
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve))
  }

  /** Hands the connection to the next in line, or frees it. */
  unlock(): void {
    const next = this.#waiting.shift()
    if (next) next()
    else this.#held = false
  }
}
