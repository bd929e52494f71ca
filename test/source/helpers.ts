import { concat } from 'uint8arrays/concat'

/**
 * Read an async iterable of chunks into one array. On failure the error is
 * returned together with the bytes that arrived before it, so a test can
 * check both.
 */
export async function collect (source: AsyncIterable<Uint8Array>): Promise<{ bytes: Uint8Array, error?: any }> {
  const chunks: Uint8Array[] = []

  try {
    for await (const chunk of source) {
      chunks.push(Uint8Array.from(chunk))
    }
  } catch (error: any) {
    return { bytes: concat(chunks), error }
  }

  return { bytes: concat(chunks) }
}

/**
 * The error a promise rejects with; throws if it resolves
 */
export async function rejection (promise: Promise<unknown>): Promise<any> {
  try {
    await promise
  } catch (err) {
    return err
  }

  throw new Error('expected the promise to reject, it resolved')
}
