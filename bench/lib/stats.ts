/**
 * Summaries and number formatting for the benchmark tables.
 */

export interface Summary {
  median: number
  min: number
  max: number
  values: number[]
}

export function median (values: number[]): number {
  if (values.length === 0) {
    return NaN
  }

  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1

  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

export function summarize (values: number[]): Summary {
  const ok = values.filter(v => Number.isFinite(v))

  return {
    median: median(ok),
    min: ok.length === 0 ? NaN : Math.min(...ok),
    max: ok.length === 0 ? NaN : Math.max(...ok),
    values
  }
}

/** `digits` decimals, or `–` for a missing value */
export function fmt (n: number | undefined, digits = 0): string {
  if (n == null || !Number.isFinite(n)) {
    return '–'
  }

  return n.toFixed(digits)
}

/** "median (min–max)", each number followed by `unit` */
export function fmtRange (s: Summary, digits = 0, unit = ''): string {
  if (!Number.isFinite(s.median)) {
    return '–'
  }

  if (s.values.length < 2 || s.min === s.max) {
    return `${fmt(s.median, digits)}${unit}`
  }

  return `${fmt(s.median, digits)}${unit} (${fmt(s.min, digits)}–${fmt(s.max, digits)}${unit})`
}

/** a ratio like "0.42×" */
export function fmtRatio (n: number | undefined): string {
  if (n == null || !Number.isFinite(n)) {
    return '–'
  }

  return `${n < 10 ? n.toFixed(2) : n.toFixed(1)}×`
}

export const KiB = 1024
export const MiB = 1024 * KiB
export const GiB = 1024 * MiB

export function fmtBytes (n: number): string {
  if (n >= GiB) {
    return `${Number((n / GiB).toFixed(2))} GiB`
  }

  if (n >= MiB) {
    return `${Number((n / MiB).toFixed(1))} MiB`
  }

  if (n >= KiB) {
    return `${Number((n / KiB).toFixed(1))} KiB`
  }

  return `${n} B`
}
