import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite'
import { CompiledQuery, IdentifierNode, RawNode, createQueryId } from 'kysely'
import type { DatabaseConnection, Driver, QueryCompiler, QueryResult } from 'kysely'

/**
 * A Kysely driver over one `node:sqlite` connection. SQLite allows one writer
 * at a time, so every query and every transaction takes the connection through
 * a mutex: a transaction started by one caller never interleaves with another
 * caller's statements.
 */
export class NodeSqliteDriver implements Driver {
  readonly #database: DatabaseSync
  readonly #connection: NodeSqliteConnection
  readonly #mutex = new ConnectionMutex()

  constructor(database: DatabaseSync) {
    this.#database = database
    this.#connection = new NodeSqliteConnection(database)
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.#mutex.lock()
    return this.#connection
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    // IMMEDIATE takes the write lock up front. A deferred BEGIN that reads first
    // and writes later can fail with SQLITE_BUSY on the upgrade when another
    // process wrote in between, and busy_timeout does not retry that case.
    await connection.executeQuery(CompiledQuery.raw('begin immediate'))
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'))
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'))
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

  async releaseConnection(): Promise<void> {
    this.#mutex.unlock()
  }

  async destroy(): Promise<void> {
    if (this.#database.isOpen) this.#database.close()
  }
}

class NodeSqliteConnection implements DatabaseConnection {
  readonly #database: DatabaseSync

  constructor(database: DatabaseSync) {
    this.#database = database
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const statement = this.#database.prepare(compiledQuery.sql)
    const parameters = compiledQuery.parameters.map(toSqliteValue)
    if (returnsRows(statement, compiledQuery.sql)) {
      return { rows: statement.all(...parameters) as R[] }
    }
    const { changes, lastInsertRowid } = statement.run(...parameters)
    return { rows: [], numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid) }
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery, chunkSize = 100): AsyncIterableIterator<QueryResult<R>> {
    const statement = this.#database.prepare(compiledQuery.sql)
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
  #held: Promise<void> | undefined
  #release: (() => void) | undefined

  async lock(): Promise<void> {
    while (this.#held) await this.#held
    this.#held = new Promise((resolve) => {
      this.#release = resolve
    })
  }

  unlock(): void {
    const release = this.#release
    this.#held = undefined
    this.#release = undefined
    release?.()
  }
}
