import './polyfill.ts'

export const VERSION = '0.1.0'
