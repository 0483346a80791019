/**
 * VXLAN header (RFC 7348 §5): its field table and constants.
 *
 * Eight bytes between the outer UDP header and the inner Ethernet frame. Only the I flag and the
 * 24-bit VNI carry meaning; both reserved fields MUST be zero on send and are ignored on receipt
 * (§5). vxnet sends them zero, and drops a datagram that sets them (`reserved_bits`): a peer that
 * sets them speaks a VXLAN extension we did not configure. The data path reads and writes the
 * header through `VxlanField`, the one layout the tests check against golden bytes.
 */

/*
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |R|R|R|R|I|R|R|R|            Reserved                           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                VXLAN Network Identifier (VNI) |   Reserved    |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
/** Byte offset of each field from the start of the header: the one layout, for views and the hot path alike. */
export const VxlanField = {
  Flags: 0,
  ReservedAfterFlags: 1,
  Vni: 4,
  ReservedAfterVni: 7,
} as const;

export const VXLAN_HEADER_LENGTH = VxlanField.ReservedAfterVni + 1;

export const VxlanFlags = {
  /** I flag: the VNI is valid. MUST be 1 (RFC 7348 §5). */
  Instance: 0x08,
} as const;

/** Linux's default VXLAN port, which predates the IANA assignment; flannel uses it too. */
export const VXLAN_DEFAULT_PORT_LINUX = 8472;
/** The IANA-assigned VXLAN port (RFC 7348 §5). */
export const VXLAN_IANA_PORT = 4789;

/**
 * Bytes an IPv4 underlay adds around each inner IP packet: outer IPv4 (20, no options) + UDP (8)
 * + VXLAN (8) + inner Ethernet (14). The pod MTU is the underlay MTU minus this (1450 on 1500).
 */
export const VXLAN_OVERHEAD = 20 + 8 + VXLAN_HEADER_LENGTH + 14;

export const VXLAN_MAX_VNI = 0xffffff;
