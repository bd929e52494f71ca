import { Bitfield } from '../../src/utils/bitfield.ts'

/** A small seeded PRNG (mulberry32) returning floats in [0, 1), so picks are reproducible */
export function seededRng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A bitfield of `length` pieces with `indexes` set */
export function bits (length: number, indexes: Iterable<number> = []): Bitfield {
  const b = new Bitfield(length)
  for (const i of indexes) {
    b.set(i)
  }
  return b
}

/** A bitfield of `length` pieces with every piece set */
export function full (length: number): Bitfield {
  return bits(length, Array.from({ length }, (_, i) => i))
}

/** Integers in [start, end) */
export function range (start: number, end: number): number[] {
  return Array.from({ length: Math.max(0, end - start) }, (_, i) => start + i)
}
