/**
 * Start a real nginx on 127.0.0.1 serving a directory, for tests of clients
 * that talk to real-world HTTP servers. Everything (config, logs, pid, temp
 * files) lives in one temp dir that stop() removes.
 */

import { spawn } from 'node:child_process'
import { access, mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'

export const NGINX_BINARY = '/usr/sbin/nginx'

export interface NginxOptions {
  /** Directory served at / */
  root: string
  /**
   * nginx `max_ranges`: 0 makes the server ignore Range and answer 200 with
   * the whole file. Unset: nginx's default (unlimited).
   */
  maxRanges?: number
}

export interface Nginx {
  /** `http://127.0.0.1:<port>` (no trailing slash) */
  url: string
  port: number
  /** Kill nginx and remove its temp dir */
  stop(): Promise<void>
  /** Lines of the access log: `<method> <uri> <status> range=<Range> if-range=<If-Range> bytes=<body bytes> ua=<User-Agent>` */
  accessLog(): Promise<string[]>
}

const START_TIMEOUT_MS = 10_000
const BIND_ATTEMPTS = 3

/**
 * @throws {Error} if nginx is not installed (the message says how to install it) or does not start
 */
export async function startNginx (options: NginxOptions): Promise<Nginx> {
  try {
    await access(NGINX_BINARY)
  } catch {
    throw new Error(`nginx is needed for this test but ${NGINX_BINARY} does not exist; install it with \`apt-get install nginx-light\` (CI installs it)`)
  }

  let lastError: Error | undefined

  // the free port is found by binding port 0 and closing it; another process
  // may take it before nginx binds, so try again with a new port
  for (let attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), 'damselfly-nginx-'))

    try {
      return await startIn(dir, options)
    } catch (err: any) {
      lastError = err
      await rm(dir, { recursive: true, force: true })
    }
  }

  throw lastError ?? new Error('nginx did not start')
}

async function startIn (dir: string, options: NginxOptions): Promise<Nginx> {
  const port = await freePort()
  const conf = join(dir, 'nginx.conf')
  const accessLogPath = join(dir, 'access.log')
  const errorLogPath = join(dir, 'error.log')

  await mkdir(join(dir, 'tmp'))
  await writeFile(conf, `
daemon off;
master_process off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${errorLogPath} info;

events {
  worker_connections 64;
}

http {
  log_format test escape=none '$request_method $uri $status range=$http_range if-range=$http_if_range bytes=$body_bytes_sent ua=$http_user_agent';
  access_log ${accessLogPath} test;
  client_body_temp_path ${join(dir, 'tmp', 'body')};
  proxy_temp_path ${join(dir, 'tmp', 'proxy')};
  fastcgi_temp_path ${join(dir, 'tmp', 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'tmp', 'uwsgi')};
  scgi_temp_path ${join(dir, 'tmp', 'scgi')};
  default_type application/octet-stream;
  sendfile on;

  server {
    listen 127.0.0.1:${port};
    root ${options.root};
    ${options.maxRanges != null ? `max_ranges ${options.maxRanges};` : ''}
    location / {
    }
  }
}
`)

  const child = spawn(NGINX_BINARY, ['-p', dir, '-c', conf, '-e', errorLogPath], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })

  const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
  const stop = async (): Promise<void> => {
    await kill(child, exited)
    await rm(dir, { recursive: true, force: true })
  }

  try {
    await waitForPort(port, join(dir, 'nginx.pid'), exited)
  } catch (err: any) {
    await kill(child, exited)
    const log = await readFile(errorLogPath, 'utf8').catch(() => '')
    throw new Error(`nginx did not start on 127.0.0.1:${port}: ${err.message}\n${stderr}\n${log}`)
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stop,
    async accessLog () {
      const text = await readFile(accessLogPath, 'utf8').catch(() => '')
      return text.split('\n').filter(line => line !== '')
    }
  }
}

async function kill (child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode != null || child.signalCode != null) {
    return
  }

  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
  await exited
  clearTimeout(timer)
}

async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address != null ? address.port : 0
      server.close(() => { resolve(port) })
    })
  })
}

/**
 * nginx writes its pid file after it bound its listening socket, so a pid file
 * plus an answering port means our nginx answers, not some other process that
 * took the port first
 */
async function waitForPort (port: number, pidFile: string, exited: Promise<number | null>): Promise<void> {
  let hasExited = false
  let exitCode: number | null = null
  void exited.then(code => { hasExited = true; exitCode = code })
  const deadline = Date.now() + START_TIMEOUT_MS

  while (Date.now() < deadline) {
    if (hasExited) {
      throw new Error(`nginx exited with code ${exitCode}`)
    }

    if (await exists(pidFile) && await answers(port)) {
      return
    }

    await new Promise(resolve => setTimeout(resolve, 50))
  }

  throw new Error(`port ${port} did not answer within ${START_TIMEOUT_MS} ms`)
}

async function answers (port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { socket.destroy(); resolve(false) })
  })
}

async function exists (path: string): Promise<boolean> {
  return access(path).then(() => true, () => false)
}
