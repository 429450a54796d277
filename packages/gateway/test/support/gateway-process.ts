import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

/** The built CLI; `npm test` builds before running the suite. */
export const CLI = fileURLToPath(new URL('../../bin/countersign.js', import.meta.url))
export const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url))

export interface GatewayProcess {
  url: string
  /** Printed on the first start only. */
  adminToken: string | undefined
  output(): string
  /** SIGTERM and wait for a clean exit; resolves with the exit code. */
  stop(): Promise<number | null>
}

/** A free loopback port, so a restarted gateway can come back on the same address. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** Starts `countersign serve` as a real process and resolves once it listens. */
export async function startGatewayProcess(args: string[], env: NodeJS.ProcessEnv = {}, cwd = REPO_ROOT): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (): void => {
      // The admin token (first start only) goes to stdout, announced on stderr before the listening
      // line; the two pipes are read independently, so wait for both.
      const match = /listening on (http:\/\/\S+)/.exec(stderr)
      if (match?.[1] && (!stderr.includes('Admin API key') || /cs_\S+\n/.test(stdout))) {
        cleanup()
        resolve(match[1])
      }
    }
    const onExit = (code: number | null): void => {
      cleanup()
      reject(new Error(`countersign serve exited with ${code}:\n${stdout}\n${stderr}`))
    }
    const cleanup = (): void => {
      child.stderr.off('data', onData)
      child.stdout.off('data', onData)
      child.off('exit', onExit)
    }
    child.stderr.on('data', onData)
    child.stdout.on('data', onData)
    child.once('exit', onExit)
  })
  return {
    url,
    adminToken: /(cs_\S+)/.exec(stdout)?.[1],
    output: () => `${stdout}\n${stderr}`,
    stop: () => stopProcess(child),
  }
}

function stopProcess(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode)
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code))
    child.kill('SIGTERM')
  })
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the CLI to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = REPO_ROOT): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.once('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Starts the CLI and hands back the process, for commands that wait. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = REPO_ROOT): { child: ChildProcess; result: Promise<CliResult>; stderr: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const result = new Promise<CliResult>((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })))
  return { child, result, stderr: () => stderr }
}

/** A JSON call to the gateway; returns status and body without throwing on 4xx. */
export async function call(
  url: string,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any -- test bodies are inspected freely
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined && typeof body !== 'string' ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  })
  const text = await response.text()
  let parsed: unknown = text
  try {
    parsed = JSON.parse(text)
  } catch {
    // not JSON (metrics, for instance); return the text
  }
  return { status: response.status, body: parsed }
}

/**
 * Votes as a reviewer does: reads the request first and names the digest of
 * the version it read, unless `body` names one itself. A voter who may not
 * see the request sends the vote without a digest read from it.
 */
export async function castVote(
  url: string,
  token: string | undefined,
  id: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any -- test bodies are inspected freely
  let digest = body.digest
  if (digest === undefined) {
    const seen = await call(url, token, 'GET', `/v1/requests/${id}`)
    digest = seen.status === 200 ? seen.body.digest : '0'.repeat(64)
  }
  return call(url, token, 'POST', `/v1/requests/${id}/votes`, { ...body, digest }, headers)
}
