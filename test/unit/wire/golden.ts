/**
 * Golden packets, written out field by field from the RFC layouts. Every checksum in them was
 * computed by a separate script and the packets were decoded by tshark (Wireshark 4), which
 * reported each IP, UDP, TCP, ICMP and ICMPv6 checksum as correct.
 */

import { hex } from './helpers.js';

/**
 * A pod-to-pod ping as it crosses the underlay: node 1 (192.168.101.2) to node 2
 * (192.168.102.2), UDP 51234 → 8472, VNI 1, inner 10.244.1.5 → 10.244.2.7 echo request.
 */
export const VXLAN_PACKET = hex(`
  45 00 00 56  1c 46 40 00  40 11 d1 fb        # outer IPv4: IHL 5, total 86, id 0x1c46, DF, TTL 64, UDP, csum
  c0 a8 65 02  c0 a8 66 02                     #   192.168.101.2 -> 192.168.102.2
  c8 22 21 18  00 42 00 00                     # UDP 51234 -> 8472, length 66, checksum 0 (none)
  08 00 00 00  00 00 01 00                     # VXLAN: I flag, reserved 0, VNI 1, reserved 0
  0a 58 0a f4 02 01  0a 58 0a f4 01 01  08 00  # inner Ethernet: dst, src, IPv4
  45 00 00 24  be ef 40 00  40 01 62 f6        # inner IPv4: total 36, id 0xbeef, DF, TTL 64, ICMP, csum
  0a f4 01 05  0a f4 02 07                     #   10.244.1.5 -> 10.244.2.7
  08 00 54 35  12 34 00 01                     # ICMP echo request, csum, id 0x1234, seq 1
  61 62 63 64 65 66 67 68                      #   "abcdefgh"
`);
export const VXLAN_PACKET_AT = { outerIp: 0, udp: 20, vxlan: 28, ethernet: 36, innerIp: 50, icmp: 70 } as const;

/** A Linux-style SYN: 10.244.1.5:43210 → 10.244.2.7:80 with MSS, SACK-permitted, timestamps, NOP, window scale. */
export const TCP_SYN = hex(`
  45 00 00 3c  3a 1c 40 00  40 06 e7 ac        # IPv4: total 60, id 0x3a1c, DF, TTL 64, TCP, csum
  0a f4 01 05  0a f4 02 07                     #   10.244.1.5 -> 10.244.2.7
  a8 ca 00 50                                  # TCP 43210 -> 80
  2b 6e 9a 41                                  #   sequence number
  00 00 00 00                                  #   acknowledgment number
  a0 02 fa f0                                  #   data offset 10 (40 bytes), SYN, window 64240
  e3 0f 00 00                                  #   checksum, urgent pointer 0
  02 04 05 b4  04 02  08 0a 00 01 e2 40 00 00 00 00  01  03 03 07  # options
`);

/** A DNS query: 10.244.1.5:53211 → 10.96.0.10:53, "example.com A". */
export const UDP_DNS = hex(`
  45 00 00 39  4d 2a 40 00  40 11 d7 27        # IPv4: total 57, id 0x4d2a, DF, TTL 64, UDP, csum
  0a f4 01 05  0a 60 00 0a                     #   10.244.1.5 -> 10.96.0.10
  cf db 00 35  00 25 2f 98                     # UDP 53211 -> 53, length 37, checksum
  1a 2b 01 00 00 01 00 00 00 00 00 00          # DNS header: id, RD, 1 question
  07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01  # example.com A IN
`);

/** An ICMPv6 echo request, fd00:10:244:1::5 → fd00:10:244:2::7, traffic class 0xb8 (EF), flow label 0x12345. */
export const ICMPV6_ECHO = hex(`
  6b 81 23 45                                  # version 6, traffic class 0xb8, flow label 0x12345
  00 10 3a 40                                  # payload length 16, next header 58 (ICMPv6), hop limit 64
  fd 00 00 10 02 44 00 01 00 00 00 00 00 00 00 05  # source
  fd 00 00 10 02 44 00 02 00 00 00 00 00 00 00 07  # destination
  80 00 c3 b3  43 21 00 07                     # echo request, checksum, id 0x4321, seq 7
  76 78 6e 65 74 21 21 21                      #   "vxnet!!!"
`);
