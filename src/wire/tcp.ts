/**
 * TCP header (RFC 9293 §3.1): its field table, flags and constants.
 *
 * vxnet does not terminate TCP. It reads and rewrites TCP headers only to cut TSO super-packets
 * into segments (segment.ts) and to merge received segments back (coalesce.ts), both through
 * `TcpField`, the one layout the tests check against golden bytes. Options are compared as a
 * byte range, never parsed.
 */

/*
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |          Source Port          |       Destination Port        |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                        Sequence Number                        |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                    Acknowledgment Number                      |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |  Data |       |C|E|U|A|P|R|S|F|                               |
 *  | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
 *  |       |       |R|E|G|K|H|T|N|N|                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |           Checksum            |         Urgent Pointer        |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                           [Options]                           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
/** Byte offset of each field from the start of the header: the one layout, for views and the hot path alike. */
export const TcpField = {
  SourcePort: 0,
  DestinationPort: 2,
  SequenceNumber: 4,
  AcknowledgmentNumber: 8,
  DataOffset: 12,
  Flags: 13,
  Window: 14,
  Checksum: 16,
  UrgentPointer: 18,
} as const;

/** Header length without options. */
export const TCP_MIN_HEADER_LENGTH = TcpField.UrgentPointer + 2;
export const TCP_MAX_HEADER_LENGTH = 60;
/** Offset of the checksum inside the header; the virtio `csum_offset` for TCP. */
export const TCP_CHECKSUM_OFFSET = TcpField.Checksum;

/** Control bits, as they sit in the flags byte (RFC 9293 §3.1, RFC 3168 §6.1 for ECE/CWR). */
export const TcpFlags = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;
