import { expect } from 'aegir/chai'
import { VERSION } from '../src/index.ts'

describe('smoke', () => {
  it('has a version', () => {
    expect(VERSION).to.match(/^\d+\.\d+\.\d+$/)
  })
})
