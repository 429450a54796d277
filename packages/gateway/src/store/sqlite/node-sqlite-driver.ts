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
 * savepoint without touching the others.
 *
 * A COMMIT can still fail (a full disk, an I/O error, a deferred constraint),
 * and then the whole group rolls back. A statement outside any transaction
 * that runs while a COMMIT is pending may see the group's changes, so it is
 * held like a member of the group: its result is answered only once that
 * COMMIT succeeds, and it fails with the group otherwise. So no caller is
 * ever answered with a change that was rolled back.
 */
export class NodeSqliteDriver implements Driver {
  readonly #database: DatabaseSync
  readonly #connection: NodeSqliteConnection
  readonly #mutex = new ConnectionMutex()
  /** True while a physical transaction is open. */
  #open = false
  /** True while a COMMIT of the open physical transaction is scheduled. */
  #flushScheduled = false
  /** Transactions released to their savepoint, and statements that saw them, waiting for the physical COMMIT. */
  #group: Array<{ resolve: () => void; reject: (error: unknown) => void }> = []
  /** Holds whose commit handed the connection on early; releasing them must not unlock again. */
  readonly #handedOn = new WeakSet<DatabaseConnection>()
  /** Holds inside a transaction of their own, whose statements wait for nothing but their own commit. */
  readonly #inTransaction = new WeakSet<DatabaseConnection>()

  constructor(database: DatabaseSync) {
    this.#database = database
    this.#connection = new NodeSqliteConnection(database)
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#mutex.lock()
    // A handle per hold, so a release can tell whose hold it ends.
    return new ConnectionHold(this)
  }

  /**
   * Runs a statement on `hold`. Outside a transaction, while a COMMIT is
   * pending, the answer waits for that COMMIT (see the class comment).
   */
  async runOn<R>(hold: DatabaseConnection, compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    await this.#retake(hold)
    const result = await this.#connection.executeQuery<R>(compiledQuery)
    if (this.#open && !this.#inTransaction.has(hold)) await this.#joinGroup(hold)
    return result
  }

  /** Streams a statement's rows on `hold`; outside a transaction, a pending COMMIT is made first, so rows leave durable. */
  async *streamOn<R>(hold: DatabaseConnection, compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    await this.#retake(hold)
    if (this.#open && !this.#inTransaction.has(hold)) this.#commitGroup()
    yield* this.#connection.streamQuery<R>(compiledQuery, chunkSize)
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    if (!this.#open) {
      // IMMEDIATE takes the write lock up front. A deferred BEGIN that reads first
      // and writes later can fail with SQLITE_BUSY on the upgrade when another
      // process wrote in between, and busy_timeout does not retry that case.
      await connection.executeQuery(CompiledQuery.raw('begin immediate'))
      this.#open = true
    }
    this.#inTransaction.add(connection)
    await connection.executeQuery(CompiledQuery.raw('savepoint countersign_tx'))
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('release countersign_tx'))
    this.#inTransaction.delete(connection)
    await this.#joinGroup(connection)
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    // Kysely rolls back a transaction whose commit failed. If that was the group COMMIT, the savepoint is already
    // released, the group rolled back, and the connection handed on: a ROLLBACK TO now would hit another caller's.
    if (this.#handedOn.has(connection)) return
    await connection.executeQuery(CompiledQuery.raw('rollback to countersign_tx'))
    await connection.executeQuery(CompiledQuery.raw('release countersign_tx'))
    this.#inTransaction.delete(connection)
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

  /** Waits for the pending COMMIT, handing the connection on meanwhile so queued transactions can join it. */
  async #joinGroup(hold: DatabaseConnection): Promise<void> {
    const durable = new Promise<void>((resolve, reject) => this.#group.push({ resolve, reject }))
    this.#scheduleFlush()
    this.#handedOn.add(hold)
    this.#mutex.unlock()
    await durable
  }

  /** A hold that handed the connection on and runs another statement waits its turn again. */
  async #retake(hold: DatabaseConnection): Promise<void> {
    if (this.#handedOn.delete(hold)) await this.#mutex.lock()
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    setImmediate(() => {
      this.#flush().catch(() => {
        // Nothing to do: #commitGroup has already rejected every member of the group with the error.
      })
    })
  }

  /** Waits its turn for the connection (so no transaction is cut in half), then COMMITs the group. */
  async #flush(): Promise<void> {
    await this.#mutex.lock()
    this.#flushScheduled = false
    try {
      if (this.#open) this.#commitGroup()
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
  readonly #driver: NodeSqliteDriver

  constructor(driver: NodeSqliteDriver) {
    this.#driver = driver
  }

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    return this.#driver.runOn(this, compiledQuery)
  }

  streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.#driver.streamOn(this, compiledQuery, chunkSize)
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
