/**
 * Ethernet II header (IEEE 802.3 §3.1.1, the DIX layout; no 802.1Q tag): its field table and
 * constants.
 *
 * In vxnet this is the inner header of a VXLAN packet. The TUN device carries bare IP, so the
 * transmit path writes it in the headroom in front of each packet and the receive path checks it
 * in place, both through `EthernetField` below: the one layout of this header, which the tests
 * check against golden bytes (their whole-header decoder and encoder live in test support).
 */

/*
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                  Destination MAC address                      |
 *  +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                               |                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
 *  |                    Source MAC address                         |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |           EtherType           |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
/** Byte offset of each field from the start of the header: the one layout, for views and the hot path alike. */
export const EthernetField = {
  Destination: 0,
  Source: 6,
  EtherType: 12,
} as const;

export const MAC_LENGTH = 6;
export const ETHERNET_HEADER_LENGTH = EthernetField.EtherType + 2;

/** EtherType values vxnet looks at (IEEE registry). Anything else is counted and dropped. */
export const EtherType = {
  IPv4: 0x0800,
  ARP: 0x0806,
  IPv6: 0x86dd,
} as const;
