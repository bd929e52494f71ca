import { AbortError, StreamStateError, TimeoutError } from '@libp2p/interface'
import type { AbortOptions, Stream, StreamCloseEvent } from '@libp2p/interface'

/**
 * Wait until a stream whose send() returned false has handed its whole write
 * buffer to the muxer, so the caller queues at most one slice at a time.
 *
 * Not `stream.onDrain()`: in `@libp2p/utils` 7.4.1 its promise is created once
 * and never reset, so after the first drain every later onDrain() resolves at
 * once and a sender that trusts it queues without bound (checked: 20 × 256 KiB
 * sends → 4.5 MiB in the write buffer). And one 'drain' is not enough either:
 * yamux emits it on every window update, even one that lets only part of the
 * buffer out, so we wait until the stream no longer needs a drain. Fails on
 * 'close', abort or timeout.
 */
export interface WaitForDrainOptions extends AbortOptions {
  /** reject with a TimeoutError if no drain comes within this many ms */
  timeoutMs?: number
  /** message of that TimeoutError */
  timeoutMessage?: string
}

export async function waitForDrain (stream: Stream, options: WaitForDrainOptions = {}): Promise<void> {
  options.signal?.throwIfAborted()

  if (!stream.writableNeedsDrain) {
    return
  }

  if (stream.writeStatus === 'closed' || stream.status !== 'open') {
    throw new StreamStateError(`Cannot wait for drain on a stream that is ${stream.status}`)
  }

  // every 'drain' runs the stream's send queue first (a microtask queued
  // before our listener resolves); if the window only let part of it out the
  // stream needs another drain
  while (stream.writableNeedsDrain) {
    await nextDrain(stream, options)
  }
}

async function nextDrain (stream: Stream, options: WaitForDrainOptions): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = options.timeoutMs == null
      ? undefined
      : setTimeout(() => {
        cleanup()
        reject(new TimeoutError(options.timeoutMessage ?? `The stream did not drain within ${options.timeoutMs} ms`))
      }, options.timeoutMs)
    const cleanup = (): void => {
      clearTimeout(timer)
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      options.signal?.removeEventListener('abort', onAbort)
    }
    const onDrain = (): void => {
      cleanup()
      resolve()
    }
    const onClose = (evt: StreamCloseEvent): void => {
      cleanup()
      reject(evt.error ?? new StreamStateError('The stream closed while waiting for it to drain'))
    }
    const onAbort = (): void => {
      cleanup()
      reject(options.signal?.reason ?? new AbortError('Waiting for the stream to drain was aborted'))
    }

    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    options.signal?.addEventListener('abort', onAbort)
  })
}
