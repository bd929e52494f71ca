export { Daemon, DaemonRunningError, socketPath, SOCKET_FILE } from './daemon.ts'
export type { DaemonInit } from './daemon.ts'
export { ControlApi, HttpError, sendJson, readJson } from './control-api.ts'
export type { RouteHandler } from './control-api.ts'
