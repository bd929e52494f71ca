import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface PieceRequest {
  taskId: string
  indexes: number[]
  waitMs: number
}

export namespace PieceRequest {
  let _codec: Codec<PieceRequest>

  export const codec = (): Codec<PieceRequest> => {
    if (_codec == null) {
      _codec = message<PieceRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.taskId != null && obj.taskId !== '')) {
          w.uint32(10)
          w.string(obj.taskId)
        }

        if (obj.indexes != null && obj.indexes.length > 0) {
          for (const value of obj.indexes) {
            w.uint32(16)
            w.uint32(value)
          }
        }

        if ((obj.waitMs != null && obj.waitMs !== 0)) {
          w.uint32(24)
          w.uint32(obj.waitMs)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          taskId: '',
          indexes: [],
          waitMs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.taskId = reader.string()
              break
            }
            case 2: {
              if (opts.limits?.indexes != null && obj.indexes.length === opts.limits.indexes) {
                throw new MaxLengthError('Decode error - repeated field "indexes" had too many elements')
              }

              obj.indexes.push(reader.uint32())
              break
            }
            case 3: {
              obj.waitMs = reader.uint32()
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
          indexes: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.taskId`,
                value: reader.string()
              }
              break
            }
            case 2: {
              if (opts.limits?.indexes != null && obj.indexes === opts.limits.indexes) {
                throw new MaxLengthError('Streaming decode error - repeated field "indexes" had too many elements')
              }

              yield {
                field: `${prefix}.indexes[]`,
                index: obj.indexes,
                value: reader.uint32()
              }

              obj.indexes++

              break
            }
            case 3: {
              yield {
                field: `${prefix}.waitMs`,
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

  export interface PieceRequestTaskIdFieldEvent {
    field: '$.taskId'
    value: string
  }

  export interface PieceRequestIndexesFieldEvent {
    field: '$.indexes[]'
    index: number
    value: number
  }

  export interface PieceRequestWaitMsFieldEvent {
    field: '$.waitMs'
    value: number
  }

  export function encode (obj: Partial<PieceRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PieceRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PieceRequest>): PieceRequest {
    return decodeMessage(buf, PieceRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PieceRequest>): Generator<PieceRequestTaskIdFieldEvent | PieceRequestIndexesFieldEvent | PieceRequestWaitMsFieldEvent> {
    return streamMessage(buf, PieceRequest.codec(), opts)
  }
}

export interface PieceHeader {
  index: number
  status: PieceHeader.Status
  length: number
  digest: Uint8Array<ArrayBuffer>
  message?: string
  attestor: string
  attestation: Uint8Array<ArrayBuffer>
}

export namespace PieceHeader {
  export enum Status {
    OK = 'OK',
    DONT_HAVE = 'DONT_HAVE',
    BUSY = 'BUSY',
    UNKNOWN_TASK = 'UNKNOWN_TASK',
    ERROR = 'ERROR'
  }

  enum __StatusValues {
    OK = 0,
    DONT_HAVE = 1,
    BUSY = 2,
    UNKNOWN_TASK = 3,
    ERROR = 4
  }

  export namespace Status {
    export const codec = (): Codec<Status> => {
      return enumeration<Status>(__StatusValues)
    }
  }

  let _codec: Codec<PieceHeader>

  export const codec = (): Codec<PieceHeader> => {
    if (_codec == null) {
      _codec = message<PieceHeader>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.index != null && obj.index !== 0)) {
          w.uint32(8)
          w.uint32(obj.index)
        }

        if (obj.status != null && __StatusValues[obj.status] !== 0) {
          w.uint32(16)
          PieceHeader.Status.codec().encode(obj.status, w)
        }

        if ((obj.length != null && obj.length !== 0)) {
          w.uint32(24)
          w.uint32(obj.length)
        }

        if ((obj.digest != null && obj.digest.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.digest)
        }

        if (obj.message != null) {
          w.uint32(42)
          w.string(obj.message)
        }

        if ((obj.attestor != null && obj.attestor !== '')) {
          w.uint32(50)
          w.string(obj.attestor)
        }

        if ((obj.attestation != null && obj.attestation.byteLength > 0)) {
          w.uint32(58)
          w.bytes(obj.attestation)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          index: 0,
          status: Status.OK,
          length: 0,
          digest: uint8ArrayAlloc(0),
          attestor: '',
          attestation: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.index = reader.uint32()
              break
            }
            case 2: {
              obj.status = PieceHeader.Status.codec().decode(reader)
              break
            }
            case 3: {
              obj.length = reader.uint32()
              break
            }
            case 4: {
              obj.digest = reader.bytes()
              break
            }
            case 5: {
              obj.message = reader.string()
              break
            }
            case 6: {
              obj.attestor = reader.string()
              break
            }
            case 7: {
              obj.attestation = reader.bytes()
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
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.index`,
                value: reader.uint32()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.status`,
                value: PieceHeader.Status.codec().decode(reader)
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.length`,
                value: reader.uint32()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.digest`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.message`,
                value: reader.string()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.attestor`,
                value: reader.string()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.attestation`,
                value: reader.bytes()
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

  export interface PieceHeaderIndexFieldEvent {
    field: '$.index'
    value: number
  }

  export interface PieceHeaderStatusFieldEvent {
    field: '$.status'
    value: PieceHeader.Status
  }

  export interface PieceHeaderLengthFieldEvent {
    field: '$.length'
    value: number
  }

  export interface PieceHeaderDigestFieldEvent {
    field: '$.digest'
    value: Uint8Array<ArrayBuffer>
  }

  export interface PieceHeaderMessageFieldEvent {
    field: '$.message'
    value: string
  }

  export interface PieceHeaderAttestorFieldEvent {
    field: '$.attestor'
    value: string
  }

  export interface PieceHeaderAttestationFieldEvent {
    field: '$.attestation'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<PieceHeader>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PieceHeader.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PieceHeader>): PieceHeader {
    return decodeMessage(buf, PieceHeader.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PieceHeader>): Generator<PieceHeaderIndexFieldEvent | PieceHeaderStatusFieldEvent | PieceHeaderLengthFieldEvent | PieceHeaderDigestFieldEvent | PieceHeaderMessageFieldEvent | PieceHeaderAttestorFieldEvent | PieceHeaderAttestationFieldEvent> {
    return streamMessage(buf, PieceHeader.codec(), opts)
  }
}
