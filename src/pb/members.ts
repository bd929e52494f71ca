import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface Heartbeat {
  swarm: string
  version: string
  addrs: Uint8Array<ArrayBuffer>[]
  trackerEligible: boolean
  load: number
  capacity: number
  protocols: string[]
  uptimeMs: bigint
  intervalMs: number
  seq: bigint
  tasks: number
}

export namespace Heartbeat {
  let _codec: Codec<Heartbeat>

  export const codec = (): Codec<Heartbeat> => {
    if (_codec == null) {
      _codec = message<Heartbeat>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.swarm != null && obj.swarm !== '')) {
          w.uint32(10)
          w.string(obj.swarm)
        }

        if ((obj.version != null && obj.version !== '')) {
          w.uint32(18)
          w.string(obj.version)
        }

        if (obj.addrs != null && obj.addrs.length > 0) {
          for (const value of obj.addrs) {
            w.uint32(26)
            w.bytes(value)
          }
        }

        if ((obj.trackerEligible != null && obj.trackerEligible !== false)) {
          w.uint32(32)
          w.bool(obj.trackerEligible)
        }

        if ((obj.load != null && obj.load !== 0)) {
          w.uint32(40)
          w.uint32(obj.load)
        }

        if ((obj.capacity != null && obj.capacity !== 0)) {
          w.uint32(48)
          w.uint32(obj.capacity)
        }

        if (obj.protocols != null && obj.protocols.length > 0) {
          for (const value of obj.protocols) {
            w.uint32(58)
            w.string(value)
          }
        }

        if ((obj.uptimeMs != null && obj.uptimeMs !== 0n)) {
          w.uint32(64)
          w.uint64(obj.uptimeMs)
        }

        if ((obj.intervalMs != null && obj.intervalMs !== 0)) {
          w.uint32(72)
          w.uint32(obj.intervalMs)
        }

        if ((obj.seq != null && obj.seq !== 0n)) {
          w.uint32(80)
          w.uint64(obj.seq)
        }

        if ((obj.tasks != null && obj.tasks !== 0)) {
          w.uint32(88)
          w.uint32(obj.tasks)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          swarm: '',
          version: '',
          addrs: [],
          trackerEligible: false,
          load: 0,
          capacity: 0,
          protocols: [],
          uptimeMs: 0n,
          intervalMs: 0,
          seq: 0n,
          tasks: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.swarm = reader.string()
              break
            }
            case 2: {
              obj.version = reader.string()
              break
            }
            case 3: {
              if (opts.limits?.addrs != null && obj.addrs.length === opts.limits.addrs) {
                throw new MaxLengthError('Decode error - repeated field "addrs" had too many elements')
              }

              obj.addrs.push(reader.bytes())
              break
            }
            case 4: {
              obj.trackerEligible = reader.bool()
              break
            }
            case 5: {
              obj.load = reader.uint32()
              break
            }
            case 6: {
              obj.capacity = reader.uint32()
              break
            }
            case 7: {
              if (opts.limits?.protocols != null && obj.protocols.length === opts.limits.protocols) {
                throw new MaxLengthError('Decode error - repeated field "protocols" had too many elements')
              }

              obj.protocols.push(reader.string())
              break
            }
            case 8: {
              obj.uptimeMs = reader.uint64()
              break
            }
            case 9: {
              obj.intervalMs = reader.uint32()
              break
            }
            case 10: {
              obj.seq = reader.uint64()
              break
            }
            case 11: {
              obj.tasks = reader.uint32()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          addrs: 0,
          protocols: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.swarm`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.version`,
                value: reader.string()
              }
              break
            }
            case 3: {
              if (opts.limits?.addrs != null && obj.addrs === opts.limits.addrs) {
                throw new MaxLengthError('Streaming decode error - repeated field "addrs" had too many elements')
              }

              yield {
                field: `${prefix}.addrs[]`,
                index: obj.addrs,
                value: reader.bytes()
              }

              obj.addrs++

              break
            }
            case 4: {
              yield {
                field: `${prefix}.trackerEligible`,
                value: reader.bool()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.load`,
                value: reader.uint32()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.capacity`,
                value: reader.uint32()
              }
              break
            }
            case 7: {
              if (opts.limits?.protocols != null && obj.protocols === opts.limits.protocols) {
                throw new MaxLengthError('Streaming decode error - repeated field "protocols" had too many elements')
              }

              yield {
                field: `${prefix}.protocols[]`,
                index: obj.protocols,
                value: reader.string()
              }

              obj.protocols++

              break
            }
            case 8: {
              yield {
                field: `${prefix}.uptimeMs`,
                value: reader.uint64()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.intervalMs`,
                value: reader.uint32()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.seq`,
                value: reader.uint64()
              }
              break
            }
            case 11: {
              yield {
                field: `${prefix}.tasks`,
                value: reader.uint32()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface HeartbeatSwarmFieldEvent {
    field: '$.swarm'
    value: string
  }

  export interface HeartbeatVersionFieldEvent {
    field: '$.version'
    value: string
  }

  export interface HeartbeatAddrsFieldEvent {
    field: '$.addrs[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface HeartbeatTrackerEligibleFieldEvent {
    field: '$.trackerEligible'
    value: boolean
  }

  export interface HeartbeatLoadFieldEvent {
    field: '$.load'
    value: number
  }

  export interface HeartbeatCapacityFieldEvent {
    field: '$.capacity'
    value: number
  }

  export interface HeartbeatProtocolsFieldEvent {
    field: '$.protocols[]'
    index: number
    value: string
  }

  export interface HeartbeatUptimeMsFieldEvent {
    field: '$.uptimeMs'
    value: bigint
  }

  export interface HeartbeatIntervalMsFieldEvent {
    field: '$.intervalMs'
    value: number
  }

  export interface HeartbeatSeqFieldEvent {
    field: '$.seq'
    value: bigint
  }

  export interface HeartbeatTasksFieldEvent {
    field: '$.tasks'
    value: number
  }

  export function encode (obj: Partial<Heartbeat>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Heartbeat.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Heartbeat>): Heartbeat {
    return decodeMessage(buf, Heartbeat.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Heartbeat>): Generator<HeartbeatSwarmFieldEvent | HeartbeatVersionFieldEvent | HeartbeatAddrsFieldEvent | HeartbeatTrackerEligibleFieldEvent | HeartbeatLoadFieldEvent | HeartbeatCapacityFieldEvent | HeartbeatProtocolsFieldEvent | HeartbeatUptimeMsFieldEvent | HeartbeatIntervalMsFieldEvent | HeartbeatSeqFieldEvent | HeartbeatTasksFieldEvent> {
    return streamMessage(buf, Heartbeat.codec(), opts)
  }
}
