/**
 * UDP header (RFC 768): its field table and constants.
 *
 * The kernel writes the outer UDP header of every VXLAN datagram; vxnet touches UDP headers only
 * inside pod packets, when it cuts a UDP super-datagram (USO) into datagrams (segment.ts), through
 * `UdpField`, the one layout the tests check against golden bytes.
 */

/*
 *   0      7 8     15 16    23 24    31
 *  +--------+--------+--------+--------+
 *  |     Source      |   Destination   |
 *  |      Port       |      Port       |
 *  +--------+--------+--------+--------+
 *  |                 |                 |
 *  |     Length      |    Checksum     |
 *  +--------+--------+--------+--------+
 */
/** Byte offset of each field from the start of the header: the one layout, for views and the hot path alike. */
export const UdpField = {
  SourcePort: 0,
  DestinationPort: 2,
  Length: 4,
  Checksum: 6,
} as const;

export const UDP_HEADER_LENGTH = UdpField.Checksum + 2;
/** Offset of the checksum inside the header; the virtio `csum_offset` for UDP. */
export const UDP_CHECKSUM_OFFSET = UdpField.Checksum;
