/**
 * VXLAN header (RFC 7348 §5): its field table and constants, and the one extension vxnet speaks,
 * Remote Checksum Offload (draft-herbert-vxlan-rco, Linux's `remcsumtx`/`remcsumrx`).
 *
 * Eight bytes between the outer UDP header and the inner Ethernet frame. Only the I flag and the
 * 24-bit VNI carry meaning; both reserved fields MUST be zero on send and are ignored on receipt
 * (§5). vxnet sends them zero, except for RCO to a peer that accepts it, and drops a datagram that
 * sets any other (`reserved_bits`): such a peer speaks a VXLAN extension we did not configure.
 *
 * RCO: the inner transport checksum is left unfinished (the field holds the pseudo-header sum)
 * and the outer UDP checksum, which covers every byte, stands for it; the header says where the
 * checksum starts (its offset from the inner Ethernet header, halved, in the low 7 bits of the
 * last byte) and whether it is UDP's (bit 7 set) or TCP's. The receiver finishes it, or hands it
 * on unfinished to whoever will (a TUN device with NEEDS_CSUM, a NIC).
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

/** RCO: the flag (bit 21 of the first word, i.e. 0x20 in the byte after the flags) and the
 * fields of the byte after the VNI. */
export const VxlanRco = {
  /** In byte `ReservedAfterFlags`. */
  Flag: 0x20,
  /** In byte `ReservedAfterVni`: the checksum is UDP's (offset 6), else TCP's (offset 16). */
  Udp: 0x80,
  /** In byte `ReservedAfterVni`: checksum start from the inner Ethernet header, divided by 2. */
  StartMask: 0x7f,
  /** The largest start that fits (0x7f << 1). */
  MaxStart: 0xfe,
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
