import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export enum ErrorCode {
  NONE = 'NONE',
  INVALID_REQUEST = 'INVALID_REQUEST',
  UNKNOWN_TASK = 'UNKNOWN_TASK',
  META_CONFLICT = 'META_CONFLICT',
  TOO_MANY_TASKS = 'TOO_MANY_TASKS',
  TOO_MANY_PEERS = 'TOO_MANY_PEERS',
  BUSY = 'BUSY',
  NOT_REGISTERED = 'NOT_REGISTERED',
  NOT_A_TRACKER = 'NOT_A_TRACKER',
  INTERNAL = 'INTERNAL'
}

enum __ErrorCodeValues {
  NONE = 0,
  INVALID_REQUEST = 1,
  UNKNOWN_TASK = 2,
  META_CONFLICT = 3,
  TOO_MANY_TASKS = 4,
  TOO_MANY_PEERS = 5,
  BUSY = 6,
  NOT_REGISTERED = 7,
  NOT_A_TRACKER = 8,
  INTERNAL = 9
}

export namespace ErrorCode {
  export const codec = (): Codec<ErrorCode> => {
    return enumeration<ErrorCode>(__ErrorCodeValues)
  }
}

export interface TaskMeta {
  contentLength: bigint
  pieceSize: number
  etag?: string
  lastModified?: string
  url?: string
  digest?: string
  pieceDigests: Uint8Array<ArrayBuffer>[]
}

export namespace TaskMeta {
  let _codec: Codec<TaskMeta>

  export const codec = (): Codec<TaskMeta> => {
    if (_codec == null) {
      _codec = message<TaskMeta>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.contentLength != null && obj.contentLength !== 0n)) {
          w.uint32(8)
          w.uint64(obj.contentLength)
        }

        if ((obj.pieceSize != null && obj.pieceSize !== 0)) {
          w.uint32(16)
          w.uint32(obj.pieceSize)
        }

        if (obj.etag != null) {
          w.uint32(26)
          w.string(obj.etag)
        }

        if (obj.lastModified != null) {
          w.uint32(34)
          w.string(obj.lastModified)
        }

        if (obj.url != null) {
          w.uint32(42)
          w.string(obj.url)
        }

        if (obj.digest != null) {
          w.uint32(50)
          w.string(obj.digest)
        }

        if (obj.pieceDigests != null && obj.pieceDigests.length > 0) {
          for (const value of obj.pieceDigests) {
            w.uint32(58)
            w.bytes(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          contentLength: 0n,
          pieceSize: 0,
          pieceDigests: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.contentLength = reader.uint64()
              break
            }
            case 2: {
              obj.pieceSize = reader.uint32()
              break
            }
            case 3: {
              obj.etag = reader.string()
              break
            }
            case 4: {
              obj.lastModified = reader.string()
              break
            }
            case 5: {
              obj.url = reader.string()
              break
            }
            case 6: {
              obj.digest = reader.string()
              break
            }
            case 7: {
              if (opts.limits?.pieceDigests != null && obj.pieceDigests.length === opts.limits.pieceDigests) {
                throw new MaxLengthError('Decode error - repeated field "pieceDigests" had too many elements')
              }

              obj.pieceDigests.push(reader.bytes())
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
          pieceDigests: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.contentLength`,
                value: reader.uint64()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.pieceSize`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.etag`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.lastModified`,
                value: reader.string()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.url`,
                value: reader.string()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.digest`,
                value: reader.string()
              }
              break
            }
            case 7: {
              if (opts.limits?.pieceDigests != null && obj.pieceDigests === opts.limits.pieceDigests) {
                throw new MaxLengthError('Streaming decode error - repeated field "pieceDigests" had too many elements')
              }

              yield {
                field: `${prefix}.pieceDigests[]`,
                index: obj.pieceDigests,
                value: reader.bytes()
              }

              obj.pieceDigests++

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

  export interface TaskMetaContentLengthFieldEvent {
    field: '$.contentLength'
    value: bigint
  }

  export interface TaskMetaPieceSizeFieldEvent {
    field: '$.pieceSize'
    value: number
  }

  export interface TaskMetaEtagFieldEvent {
    field: '$.etag'
    value: string
  }

  export interface TaskMetaLastModifiedFieldEvent {
    field: '$.lastModified'
    value: string
  }

  export interface TaskMetaUrlFieldEvent {
    field: '$.url'
    value: string
  }

  export interface TaskMetaDigestFieldEvent {
    field: '$.digest'
    value: string
  }

  export interface TaskMetaPieceDigestsFieldEvent {
    field: '$.pieceDigests[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<TaskMeta>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TaskMeta.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskMeta>): TaskMeta {
    return decodeMessage(buf, TaskMeta.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TaskMeta>): Generator<TaskMetaContentLengthFieldEvent | TaskMetaPieceSizeFieldEvent | TaskMetaEtagFieldEvent | TaskMetaLastModifiedFieldEvent | TaskMetaUrlFieldEvent | TaskMetaDigestFieldEvent | TaskMetaPieceDigestsFieldEvent> {
    return streamMessage(buf, TaskMeta.codec(), opts)
  }
}

export interface Announce {
  url?: string
  digest?: string
  meta?: TaskMeta
  have: Uint8Array<ArrayBuffer>
  addrs: Uint8Array<ArrayBuffer>[]
  uploadSlots: number
  freeUploadSlots: number
  version: string
  wantGrant: boolean
  zone?: string
  wantDigests: boolean
  direct: boolean
  waitMs: number
  attested: boolean
}

export namespace Announce {
  let _codec: Codec<Announce>

  export const codec = (): Codec<Announce> => {
    if (_codec == null) {
      _codec = message<Announce>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.url != null) {
          w.uint32(10)
          w.string(obj.url)
        }

        if (obj.digest != null) {
          w.uint32(18)
          w.string(obj.digest)
        }

        if (obj.meta != null) {
          w.uint32(26)
          TaskMeta.codec().encode(obj.meta, w)
        }

        if ((obj.have != null && obj.have.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.have)
        }

        if (obj.addrs != null && obj.addrs.length > 0) {
          for (const value of obj.addrs) {
            w.uint32(42)
            w.bytes(value)
          }
        }

        if ((obj.uploadSlots != null && obj.uploadSlots !== 0)) {
          w.uint32(48)
          w.uint32(obj.uploadSlots)
        }

        if ((obj.freeUploadSlots != null && obj.freeUploadSlots !== 0)) {
          w.uint32(56)
          w.uint32(obj.freeUploadSlots)
        }

        if ((obj.version != null && obj.version !== '')) {
          w.uint32(66)
          w.string(obj.version)
        }

        if ((obj.wantGrant != null && obj.wantGrant !== false)) {
          w.uint32(72)
          w.bool(obj.wantGrant)
        }

        if (obj.zone != null) {
          w.uint32(82)
          w.string(obj.zone)
        }

        if ((obj.wantDigests != null && obj.wantDigests !== false)) {
          w.uint32(88)
          w.bool(obj.wantDigests)
        }

        if ((obj.direct != null && obj.direct !== false)) {
          w.uint32(96)
          w.bool(obj.direct)
        }

        if ((obj.waitMs != null && obj.waitMs !== 0)) {
          w.uint32(104)
          w.uint32(obj.waitMs)
        }

        if ((obj.attested != null && obj.attested !== false)) {
          w.uint32(112)
          w.bool(obj.attested)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          have: uint8ArrayAlloc(0),
          addrs: [],
          uploadSlots: 0,
          freeUploadSlots: 0,
          version: '',
          wantGrant: false,
          wantDigests: false,
          direct: false,
          waitMs: 0,
          attested: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.url = reader.string()
              break
            }
            case 2: {
              obj.digest = reader.string()
              break
            }
            case 3: {
              obj.meta = TaskMeta.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.meta
              })
              break
            }
            case 4: {
              obj.have = reader.bytes()
              break
            }
            case 5: {
              if (opts.limits?.addrs != null && obj.addrs.length === opts.limits.addrs) {
                throw new MaxLengthError('Decode error - repeated field "addrs" had too many elements')
              }

              obj.addrs.push(reader.bytes())
              break
            }
            case 6: {
              obj.uploadSlots = reader.uint32()
              break
            }
            case 7: {
              obj.freeUploadSlots = reader.uint32()
              break
            }
            case 8: {
              obj.version = reader.string()
              break
            }
            case 9: {
              obj.wantGrant = reader.bool()
              break
            }
            case 10: {
              obj.zone = reader.string()
              break
            }
            case 11: {
              obj.wantDigests = reader.bool()
              break
            }
            case 12: {
              obj.direct = reader.bool()
              break
            }
            case 13: {
              obj.waitMs = reader.uint32()
              break
            }
            case 14: {
              obj.attested = reader.bool()
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
          addrs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.url`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.digest`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield * TaskMeta.codec().stream(reader, reader.uint32(), `${prefix}.meta`, {
                limits: opts.limits?.meta
              })

              break
            }
            case 4: {
              yield {
                field: `${prefix}.have`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
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
            case 6: {
              yield {
                field: `${prefix}.uploadSlots`,
                value: reader.uint32()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.freeUploadSlots`,
                value: reader.uint32()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.version`,
                value: reader.string()
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.wantGrant`,
                value: reader.bool()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.zone`,
                value: reader.string()
              }
              break
            }
            case 11: {
              yield {
                field: `${prefix}.wantDigests`,
                value: reader.bool()
              }
              break
            }
            case 12: {
              yield {
                field: `${prefix}.direct`,
                value: reader.bool()
              }
              break
            }
            case 13: {
              yield {
                field: `${prefix}.waitMs`,
                value: reader.uint32()
              }
              break
            }
            case 14: {
              yield {
                field: `${prefix}.attested`,
                value: reader.bool()
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

  export interface AnnounceUrlFieldEvent {
    field: '$.url'
    value: string
  }

  export interface AnnounceDigestFieldEvent {
    field: '$.digest'
    value: string
  }

  export interface AnnounceMetaContentLengthFieldEvent {
    field: '$.meta.contentLength'
    value: bigint
  }

  export interface AnnounceMetaPieceSizeFieldEvent {
    field: '$.meta.pieceSize'
    value: number
  }

  export interface AnnounceMetaEtagFieldEvent {
    field: '$.meta.etag'
    value: string
  }

  export interface AnnounceMetaLastModifiedFieldEvent {
    field: '$.meta.lastModified'
    value: string
  }

  export interface AnnounceMetaUrlFieldEvent {
    field: '$.meta.url'
    value: string
  }

  export interface AnnounceMetaDigestFieldEvent {
    field: '$.meta.digest'
    value: string
  }

  export interface AnnounceMetaPieceDigestsFieldEvent {
    field: '$.meta.pieceDigests[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface AnnounceHaveFieldEvent {
    field: '$.have'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AnnounceAddrsFieldEvent {
    field: '$.addrs[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface AnnounceUploadSlotsFieldEvent {
    field: '$.uploadSlots'
    value: number
  }

  export interface AnnounceFreeUploadSlotsFieldEvent {
    field: '$.freeUploadSlots'
    value: number
  }

  export interface AnnounceVersionFieldEvent {
    field: '$.version'
    value: string
  }

  export interface AnnounceWantGrantFieldEvent {
    field: '$.wantGrant'
    value: boolean
  }

  export interface AnnounceZoneFieldEvent {
    field: '$.zone'
    value: string
  }

  export interface AnnounceWantDigestsFieldEvent {
    field: '$.wantDigests'
    value: boolean
  }

  export interface AnnounceDirectFieldEvent {
    field: '$.direct'
    value: boolean
  }

  export interface AnnounceWaitMsFieldEvent {
    field: '$.waitMs'
    value: number
  }

  export interface AnnounceAttestedFieldEvent {
    field: '$.attested'
    value: boolean
  }

  export function encode (obj: Partial<Announce>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Announce.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Announce>): Announce {
    return decodeMessage(buf, Announce.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Announce>): Generator<AnnounceUrlFieldEvent | AnnounceDigestFieldEvent | AnnounceMetaContentLengthFieldEvent | AnnounceMetaPieceSizeFieldEvent | AnnounceMetaEtagFieldEvent | AnnounceMetaLastModifiedFieldEvent | AnnounceMetaUrlFieldEvent | AnnounceMetaDigestFieldEvent | AnnounceMetaPieceDigestsFieldEvent | AnnounceHaveFieldEvent | AnnounceAddrsFieldEvent | AnnounceUploadSlotsFieldEvent | AnnounceFreeUploadSlotsFieldEvent | AnnounceVersionFieldEvent | AnnounceWantGrantFieldEvent | AnnounceZoneFieldEvent | AnnounceWantDigestsFieldEvent | AnnounceDirectFieldEvent | AnnounceWaitMsFieldEvent | AnnounceAttestedFieldEvent> {
    return streamMessage(buf, Announce.codec(), opts)
  }
}

export interface ReportedPiece {
  index: number
  digest: Uint8Array<ArrayBuffer>
}

export namespace ReportedPiece {
  let _codec: Codec<ReportedPiece>

  export const codec = (): Codec<ReportedPiece> => {
    if (_codec == null) {
      _codec = message<ReportedPiece>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.index != null && obj.index !== 0)) {
          w.uint32(8)
          w.uint32(obj.index)
        }

        if ((obj.digest != null && obj.digest.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.digest)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          index: 0,
          digest: uint8ArrayAlloc(0)
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
              obj.digest = reader.bytes()
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
                field: `${prefix}.digest`,
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

  export interface ReportedPieceIndexFieldEvent {
    field: '$.index'
    value: number
  }

  export interface ReportedPieceDigestFieldEvent {
    field: '$.digest'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<ReportedPiece>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ReportedPiece.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReportedPiece>): ReportedPiece {
    return decodeMessage(buf, ReportedPiece.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReportedPiece>): Generator<ReportedPieceIndexFieldEvent | ReportedPieceDigestFieldEvent> {
    return streamMessage(buf, ReportedPiece.codec(), opts)
  }
}

export interface Report {
  pieces: ReportedPiece[]
}

export namespace Report {
  let _codec: Codec<Report>

  export const codec = (): Codec<Report> => {
    if (_codec == null) {
      _codec = message<Report>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.pieces != null && obj.pieces.length > 0) {
          for (const value of obj.pieces) {
            w.uint32(10)
            ReportedPiece.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          pieces: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.pieces != null && obj.pieces.length === opts.limits.pieces) {
                throw new MaxLengthError('Decode error - repeated field "pieces" had too many elements')
              }

              obj.pieces.push(ReportedPiece.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.pieces$
              }))
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
          pieces: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.pieces != null && obj.pieces === opts.limits.pieces) {
                throw new MaxLengthError('Streaming decode error - repeated field "pieces" had too many elements')
              }

              for (const evt of ReportedPiece.codec().stream(reader, reader.uint32(), `${prefix}.pieces[]`, {
                limits: opts.limits?.pieces$
              })) {
                yield {
                  ...evt,
                  index: obj.pieces
                }
              }

              obj.pieces++

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

  export interface ReportPiecesIndexFieldEvent {
    field: '$.pieces[].index'
    value: number
    index: number
  }

  export interface ReportPiecesDigestFieldEvent {
    field: '$.pieces[].digest'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export function encode (obj: Partial<Report>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Report.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Report>): Report {
    return decodeMessage(buf, Report.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Report>): Generator<ReportPiecesIndexFieldEvent | ReportPiecesDigestFieldEvent> {
    return streamMessage(buf, Report.codec(), opts)
  }
}

export interface BadPeer {
  peerId: string
  index: number
}

export namespace BadPeer {
  let _codec: Codec<BadPeer>

  export const codec = (): Codec<BadPeer> => {
    if (_codec == null) {
      _codec = message<BadPeer>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.peerId != null && obj.peerId !== '')) {
          w.uint32(10)
          w.string(obj.peerId)
        }

        if ((obj.index != null && obj.index !== 0)) {
          w.uint32(16)
          w.uint32(obj.index)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          peerId: '',
          index: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.peerId = reader.string()
              break
            }
            case 2: {
              obj.index = reader.uint32()
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
                field: `${prefix}.peerId`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.index`,
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

  export interface BadPeerPeerIdFieldEvent {
    field: '$.peerId'
    value: string
  }

  export interface BadPeerIndexFieldEvent {
    field: '$.index'
    value: number
  }

  export function encode (obj: Partial<BadPeer>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, BadPeer.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BadPeer>): BadPeer {
    return decodeMessage(buf, BadPeer.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BadPeer>): Generator<BadPeerPeerIdFieldEvent | BadPeerIndexFieldEvent> {
    return streamMessage(buf, BadPeer.codec(), opts)
  }
}

export interface TrackerRequest {
  type: TrackerRequest.MessageType
  taskId: string
  announce?: Announce
  report?: Report
  badPeer?: BadPeer
}

export namespace TrackerRequest {
  export enum MessageType {
    UNSPECIFIED = 'UNSPECIFIED',
    ANNOUNCE = 'ANNOUNCE',
    REPORT = 'REPORT',
    LEAVE = 'LEAVE',
    BAD_PEER = 'BAD_PEER'
  }

  enum __MessageTypeValues {
    UNSPECIFIED = 0,
    ANNOUNCE = 1,
    REPORT = 2,
    LEAVE = 3,
    BAD_PEER = 4
  }

  export namespace MessageType {
    export const codec = (): Codec<MessageType> => {
      return enumeration<MessageType>(__MessageTypeValues)
    }
  }

  let _codec: Codec<TrackerRequest>

  export const codec = (): Codec<TrackerRequest> => {
    if (_codec == null) {
      _codec = message<TrackerRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.type != null && __MessageTypeValues[obj.type] !== 0) {
          w.uint32(8)
          TrackerRequest.MessageType.codec().encode(obj.type, w)
        }

        if ((obj.taskId != null && obj.taskId !== '')) {
          w.uint32(18)
          w.string(obj.taskId)
        }

        if (obj.announce != null) {
          w.uint32(26)
          Announce.codec().encode(obj.announce, w)
        }

        if (obj.report != null) {
          w.uint32(34)
          Report.codec().encode(obj.report, w)
        }

        if (obj.badPeer != null) {
          w.uint32(42)
          BadPeer.codec().encode(obj.badPeer, w)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          type: MessageType.UNSPECIFIED,
          taskId: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.type = TrackerRequest.MessageType.codec().decode(reader)
              break
            }
            case 2: {
              obj.taskId = reader.string()
              break
            }
            case 3: {
              obj.announce = Announce.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.announce
              })
              break
            }
            case 4: {
              obj.report = Report.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.report
              })
              break
            }
            case 5: {
              obj.badPeer = BadPeer.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.badPeer
              })
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
                field: `${prefix}.type`,
                value: TrackerRequest.MessageType.codec().decode(reader)
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.taskId`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield * Announce.codec().stream(reader, reader.uint32(), `${prefix}.announce`, {
                limits: opts.limits?.announce
              })

              break
            }
            case 4: {
              yield * Report.codec().stream(reader, reader.uint32(), `${prefix}.report`, {
                limits: opts.limits?.report
              })

              break
            }
            case 5: {
              yield * BadPeer.codec().stream(reader, reader.uint32(), `${prefix}.badPeer`, {
                limits: opts.limits?.badPeer
              })

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

  export interface TrackerRequestTypeFieldEvent {
    field: '$.type'
    value: TrackerRequest.MessageType
  }

  export interface TrackerRequestTaskIdFieldEvent {
    field: '$.taskId'
    value: string
  }

  export interface TrackerRequestAnnounceUrlFieldEvent {
    field: '$.announce.url'
    value: string
  }

  export interface TrackerRequestAnnounceDigestFieldEvent {
    field: '$.announce.digest'
    value: string
  }

  export interface TrackerRequestAnnounceMetaContentLengthFieldEvent {
    field: '$.announce.meta.contentLength'
    value: bigint
  }

  export interface TrackerRequestAnnounceMetaPieceSizeFieldEvent {
    field: '$.announce.meta.pieceSize'
    value: number
  }

  export interface TrackerRequestAnnounceMetaEtagFieldEvent {
    field: '$.announce.meta.etag'
    value: string
  }

  export interface TrackerRequestAnnounceMetaLastModifiedFieldEvent {
    field: '$.announce.meta.lastModified'
    value: string
  }

  export interface TrackerRequestAnnounceMetaUrlFieldEvent {
    field: '$.announce.meta.url'
    value: string
  }

  export interface TrackerRequestAnnounceMetaDigestFieldEvent {
    field: '$.announce.meta.digest'
    value: string
  }

  export interface TrackerRequestAnnounceMetaPieceDigestsFieldEvent {
    field: '$.announce.meta.pieceDigests[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface TrackerRequestAnnounceHaveFieldEvent {
    field: '$.announce.have'
    value: Uint8Array<ArrayBuffer>
  }

  export interface TrackerRequestAnnounceAddrsFieldEvent {
    field: '$.announce.addrs[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface TrackerRequestAnnounceUploadSlotsFieldEvent {
    field: '$.announce.uploadSlots'
    value: number
  }

  export interface TrackerRequestAnnounceFreeUploadSlotsFieldEvent {
    field: '$.announce.freeUploadSlots'
    value: number
  }

  export interface TrackerRequestAnnounceVersionFieldEvent {
    field: '$.announce.version'
    value: string
  }

  export interface TrackerRequestAnnounceWantGrantFieldEvent {
    field: '$.announce.wantGrant'
    value: boolean
  }

  export interface TrackerRequestAnnounceZoneFieldEvent {
    field: '$.announce.zone'
    value: string
  }

  export interface TrackerRequestAnnounceWantDigestsFieldEvent {
    field: '$.announce.wantDigests'
    value: boolean
  }

  export interface TrackerRequestAnnounceDirectFieldEvent {
    field: '$.announce.direct'
    value: boolean
  }

  export interface TrackerRequestAnnounceWaitMsFieldEvent {
    field: '$.announce.waitMs'
    value: number
  }

  export interface TrackerRequestAnnounceAttestedFieldEvent {
    field: '$.announce.attested'
    value: boolean
  }

  export interface TrackerRequestReportPiecesIndexFieldEvent {
    field: '$.report.pieces[].index'
    value: number
    index: number
  }

  export interface TrackerRequestReportPiecesDigestFieldEvent {
    field: '$.report.pieces[].digest'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface TrackerRequestBadPeerPeerIdFieldEvent {
    field: '$.badPeer.peerId'
    value: string
  }

  export interface TrackerRequestBadPeerIndexFieldEvent {
    field: '$.badPeer.index'
    value: number
  }

  export function encode (obj: Partial<TrackerRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TrackerRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TrackerRequest>): TrackerRequest {
    return decodeMessage(buf, TrackerRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TrackerRequest>): Generator<TrackerRequestTypeFieldEvent | TrackerRequestTaskIdFieldEvent | TrackerRequestAnnounceUrlFieldEvent | TrackerRequestAnnounceDigestFieldEvent | TrackerRequestAnnounceMetaContentLengthFieldEvent | TrackerRequestAnnounceMetaPieceSizeFieldEvent | TrackerRequestAnnounceMetaEtagFieldEvent | TrackerRequestAnnounceMetaLastModifiedFieldEvent | TrackerRequestAnnounceMetaUrlFieldEvent | TrackerRequestAnnounceMetaDigestFieldEvent | TrackerRequestAnnounceMetaPieceDigestsFieldEvent | TrackerRequestAnnounceHaveFieldEvent | TrackerRequestAnnounceAddrsFieldEvent | TrackerRequestAnnounceUploadSlotsFieldEvent | TrackerRequestAnnounceFreeUploadSlotsFieldEvent | TrackerRequestAnnounceVersionFieldEvent | TrackerRequestAnnounceWantGrantFieldEvent | TrackerRequestAnnounceZoneFieldEvent | TrackerRequestAnnounceWantDigestsFieldEvent | TrackerRequestAnnounceDirectFieldEvent | TrackerRequestAnnounceWaitMsFieldEvent | TrackerRequestAnnounceAttestedFieldEvent | TrackerRequestReportPiecesIndexFieldEvent | TrackerRequestReportPiecesDigestFieldEvent | TrackerRequestBadPeerPeerIdFieldEvent | TrackerRequestBadPeerIndexFieldEvent> {
    return streamMessage(buf, TrackerRequest.codec(), opts)
  }
}

export interface PeerAddress {
  peerId: string
  addrs: Uint8Array<ArrayBuffer>[]
}

export namespace PeerAddress {
  let _codec: Codec<PeerAddress>

  export const codec = (): Codec<PeerAddress> => {
    if (_codec == null) {
      _codec = message<PeerAddress>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.peerId != null && obj.peerId !== '')) {
          w.uint32(10)
          w.string(obj.peerId)
        }

        if (obj.addrs != null && obj.addrs.length > 0) {
          for (const value of obj.addrs) {
            w.uint32(18)
            w.bytes(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          peerId: '',
          addrs: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.peerId = reader.string()
              break
            }
            case 2: {
              if (opts.limits?.addrs != null && obj.addrs.length === opts.limits.addrs) {
                throw new MaxLengthError('Decode error - repeated field "addrs" had too many elements')
              }

              obj.addrs.push(reader.bytes())
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
          addrs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.peerId`,
                value: reader.string()
              }
              break
            }
            case 2: {
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

  export interface PeerAddressPeerIdFieldEvent {
    field: '$.peerId'
    value: string
  }

  export interface PeerAddressAddrsFieldEvent {
    field: '$.addrs[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<PeerAddress>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, PeerAddress.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PeerAddress>): PeerAddress {
    return decodeMessage(buf, PeerAddress.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PeerAddress>): Generator<PeerAddressPeerIdFieldEvent | PeerAddressAddrsFieldEvent> {
    return streamMessage(buf, PeerAddress.codec(), opts)
  }
}

export interface Parent {
  peerId: string
  addrs: Uint8Array<ArrayBuffer>[]
  have: Uint8Array<ArrayBuffer>
  freeUploadSlots: number
}

export namespace Parent {
  let _codec: Codec<Parent>

  export const codec = (): Codec<Parent> => {
    if (_codec == null) {
      _codec = message<Parent>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.peerId != null && obj.peerId !== '')) {
          w.uint32(10)
          w.string(obj.peerId)
        }

        if (obj.addrs != null && obj.addrs.length > 0) {
          for (const value of obj.addrs) {
            w.uint32(18)
            w.bytes(value)
          }
        }

        if ((obj.have != null && obj.have.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.have)
        }

        if ((obj.freeUploadSlots != null && obj.freeUploadSlots !== 0)) {
          w.uint32(32)
          w.uint32(obj.freeUploadSlots)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          peerId: '',
          addrs: [],
          have: uint8ArrayAlloc(0),
          freeUploadSlots: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.peerId = reader.string()
              break
            }
            case 2: {
              if (opts.limits?.addrs != null && obj.addrs.length === opts.limits.addrs) {
                throw new MaxLengthError('Decode error - repeated field "addrs" had too many elements')
              }

              obj.addrs.push(reader.bytes())
              break
            }
            case 3: {
              obj.have = reader.bytes()
              break
            }
            case 4: {
              obj.freeUploadSlots = reader.uint32()
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
          addrs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.peerId`,
                value: reader.string()
              }
              break
            }
            case 2: {
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
            case 3: {
              yield {
                field: `${prefix}.have`,
                value: reader.bytes()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.freeUploadSlots`,
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

  export interface ParentPeerIdFieldEvent {
    field: '$.peerId'
    value: string
  }

  export interface ParentAddrsFieldEvent {
    field: '$.addrs[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface ParentHaveFieldEvent {
    field: '$.have'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ParentFreeUploadSlotsFieldEvent {
    field: '$.freeUploadSlots'
    value: number
  }

  export function encode (obj: Partial<Parent>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Parent.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Parent>): Parent {
    return decodeMessage(buf, Parent.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Parent>): Generator<ParentPeerIdFieldEvent | ParentAddrsFieldEvent | ParentHaveFieldEvent | ParentFreeUploadSlotsFieldEvent> {
    return streamMessage(buf, Parent.codec(), opts)
  }
}

export interface TrackerResponse {
  status: TrackerResponse.Status
  errorCode: ErrorCode
  message?: string
  redirect?: PeerAddress
  meta?: TaskMeta
  parents: Parent[]
  grant: number[]
  intervalMs: number
  rejected: number[]
  grantStripe: number
  upstream: string
  sources: string[]
}

export namespace TrackerResponse {
  export enum Status {
    UNSPECIFIED = 'UNSPECIFIED',
    OK = 'OK',
    REDIRECT = 'REDIRECT',
    REFUSED = 'REFUSED',
    NEED_META = 'NEED_META',
    ERROR = 'ERROR'
  }

  enum __StatusValues {
    UNSPECIFIED = 0,
    OK = 1,
    REDIRECT = 2,
    REFUSED = 3,
    NEED_META = 4,
    ERROR = 5
  }

  export namespace Status {
    export const codec = (): Codec<Status> => {
      return enumeration<Status>(__StatusValues)
    }
  }

  let _codec: Codec<TrackerResponse>

  export const codec = (): Codec<TrackerResponse> => {
    if (_codec == null) {
      _codec = message<TrackerResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.status != null && __StatusValues[obj.status] !== 0) {
          w.uint32(8)
          TrackerResponse.Status.codec().encode(obj.status, w)
        }

        if (obj.errorCode != null && __ErrorCodeValues[obj.errorCode] !== 0) {
          w.uint32(16)
          ErrorCode.codec().encode(obj.errorCode, w)
        }

        if (obj.message != null) {
          w.uint32(26)
          w.string(obj.message)
        }

        if (obj.redirect != null) {
          w.uint32(34)
          PeerAddress.codec().encode(obj.redirect, w)
        }

        if (obj.meta != null) {
          w.uint32(42)
          TaskMeta.codec().encode(obj.meta, w)
        }

        if (obj.parents != null && obj.parents.length > 0) {
          for (const value of obj.parents) {
            w.uint32(50)
            Parent.codec().encode(value, w)
          }
        }

        if (obj.grant != null && obj.grant.length > 0) {
          for (const value of obj.grant) {
            w.uint32(56)
            w.uint32(value)
          }
        }

        if ((obj.intervalMs != null && obj.intervalMs !== 0)) {
          w.uint32(64)
          w.uint32(obj.intervalMs)
        }

        if (obj.rejected != null && obj.rejected.length > 0) {
          for (const value of obj.rejected) {
            w.uint32(72)
            w.uint32(value)
          }
        }

        if ((obj.grantStripe != null && obj.grantStripe !== 0)) {
          w.uint32(80)
          w.uint32(obj.grantStripe)
        }

        if ((obj.upstream != null && obj.upstream !== '')) {
          w.uint32(90)
          w.string(obj.upstream)
        }

        if (obj.sources != null && obj.sources.length > 0) {
          for (const value of obj.sources) {
            w.uint32(98)
            w.string(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          status: Status.UNSPECIFIED,
          errorCode: ErrorCode.NONE,
          parents: [],
          grant: [],
          intervalMs: 0,
          rejected: [],
          grantStripe: 0,
          upstream: '',
          sources: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.status = TrackerResponse.Status.codec().decode(reader)
              break
            }
            case 2: {
              obj.errorCode = ErrorCode.codec().decode(reader)
              break
            }
            case 3: {
              obj.message = reader.string()
              break
            }
            case 4: {
              obj.redirect = PeerAddress.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.redirect
              })
              break
            }
            case 5: {
              obj.meta = TaskMeta.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.meta
              })
              break
            }
            case 6: {
              if (opts.limits?.parents != null && obj.parents.length === opts.limits.parents) {
                throw new MaxLengthError('Decode error - repeated field "parents" had too many elements')
              }

              obj.parents.push(Parent.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.parents$
              }))
              break
            }
            case 7: {
              if (opts.limits?.grant != null && obj.grant.length === opts.limits.grant) {
                throw new MaxLengthError('Decode error - repeated field "grant" had too many elements')
              }

              obj.grant.push(reader.uint32())
              break
            }
            case 8: {
              obj.intervalMs = reader.uint32()
              break
            }
            case 9: {
              if (opts.limits?.rejected != null && obj.rejected.length === opts.limits.rejected) {
                throw new MaxLengthError('Decode error - repeated field "rejected" had too many elements')
              }

              obj.rejected.push(reader.uint32())
              break
            }
            case 10: {
              obj.grantStripe = reader.uint32()
              break
            }
            case 11: {
              obj.upstream = reader.string()
              break
            }
            case 12: {
              if (opts.limits?.sources != null && obj.sources.length === opts.limits.sources) {
                throw new MaxLengthError('Decode error - repeated field "sources" had too many elements')
              }

              obj.sources.push(reader.string())
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
          parents: 0,
          grant: 0,
          rejected: 0,
          sources: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.status`,
                value: TrackerResponse.Status.codec().decode(reader)
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.errorCode`,
                value: ErrorCode.codec().decode(reader)
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.message`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield * PeerAddress.codec().stream(reader, reader.uint32(), `${prefix}.redirect`, {
                limits: opts.limits?.redirect
              })

              break
            }
            case 5: {
              yield * TaskMeta.codec().stream(reader, reader.uint32(), `${prefix}.meta`, {
                limits: opts.limits?.meta
              })

              break
            }
            case 6: {
              if (opts.limits?.parents != null && obj.parents === opts.limits.parents) {
                throw new MaxLengthError('Streaming decode error - repeated field "parents" had too many elements')
              }

              for (const evt of Parent.codec().stream(reader, reader.uint32(), `${prefix}.parents[]`, {
                limits: opts.limits?.parents$
              })) {
                yield {
                  ...evt,
                  index: obj.parents
                }
              }

              obj.parents++

              break
            }
            case 7: {
              if (opts.limits?.grant != null && obj.grant === opts.limits.grant) {
                throw new MaxLengthError('Streaming decode error - repeated field "grant" had too many elements')
              }

              yield {
                field: `${prefix}.grant[]`,
                index: obj.grant,
                value: reader.uint32()
              }

              obj.grant++

              break
            }
            case 8: {
              yield {
                field: `${prefix}.intervalMs`,
                value: reader.uint32()
              }
              break
            }
            case 9: {
              if (opts.limits?.rejected != null && obj.rejected === opts.limits.rejected) {
                throw new MaxLengthError('Streaming decode error - repeated field "rejected" had too many elements')
              }

              yield {
                field: `${prefix}.rejected[]`,
                index: obj.rejected,
                value: reader.uint32()
              }

              obj.rejected++

              break
            }
            case 10: {
              yield {
                field: `${prefix}.grantStripe`,
                value: reader.uint32()
              }
              break
            }
            case 11: {
              yield {
                field: `${prefix}.upstream`,
                value: reader.string()
              }
              break
            }
            case 12: {
              if (opts.limits?.sources != null && obj.sources === opts.limits.sources) {
                throw new MaxLengthError('Streaming decode error - repeated field "sources" had too many elements')
              }

              yield {
                field: `${prefix}.sources[]`,
                index: obj.sources,
                value: reader.string()
              }

              obj.sources++

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

  export interface TrackerResponseStatusFieldEvent {
    field: '$.status'
    value: TrackerResponse.Status
  }

  export interface TrackerResponseErrorCodeFieldEvent {
    field: '$.errorCode'
    value: ErrorCode
  }

  export interface TrackerResponseMessageFieldEvent {
    field: '$.message'
    value: string
  }

  export interface TrackerResponseRedirectPeerIdFieldEvent {
    field: '$.redirect.peerId'
    value: string
  }

  export interface TrackerResponseRedirectAddrsFieldEvent {
    field: '$.redirect.addrs[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface TrackerResponseMetaContentLengthFieldEvent {
    field: '$.meta.contentLength'
    value: bigint
  }

  export interface TrackerResponseMetaPieceSizeFieldEvent {
    field: '$.meta.pieceSize'
    value: number
  }

  export interface TrackerResponseMetaEtagFieldEvent {
    field: '$.meta.etag'
    value: string
  }

  export interface TrackerResponseMetaLastModifiedFieldEvent {
    field: '$.meta.lastModified'
    value: string
  }

  export interface TrackerResponseMetaUrlFieldEvent {
    field: '$.meta.url'
    value: string
  }

  export interface TrackerResponseMetaDigestFieldEvent {
    field: '$.meta.digest'
    value: string
  }

  export interface TrackerResponseMetaPieceDigestsFieldEvent {
    field: '$.meta.pieceDigests[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface TrackerResponseParentsPeerIdFieldEvent {
    field: '$.parents[].peerId'
    value: string
    index: number
  }

  export interface TrackerResponseParentsAddrsFieldEvent {
    field: '$.parents[].addrs[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface TrackerResponseParentsHaveFieldEvent {
    field: '$.parents[].have'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface TrackerResponseParentsFreeUploadSlotsFieldEvent {
    field: '$.parents[].freeUploadSlots'
    value: number
    index: number
  }

  export interface TrackerResponseGrantFieldEvent {
    field: '$.grant[]'
    index: number
    value: number
  }

  export interface TrackerResponseIntervalMsFieldEvent {
    field: '$.intervalMs'
    value: number
  }

  export interface TrackerResponseRejectedFieldEvent {
    field: '$.rejected[]'
    index: number
    value: number
  }

  export interface TrackerResponseGrantStripeFieldEvent {
    field: '$.grantStripe'
    value: number
  }

  export interface TrackerResponseUpstreamFieldEvent {
    field: '$.upstream'
    value: string
  }

  export interface TrackerResponseSourcesFieldEvent {
    field: '$.sources[]'
    index: number
    value: string
  }

  export function encode (obj: Partial<TrackerResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TrackerResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TrackerResponse>): TrackerResponse {
    return decodeMessage(buf, TrackerResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TrackerResponse>): Generator<TrackerResponseStatusFieldEvent | TrackerResponseErrorCodeFieldEvent | TrackerResponseMessageFieldEvent | TrackerResponseRedirectPeerIdFieldEvent | TrackerResponseRedirectAddrsFieldEvent | TrackerResponseMetaContentLengthFieldEvent | TrackerResponseMetaPieceSizeFieldEvent | TrackerResponseMetaEtagFieldEvent | TrackerResponseMetaLastModifiedFieldEvent | TrackerResponseMetaUrlFieldEvent | TrackerResponseMetaDigestFieldEvent | TrackerResponseMetaPieceDigestsFieldEvent | TrackerResponseParentsPeerIdFieldEvent | TrackerResponseParentsAddrsFieldEvent | TrackerResponseParentsHaveFieldEvent | TrackerResponseParentsFreeUploadSlotsFieldEvent | TrackerResponseGrantFieldEvent | TrackerResponseIntervalMsFieldEvent | TrackerResponseRejectedFieldEvent | TrackerResponseGrantStripeFieldEvent | TrackerResponseUpstreamFieldEvent | TrackerResponseSourcesFieldEvent> {
    return streamMessage(buf, TrackerResponse.codec(), opts)
  }
}
