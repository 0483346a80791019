// vxnet_io: the thin syscall layer under vxnet's data path.
//
// Design: every function here is one system-call pattern and nothing else. Packet parsing,
// encapsulation, segmentation, the layout of every iovec, and every policy decision live in
// TypeScript. Calls are synchronous and are meant to be made from worker threads, which block in
// poll(2) with a short timeout so that they notice a stop request; the main thread never calls
// the blocking ones.
//
// Batches: a call moves up to `count` packets between the kernel and ONE caller-owned buffer (a
// slab). Where a packet is one contiguous range, the caller passes Int32Arrays of offsets and
// lengths. Where it is gathered from several ranges (the zero-copy paths: a segment's rebuilt
// headers in one place and its payload in place in the TUN read buffer), the caller passes an
// iovec table (two Int32Arrays: offset and length of each piece) and, per packet, the index of
// its first piece and the number of pieces. No per-packet JS objects or callbacks are created.
//
// Bounds: every offset and length comes from TypeScript and is checked here before it becomes a
// pointer: negative values are refused explicitly (an int32 cast to size_t would wrap and pass a
// naive `off + len > size` check), and every range must lie inside the slab. A refused range
// fails its packet with EFAULT; nothing outside the slab is ever read or written.
//
// Errors: receive calls return -errno; send calls report an errno per packet in a results array
// (0 = sent), so the caller can count exactly what went and what was refused, and why.

#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <cstdint>
#include <map>
#include <string>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

namespace {

constexpr int kMaxBatch = 1024;
// Pieces per call across all packets of one sendmmsg / writev batch: a 64-segment GSO message
// takes 128 (header + payload per segment), so this holds 64 such messages.
constexpr int kMaxIov = 8192;
// Pieces of one packet: UIO_MAXIOV.
constexpr int kMaxIovPerPacket = 1024;

struct BatchState {
  mmsghdr msgs[kMaxBatch];
  iovec iovs[kMaxIov];
  sockaddr_in addrs[kMaxBatch];
  // One control buffer per message: room for a UDP_GRO / UDP_SEGMENT cmsg (an int or uint16).
  alignas(cmsghdr) char control[kMaxBatch][CMSG_SPACE(sizeof(int))];
};

// One per thread: each worker thread owns its own scratch space, so calls from the TX and RX
// workers never share it.
thread_local BatchState* tls_batch = nullptr;

BatchState* Batch() {
  if (tls_batch == nullptr) tls_batch = new BatchState();
  return tls_batch;
}

Napi::Value ThrowErrno(Napi::Env env, const char* what, int err) {
  std::string msg = std::string(what) + ": " + strerror(err);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, what));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

struct Slab {
  uint8_t* data = nullptr;
  size_t length = 0;

  // The pointer for [off, off + len) when it is a valid range of the slab, else nullptr.
  uint8_t* Range(int64_t off, int64_t len) const {
    if (data == nullptr || off < 0 || len < 0) return nullptr;
    if (static_cast<uint64_t>(off) + static_cast<uint64_t>(len) > length) return nullptr;
    return data + off;
  }
};

// Element pointer and count of a typed array. napi_get_typedarray_info hands out the data
// pointer directly, which (unlike napi_get_arraybuffer_info) also works when the array is a view
// on a SharedArrayBuffer, as the control words are.
void* TypedArrayData(const Napi::Value& v, size_t* elements, size_t* bytes) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer;
  size_t offset = 0;
  if (!v.IsTypedArray() || napi_get_typedarray_info(v.Env(), v, &type, &length, &data, &buffer, &offset) != napi_ok) {
    *elements = 0;
    if (bytes) *bytes = 0;
    return nullptr;
  }
  *elements = length;
  if (bytes) *bytes = v.As<Napi::TypedArray>().ByteLength();
  return data;
}

bool GetSlab(const Napi::Value& v, Slab* out) {
  size_t n = 0, bytes = 0;
  out->data = static_cast<uint8_t*>(TypedArrayData(v, &n, &bytes));
  out->length = out->data ? bytes : 0;
  return out->data != nullptr;
}

template <typename T>
T* TypedData(const Napi::Value& v, size_t* len) {
  return static_cast<T*>(TypedArrayData(v, len, nullptr));
}

int32_t Int(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().Int32Value() : 0;
}

// A system call, made again for as long as a signal interrupts it; its last result, errno as it
// left it.
template <typename Call>
auto RetryEintr(Call call) -> decltype(call()) {
  decltype(call()) r;
  do {
    r = call();
  } while (r < 0 && errno == EINTR);
  return r;
}

// The "0 or errno" answer of a call whose result r is negative on failure.
Napi::Value ZeroOrErrno(Napi::Env env, ssize_t r) {
  return Napi::Number::New(env, r < 0 ? errno : 0);
}

// Waits until fd is readable (or writable), up to timeoutMs. Returns >0 ready, 0 timeout, -errno.
// POLLERR/POLLHUP count as ready: the following read or write reports the error. A negative
// timeout means the caller already knows the fd is ready (it waited in pollIn): no poll at all,
// the non-blocking read or recvmmsg that follows answers EAGAIN if it was wrong.
int WaitFor(int fd, short events, int timeoutMs) {
  if (timeoutMs < 0) return 1;
  pollfd p{fd, events, 0};
  int r = poll(&p, 1, timeoutMs);
  if (r < 0) return errno == EINTR ? 0 : -errno;
  if (r > 0 && (p.revents & POLLNVAL)) return -EBADF;
  return r;
}

// An iovec table: piece i is slab[off[i], off[i] + len[i]).
struct IovTable {
  int32_t* off = nullptr;
  int32_t* len = nullptr;
  size_t size = 0;
};

IovTable GetIovTable(const Napi::Value& offs, const Napi::Value& lens) {
  IovTable t;
  size_t nOff = 0, nLen = 0;
  t.off = TypedData<int32_t>(offs, &nOff);
  t.len = TypedData<int32_t>(lens, &nLen);
  t.size = (t.off && t.len) ? (nOff < nLen ? nOff : nLen) : 0;
  return t;
}

// Fills out[0..count) with the pieces [first, first + count) of the table. Returns the total
// length, or -EFAULT when a piece index or range is invalid, -EINVAL when count is out of range.
int64_t FillIov(const Slab& slab, const IovTable& t, int32_t first, int32_t count, iovec* out) {
  if (count < 1 || count > kMaxIovPerPacket) return -EINVAL;
  if (first < 0 || static_cast<uint64_t>(first) + static_cast<uint64_t>(count) > t.size) return -EFAULT;
  int64_t total = 0;
  for (int32_t j = 0; j < count; j++) {
    int32_t o = t.off[first + j];
    int32_t l = t.len[first + j];
    uint8_t* p = slab.Range(o, l);
    if (p == nullptr) return -EFAULT;
    out[j].iov_base = p;
    out[j].iov_len = static_cast<size_t>(l);
    total += l;
  }
  return total;
}

// ---- TUN ------------------------------------------------------------------------------------

// openTun(name: string, flags: number) -> { fd, name }
// flags: 1 = IFF_VNET_HDR, 2 = IFF_MULTI_QUEUE.
Napi::Value OpenTun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int flags = Int(info, 1);
  if (name.size() >= IFNAMSIZ) {
    Napi::Error::New(env, "TUN device name longer than 15 bytes: " + name).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, "open /dev/net/tun", errno);
  ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (flags & 1) ifr.ifr_flags |= IFF_VNET_HDR;
  if (flags & 2) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, "ioctl TUNSETIFF", err);
  }
  if (flags & 1) {
    int sz = 10;  // struct virtio_net_hdr (no num_buffers)
    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
      int err = errno;
      close(fd);
      return ThrowErrno(env, "ioctl TUNSETVNETHDRSZ", err);
    }
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("name", Napi::String::New(env, ifr.ifr_name));
  return out;
}

// tunSetOffload(fd, offloadFlags) -> 0 or errno (no throw: the caller falls back).
Napi::Value TunSetOffload(const Napi::CallbackInfo& info) {
  int fd = Int(info, 0);
  unsigned int flags = info[1].As<Napi::Number>().Uint32Value();
  int r = ioctl(fd, TUNSETOFFLOAD, flags);
  return Napi::Number::New(info.Env(), r < 0 ? errno : 0);
}

// tunRead(fd, slab, offsets, capacity, lengths, max, timeoutMs[, maxBytes]) -> count, or -errno.
// Waits up to timeoutMs for the first packet, then drains without blocking: up to `max`
// packets, and (when maxBytes > 0) stops once that many bytes have been read, so one call
// moves many small packets or a few 64 KB super-packets. A slot outside the slab ends the batch
// (-EFAULT if it is the first).
Napi::Value TunRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Int(info, 0);
  Slab slab;
  GetSlab(info[1], &slab);
  size_t nOff, nLen;
  int32_t* offsets = TypedData<int32_t>(info[2], &nOff);
  int32_t capacity = Int(info, 3);
  int32_t* lengths = TypedData<int32_t>(info[4], &nLen);
  int32_t max = Int(info, 5);
  int timeoutMs = Int(info, 6);
  int64_t maxBytes = info.Length() > 7 && info[7].IsNumber() ? info[7].As<Napi::Number>().Int64Value() : 0;
  if (offsets == nullptr || lengths == nullptr || max < 0 || capacity <= 0) return Napi::Number::New(env, -EINVAL);
  if (static_cast<size_t>(max) > nOff) max = static_cast<int32_t>(nOff);
  if (static_cast<size_t>(max) > nLen) max = static_cast<int32_t>(nLen);

  int w = WaitFor(fd, POLLIN, timeoutMs);
  if (w <= 0) return Napi::Number::New(env, w);
  int n = 0;
  int64_t bytes = 0;
  while (n < max && (maxBytes <= 0 || bytes < maxBytes)) {
    uint8_t* p = slab.Range(offsets[n], capacity);
    if (p == nullptr) {
      if (n == 0) return Napi::Number::New(env, -EFAULT);
      break;
    }
    ssize_t r = read(fd, p, static_cast<size_t>(capacity));
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || n > 0) break;
      return Napi::Number::New(env, -errno);
    }
    lengths[n++] = static_cast<int32_t>(r);
    bytes += r;
  }
  return Napi::Number::New(env, n);
}

// tunWritev(fd, slab, iovOff, iovLen, pktFirst, pktCount, count, results) -> packets written.
// Packet i is the pieces [pktFirst[i], pktFirst[i] + pktCount[i]) of the iovec table, written
// with one writev (a TUN write is one packet). results[i] = 0 when written, else the errno. A
// full queue (EAGAIN) waits briefly for room, three times.
Napi::Value TunWritev(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Int(info, 0);
  Slab slab;
  GetSlab(info[1], &slab);
  IovTable t = GetIovTable(info[2], info[3]);
  size_t nFirst, nCount, nRes;
  int32_t* first = TypedData<int32_t>(info[4], &nFirst);
  int32_t* pieces = TypedData<int32_t>(info[5], &nCount);
  int32_t count = Int(info, 6);
  int32_t* results = TypedData<int32_t>(info[7], &nRes);
  if (first == nullptr || pieces == nullptr || results == nullptr || count < 0) return Napi::Number::New(env, -EINVAL);
  size_t lim = nFirst < nCount ? nFirst : nCount;
  if (nRes < lim) lim = nRes;
  if (static_cast<size_t>(count) > lim) count = static_cast<int32_t>(lim);

  BatchState* b = Batch();
  int written = 0;
  for (int32_t i = 0; i < count; i++) {
    int64_t total = FillIov(slab, t, first[i], pieces[i], b->iovs);
    if (total < 0) {
      results[i] = static_cast<int32_t>(-total);
      continue;
    }
    int err = EIO;
    for (int attempt = 0; attempt < 3; attempt++) {
      ssize_t r = writev(fd, b->iovs, pieces[i]);
      if (r >= 0) {
        err = 0;
        break;
      }
      err = errno;
      if (errno == EINTR) {
        attempt--;
        continue;
      }
      if (errno == EAGAIN) {
        WaitFor(fd, POLLOUT, 10);
        continue;
      }
      break;
    }
    results[i] = err;
    if (err == 0) written++;
  }
  return Napi::Number::New(env, written);
}

// ---- UDP ------------------------------------------------------------------------------------

// udpOpen(addr: uint32, port, rcvbuf, sndbuf, flags) -> { fd, port, gro, gso }
// flags: 1 = try UDP_GRO, 2 = SO_REUSEPORT, 4 = IP_PMTUDISC_DO (never fragment locally: a datagram
// larger than the path MTU the kernel knows fails with EMSGSIZE, so the caller learns it).
// `gso` says whether the kernel knows UDP_SEGMENT (probed with a per-socket segment size of 0,
// which changes nothing).
Napi::Value UdpOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t addr = info[0].As<Napi::Number>().Uint32Value();
  int port = Int(info, 1);
  int rcvbuf = Int(info, 2);
  int sndbuf = Int(info, 3);
  int flags = Int(info, 4);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, "socket", errno);
  int one = 1;
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  if (flags & 2) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (flags & 4) {
    int mode = IP_PMTUDISC_DO;
    if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &mode, sizeof(mode)) < 0) {
      int err = errno;
      close(fd);
      return ThrowErrno(env, "setsockopt IP_MTU_DISCOVER", err);
    }
  }
  sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, "bind", err);
  }
  socklen_t slen = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &slen);
  bool gro = false;
  if (flags & 1) gro = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
  int zero = 0;
  bool gso = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof(zero)) == 0;
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("port", Napi::Number::New(env, ntohs(sa.sin_port)));
  out.Set("gro", Napi::Boolean::New(env, gro));
  out.Set("gso", Napi::Boolean::New(env, gso));
  return out;
}

// udpRecv(fd, slab, offsets, capacity, lengths, srcAddrs: Uint32Array, gsoSizes: Int32Array,
//         max, timeoutMs) -> count or -errno. gsoSizes[i] is the UDP_GRO segment size, or 0;
// lengths[i] is -1 for a datagram the slot truncated (MSG_TRUNC).
Napi::Value UdpRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Int(info, 0);
  Slab slab;
  GetSlab(info[1], &slab);
  size_t nOff, nLen, nSrc, nGso;
  int32_t* offsets = TypedData<int32_t>(info[2], &nOff);
  int32_t capacity = Int(info, 3);
  int32_t* lengths = TypedData<int32_t>(info[4], &nLen);
  uint32_t* srcAddrs = TypedData<uint32_t>(info[5], &nSrc);
  int32_t* gsoSizes = TypedData<int32_t>(info[6], &nGso);
  int32_t max = Int(info, 7);
  int timeoutMs = Int(info, 8);
  if (!offsets || !lengths || !srcAddrs || !gsoSizes || max < 0 || capacity <= 0) return Napi::Number::New(env, -EINVAL);
  size_t lim = nOff;
  if (nLen < lim) lim = nLen;
  if (nSrc < lim) lim = nSrc;
  if (nGso < lim) lim = nGso;
  if (static_cast<size_t>(max) > lim) max = static_cast<int32_t>(lim);
  if (max > kMaxBatch) max = kMaxBatch;

  BatchState* b = Batch();
  int usable = 0;
  for (int i = 0; i < max; i++) {
    uint8_t* p = slab.Range(offsets[i], capacity);
    if (p == nullptr) break;
    b->iovs[i].iov_base = p;
    b->iovs[i].iov_len = static_cast<size_t>(capacity);
    msghdr& h = b->msgs[i].msg_hdr;
    h.msg_name = &b->addrs[i];
    h.msg_namelen = sizeof(sockaddr_in);
    h.msg_iov = &b->iovs[i];
    h.msg_iovlen = 1;
    h.msg_control = b->control[i];
    h.msg_controllen = sizeof(b->control[i]);
    h.msg_flags = 0;
    b->msgs[i].msg_len = 0;
    usable++;
  }
  if (usable == 0) return Napi::Number::New(env, max == 0 ? 0 : -EFAULT);
  int w = WaitFor(fd, POLLIN, timeoutMs);
  if (w <= 0) return Napi::Number::New(env, w);
  int n = recvmmsg(fd, b->msgs, usable, MSG_DONTWAIT, nullptr);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return Napi::Number::New(env, 0);
    return Napi::Number::New(env, -errno);
  }
  for (int i = 0; i < n; i++) {
    msghdr& h = b->msgs[i].msg_hdr;
    lengths[i] = (h.msg_flags & MSG_TRUNC) ? -1 : static_cast<int32_t>(b->msgs[i].msg_len);
    srcAddrs[i] = ntohl(b->addrs[i].sin_addr.s_addr);
    int gso = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        if (c->cmsg_len >= CMSG_LEN(sizeof(int))) {
          int v = 0;
          memcpy(&v, CMSG_DATA(c), sizeof(v));
          gso = v;
        } else {
          uint16_t v = 0;
          memcpy(&v, CMSG_DATA(c), sizeof(v));
          gso = v;
        }
      }
    }
    gsoSizes[i] = gso;
  }
  return Napi::Number::New(env, n);
}

// udpSendv(fds: Int32Array, sockIndex: Uint8Array, slab, iovOff, iovLen, msgFirst, msgCount,
//          dstAddrs: Uint32Array, dstPorts: Uint16Array, gsoSizes: Int32Array, results: Int32Array,
//          from, count) -> messages sent.
// Message i (for i in [from, from + count)) is the pieces [msgFirst[i], msgFirst[i] + msgCount[i])
// of the iovec table, sent to dstAddrs[i]:dstPorts[i] from socket fds[sockIndex[i]]; gsoSizes[i] > 0
// attaches UDP_SEGMENT so the kernel splits it into datagrams of that size. Consecutive messages
// on one socket go out in one sendmmsg. results[i] = 0 when sent, else the errno that refused it
// (EMSGSIZE: larger than the path MTU; EINVAL: a GSO segment larger than the path MTU; EFAULT: a
// piece outside the slab; EAGAIN/ENOBUFS: still no room after waiting). A refused message is
// skipped so the rest of the batch still goes out.
Napi::Value UdpSendv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t nFds, nIdx, nFirst, nCount, nDst, nPort, nGso, nRes;
  int32_t* fds = TypedData<int32_t>(info[0], &nFds);
  uint8_t* sockIndex = TypedData<uint8_t>(info[1], &nIdx);
  Slab slab;
  GetSlab(info[2], &slab);
  IovTable t = GetIovTable(info[3], info[4]);
  int32_t* first = TypedData<int32_t>(info[5], &nFirst);
  int32_t* pieces = TypedData<int32_t>(info[6], &nCount);
  uint32_t* dst = TypedData<uint32_t>(info[7], &nDst);
  uint16_t* ports = TypedData<uint16_t>(info[8], &nPort);
  int32_t* gso = TypedData<int32_t>(info[9], &nGso);
  int32_t* results = TypedData<int32_t>(info[10], &nRes);
  int32_t from = Int(info, 11);
  int32_t count = Int(info, 12);
  if (!fds || !sockIndex || !first || !pieces || !dst || !ports || !gso || !results || from < 0 || count < 0) {
    return Napi::Number::New(env, -EINVAL);
  }
  size_t lim = nIdx;
  for (size_t n : {nFirst, nCount, nDst, nPort, nGso, nRes})
    if (n < lim) lim = n;
  if (static_cast<uint64_t>(from) + static_cast<uint64_t>(count) > lim) {
    count = from >= static_cast<int32_t>(lim) ? 0 : static_cast<int32_t>(lim) - from;
  }

  BatchState* b = Batch();
  int sent = 0;
  int32_t i = from;
  const int32_t end = from + count;
  while (i < end) {
    // Build one run of messages for the same socket, as long as the iovec scratch lasts.
    int run = 0;
    int iovUsed = 0;
    int32_t k = i;
    uint8_t sidx = sockIndex[i];
    while (k < end && run < kMaxBatch && sockIndex[k] == sidx) {
      int32_t want = pieces[k];
      if (run > 0 && (want < 1 || iovUsed + want > kMaxIov)) break;
      int64_t total = (want >= 1 && iovUsed + want <= kMaxIov) ? FillIov(slab, t, first[k], want, b->iovs + iovUsed) : -EINVAL;
      if (total < 0) {
        // Refuse this message on its own; the run so far is sent below.
        if (run == 0) {
          results[k] = static_cast<int32_t>(-total);
          k++;
          i = k;
          if (k < end) sidx = sockIndex[k];
          continue;
        }
        break;
      }
      mmsghdr& m = b->msgs[run];
      sockaddr_in& a = b->addrs[run];
      memset(&a, 0, sizeof(a));
      a.sin_family = AF_INET;
      a.sin_port = htons(ports[k]);
      a.sin_addr.s_addr = htonl(dst[k]);
      m.msg_hdr.msg_name = &a;
      m.msg_hdr.msg_namelen = sizeof(a);
      m.msg_hdr.msg_iov = b->iovs + iovUsed;
      m.msg_hdr.msg_iovlen = static_cast<size_t>(want);
      m.msg_hdr.msg_flags = 0;
      m.msg_len = 0;
      if (gso[k] > 0) {
        m.msg_hdr.msg_control = b->control[run];
        m.msg_hdr.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
        cmsghdr* c = CMSG_FIRSTHDR(&m.msg_hdr);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t seg = static_cast<uint16_t>(gso[k]);
        memcpy(CMSG_DATA(c), &seg, sizeof(seg));
      } else {
        m.msg_hdr.msg_control = nullptr;
        m.msg_hdr.msg_controllen = 0;
      }
      iovUsed += want;
      run++;
      k++;
    }
    if (run == 0) continue;
    int fd = sidx < nFds ? fds[sidx] : -1;
    int done = 0;
    int stalls = 0;
    while (done < run) {
      int r = fd >= 0 ? sendmmsg(fd, b->msgs + done, static_cast<unsigned>(run - done), 0) : -1;
      if (fd < 0) errno = EBADF;
      if (r > 0) {
        for (int j = 0; j < r; j++) results[i + done + j] = 0;
        done += r;
        sent += r;
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && (errno == EAGAIN || errno == ENOBUFS) && stalls < 20) {
        stalls++;
        WaitFor(fd, POLLOUT, 5);
        continue;
      }
      // The first message left is refused (sendmmsg reports the error of the first message it
      // could not send); skip it so the rest of the run still goes out.
      results[i + done] = r < 0 ? errno : EIO;
      done++;
    }
    i += run;
  }
  return Napi::Number::New(env, sent);
}

// udpPathMtu(addr: uint32, port) -> the kernel's path MTU to addr (the route's MTU, lowered by
// any "fragmentation needed" it has learned and not yet expired), or -errno. A throwaway socket
// is connected to the destination (no packet is sent) and asked for IP_MTU.
Napi::Value UdpPathMtu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t addr = info[0].As<Napi::Number>().Uint32Value();
  int port = Int(info, 1);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Napi::Number::New(env, -errno);
  sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(addr);
  int result;
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
    result = -errno;
  } else {
    int mtu = 0;
    socklen_t len = sizeof(mtu);
    result = getsockopt(fd, IPPROTO_IP, IP_MTU, &mtu, &len) < 0 ? -errno : mtu;
  }
  close(fd);
  return Napi::Number::New(env, result);
}

// ethtoolGet(ifname, cmd) -> what an ETHTOOL_G* command of the `struct ethtool_value` kind
// reports for the interface (ETHTOOL_GGRO, 0x2b: 1 when GRO is on), or -errno. A read: the
// kernel asks no capability for it. The socket is only the ioctl's handle; nothing is sent.
Napi::Value EthtoolGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  uint32_t cmd = info[1].As<Napi::Number>().Uint32Value();
  if (name.empty() || name.size() >= IFNAMSIZ) return Napi::Number::New(env, -EINVAL);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Napi::Number::New(env, -errno);
  ethtool_value value;
  memset(&value, 0, sizeof(value));
  value.cmd = cmd;
  ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  memcpy(ifr.ifr_name, name.c_str(), name.size());
  ifr.ifr_data = reinterpret_cast<char*>(&value);
  int result = ioctl(fd, SIOCETHTOOL, &ifr) < 0 ? -errno : static_cast<int>(value.data);
  close(fd);
  return Napi::Number::New(env, result);
}

// pollIn(fdA, fdB, timeoutMs) -> bits: 1 when fdA is ready to read (or has an error to report),
// 2 the same for fdB; 0 on timeout; -errno. One wait for a worker that serves both directions
// of a queue (its TUN queue and its receiving socket), so that a single thread sleeps in one
// syscall instead of two threads in two. A negative fd is skipped, as poll(2) does.
Napi::Value PollIn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pollfd p[2] = {{Int(info, 0), POLLIN, 0}, {Int(info, 1), POLLIN, 0}};
  int timeoutMs = Int(info, 2);
  int r = poll(p, 2, timeoutMs);
  if (r < 0) return Napi::Number::New(env, errno == EINTR ? 0 : -errno);
  int bits = 0;
  if (p[0].revents != 0) bits |= 1;
  if (p[1].revents != 0) bits |= 2;
  return Napi::Number::New(env, bits);
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = Int(info, 0);
  int r = close(fd);
  return Napi::Number::New(info.Env(), r < 0 ? errno : 0);
}

// ---- Node state: netlink, a persistent TUN device, the node lock, fd readiness ---------------
//
// What the control plane needs to own the node's kernel state (src/node/): an rtnetlink socket
// it speaks in messages TypeScript encodes and decodes (this layer never looks inside one), the
// two TUN ioctls that keep a device across agents and re-create a deleted one under the data
// path's open fd, flock(2) for the one-agent-per-node lock, and a readiness callback so the main
// thread hears netlink events from libuv without polling or a thread of its own.

// netlinkOpen(protocol, groups, rcvbuf) -> fd. A netlink socket of `protocol` (NETLINK_ROUTE 0,
// NETLINK_NETFILTER 12) bound to the multicast `groups` (a bit mask; 0 for a request socket),
// with extended acks (the kernel's error text) and strict dump checking asked for; a kernel that
// lacks either still works. rcvbuf > 0 sizes the receive buffer (SO_RCVBUFFORCE with
// CAP_NET_ADMIN, else SO_RCVBUF).
Napi::Value NetlinkOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int protocol = Int(info, 0);
  uint32_t groups = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  int rcvbuf = Int(info, 2);
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return ThrowErrno(env, "socket AF_NETLINK", errno);
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  setsockopt(fd, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof(one));
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_nl sa;
  memset(&sa, 0, sizeof(sa));
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = groups;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, "bind AF_NETLINK", err);
  }
  return Napi::Number::New(env, fd);
}

// netlinkSend(fd, buf, length) -> 0 or errno. One datagram of buf[0, length) to the kernel.
Napi::Value NetlinkSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Int(info, 0);
  Slab buf;
  GetSlab(info[1], &buf);
  int32_t length = Int(info, 2);
  uint8_t* p = buf.Range(0, length);
  if (p == nullptr) return Napi::Number::New(env, EFAULT);
  sockaddr_nl sa;
  memset(&sa, 0, sizeof(sa));
  sa.nl_family = AF_NETLINK;
  return ZeroOrErrno(env, RetryEintr([&] { return sendto(fd, p, static_cast<size_t>(length), 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)); }));
}

// netlinkRecv(fd, buf, timeoutMs, from: Uint32Array) -> length, 0 when nothing came within
// timeoutMs, or -errno (-EMSGSIZE: the datagram was larger than buf and is lost; -ENOBUFS: the
// socket overran and the kernel dropped messages). from[0] is the sender's port id (0: the
// kernel), from[1] its multicast group mask.
Napi::Value NetlinkRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Int(info, 0);
  Slab buf;
  GetSlab(info[1], &buf);
  int timeoutMs = Int(info, 2);
  size_t nFrom = 0;
  uint32_t* from = TypedData<uint32_t>(info[3], &nFrom);
  if (buf.data == nullptr || from == nullptr || nFrom < 2) return Napi::Number::New(env, -EINVAL);
  int w = WaitFor(fd, POLLIN, timeoutMs);
  if (w <= 0) return Napi::Number::New(env, w);
  sockaddr_nl sa;
  ssize_t r = RetryEintr([&] {
    socklen_t slen = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    return recvfrom(fd, buf.data, buf.length, MSG_TRUNC | MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sa), &slen);
  });
  if (r < 0) return Napi::Number::New(env, errno == EAGAIN ? 0 : -errno);
  if (static_cast<size_t>(r) > buf.length) return Napi::Number::New(env, -EMSGSIZE);
  from[0] = sa.nl_pid;
  from[1] = sa.nl_groups;
  return Napi::Number::New(env, static_cast<double>(r));
}

// tunSetPersist(fd, on) -> 0 or errno. TUNSETPERSIST: the device outlives every fd attached to it.
Napi::Value TunSetPersist(const Napi::CallbackInfo& info) {
  int fd = Int(info, 0);
  unsigned long on = Int(info, 1) != 0 ? 1 : 0;
  int r = ioctl(fd, TUNSETPERSIST, on);
  return Napi::Number::New(info.Env(), r < 0 ? errno : 0);
}

// tunAttach(fd, name, flags) -> 0 or errno. TUNSETIFF on an fd that openTun returned and whose
// device was deleted since: the kernel attaches the same fd to a device of that name, creating
// it when there is none, so threads reading and writing the fd carry on. flags as for openTun.
Napi::Value TunAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Int(info, 0);
  std::string name = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  int flags = Int(info, 2);
  if (name.empty() || name.size() >= IFNAMSIZ) return Napi::Number::New(env, EINVAL);
  ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (flags & 1) ifr.ifr_flags |= IFF_VNET_HDR;
  if (flags & 2) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) return Napi::Number::New(env, errno);
  if (flags & 1) {
    int sz = 10;  // struct virtio_net_hdr, as openTun
    if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) return Napi::Number::New(env, errno);
  }
  return Napi::Number::New(env, 0);
}

// flock(fd, operation) -> 0 or errno. operation: LOCK_SH 1, LOCK_EX 2, LOCK_NB 4, LOCK_UN 8.
Napi::Value Flock(const Napi::CallbackInfo& info) {
  int fd = Int(info, 0);
  int op = Int(info, 1);
  return ZeroOrErrno(info.Env(), RetryEintr([&] { return flock(fd, op); }));
}

// A readable-fd watch: libuv polls the fd with the event loop's own epoll and calls back on the
// main thread. The handle is unreferenced, so a watch never keeps the process alive by itself.
struct FdWatch {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context context;
};

thread_local std::map<int32_t, FdWatch*>* tls_watches = nullptr;
thread_local int32_t tls_next_watch = 1;

void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
  FdWatch* w = static_cast<FdWatch*>(handle->data);
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, arg, result;
  napi_get_reference_value(env, w->callback, &cb);
  napi_get_global(env, &recv);  // make_callback needs an object as `this`
  napi_create_int32(env, status, &arg);
  if (napi_make_callback(env, w->context, recv, cb, 1, &arg, &result) == napi_pending_exception) {
    napi_value err;
    napi_get_and_clear_last_exception(env, &err);
    napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

// watchReadable(fd, callback(status)) -> watch id, or throws. status is 0, or a negative libuv
// error when polling the fd failed (the watch then stops).
Napi::Value WatchReadable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Int(info, 0);
  if (info.Length() < 2 || !info[1].IsFunction()) {
    Napi::TypeError::New(env, "watchReadable(fd, callback)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return ThrowErrno(env, "napi_get_uv_event_loop", EINVAL);
  FdWatch* w = new FdWatch();
  w->env = env;
  int r = uv_poll_init(loop, &w->poll, fd);
  if (r != 0) {
    delete w;
    return ThrowErrno(env, "uv_poll_init", -r);
  }
  w->poll.data = w;
  napi_create_reference(env, info[1], 1, &w->callback);
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "vxnet.watchReadable", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &w->context);
  uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));
  r = uv_poll_start(&w->poll, UV_READABLE, OnReadable);
  if (r != 0) {
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->context);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), [](uv_handle_t* h) { delete static_cast<FdWatch*>(h->data); });
    return ThrowErrno(env, "uv_poll_start", -r);
  }
  if (tls_watches == nullptr) tls_watches = new std::map<int32_t, FdWatch*>();
  int32_t id = tls_next_watch++;
  (*tls_watches)[id] = w;
  return Napi::Number::New(env, id);
}

// unwatchReadable(id) -> 0, or EINVAL for an unknown id. Stops the watch; call it before
// closing the fd.
Napi::Value UnwatchReadable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t id = Int(info, 0);
  if (tls_watches == nullptr) return Napi::Number::New(env, EINVAL);
  auto it = tls_watches->find(id);
  if (it == tls_watches->end()) return Napi::Number::New(env, EINVAL);
  FdWatch* w = it->second;
  tls_watches->erase(it);
  uv_poll_stop(&w->poll);
  napi_delete_reference(env, w->callback);
  napi_async_destroy(env, w->context);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), [](uv_handle_t* h) { delete static_cast<FdWatch*>(h->data); });
  return Napi::Number::New(env, 0);
}


// ---- The hand-over: a Unix SOCK_SEQPACKET socket and SCM_RIGHTS ------------------------------
//
// A running agent passes its open fds (TUN queues, UDP sockets, the node lock, the metrics
// listener) to its successor (src/node/handover.ts). SOCK_SEQPACKET keeps each message whole, so
// one JSON text and the fds that go with it arrive together or not at all. The protocol is all
// TypeScript; these are the syscalls only.

constexpr int kMaxPassFds = 64;

// unixSeqpacket(path, listen) -> fd, or -errno. listen != 0: socket, bind to path (which must not
// exist), listen, non-blocking (accept through watchReadable). listen == 0: connect to path,
// blocking (every receive waits with poll and a timeout).
Napi::Value UnixSeqpacket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  bool listening = Int(info, 1) != 0;
  sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  if (path.empty() || path.size() >= sizeof(sa.sun_path)) return Napi::Number::New(env, -ENAMETOOLONG);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path.c_str(), path.size());
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (listening ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return Napi::Number::New(env, -errno);
  int r = listening ? bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) : connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  if (r == 0 && listening) r = listen(fd, 4);
  if (r < 0) {
    int err = errno;
    close(fd);
    return Napi::Number::New(env, -err);
  }
  return Napi::Number::New(env, fd);
}

// unixAccept(fd) -> connected fd (blocking, close-on-exec), or -errno (-EAGAIN: none waiting).
Napi::Value UnixAccept(const Napi::CallbackInfo& info) {
  int fd = Int(info, 0);
  int c = RetryEintr([&] { return accept4(fd, nullptr, nullptr, SOCK_CLOEXEC); });
  return Napi::Number::New(info.Env(), c >= 0 ? c : -errno);
}

// sendFds(fd, buf, length, fds: Int32Array, count) -> 0 or errno. One message of buf[0, length)
// carrying fds[0, count) as SCM_RIGHTS (count may be 0). The kernel takes its own reference to
// each fd at this call, so the sender may close them right after.
Napi::Value SendFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Int(info, 0);
  Slab buf;
  GetSlab(info[1], &buf);
  int32_t length = Int(info, 2);
  size_t nFds = 0;
  int32_t* fds = TypedData<int32_t>(info[3], &nFds);
  int32_t count = Int(info, 4);
  uint8_t* p = buf.Range(0, length);
  if (p == nullptr || length == 0 || count < 0 || count > kMaxPassFds || (count > 0 && (fds == nullptr || static_cast<size_t>(count) > nFds)))
    return Napi::Number::New(env, EINVAL);
  iovec iov{p, static_cast<size_t>(length)};
  msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassFds)];
  if (count > 0) {
    memset(control, 0, sizeof(control));
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * count);
    memcpy(CMSG_DATA(c), fds, sizeof(int) * count);
  }
  return ZeroOrErrno(env, RetryEintr([&] { return sendmsg(fd, &msg, MSG_NOSIGNAL); }));
}

// recvFds(fd, buf, timeoutMs, fds: Int32Array) -> length of the message (0: the peer closed),
// -ETIMEDOUT when none came within timeoutMs, -EMSGSIZE when it did not fit buf, or -errno.
// fds[0] is the count of fds received, fds[1..] the fds (close-on-exec). A message whose fds did
// not all fit is refused whole: every fd it brought is closed and -EMSGSIZE returned.
Napi::Value RecvFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Int(info, 0);
  Slab buf;
  GetSlab(info[1], &buf);
  int timeoutMs = Int(info, 2);
  size_t nFds = 0;
  int32_t* out = TypedData<int32_t>(info[3], &nFds);
  if (buf.data == nullptr || out == nullptr || nFds < 1) return Napi::Number::New(env, -EINVAL);
  out[0] = 0;
  int w = WaitFor(fd, POLLIN, timeoutMs);
  if (w < 0) return Napi::Number::New(env, w);
  if (w == 0) return Napi::Number::New(env, -ETIMEDOUT);
  iovec iov{buf.data, buf.length};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassFds)];
  msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t r = RetryEintr([&] { return recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT); });
  if (r < 0) return Napi::Number::New(env, errno == EAGAIN ? -ETIMEDOUT : -errno);
  int got = 0;
  int received[kMaxPassFds];
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    int n = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    int* p = reinterpret_cast<int*>(CMSG_DATA(c));
    for (int i = 0; i < n && got < kMaxPassFds; i++) received[got++] = p[i];
  }
  bool truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || static_cast<size_t>(got) + 1 > nFds;
  if (truncated) {
    for (int i = 0; i < got; i++) close(received[i]);
    return Napi::Number::New(env, -EMSGSIZE);
  }
  out[0] = got;
  for (int i = 0; i < got; i++) out[1 + i] = received[i];
  return Napi::Number::New(env, static_cast<double>(r));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("openTun", Napi::Function::New(env, OpenTun));
  exports.Set("tunSetOffload", Napi::Function::New(env, TunSetOffload));
  exports.Set("tunRead", Napi::Function::New(env, TunRead));
  exports.Set("tunWritev", Napi::Function::New(env, TunWritev));
  exports.Set("udpOpen", Napi::Function::New(env, UdpOpen));
  exports.Set("udpRecv", Napi::Function::New(env, UdpRecv));
  exports.Set("udpSendv", Napi::Function::New(env, UdpSendv));
  exports.Set("udpPathMtu", Napi::Function::New(env, UdpPathMtu));
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("pollIn", Napi::Function::New(env, PollIn));
  exports.Set("ethtoolGet", Napi::Function::New(env, EthtoolGet));
  exports.Set("netlinkOpen", Napi::Function::New(env, NetlinkOpen));
  exports.Set("netlinkSend", Napi::Function::New(env, NetlinkSend));
  exports.Set("netlinkRecv", Napi::Function::New(env, NetlinkRecv));
  exports.Set("tunSetPersist", Napi::Function::New(env, TunSetPersist));
  exports.Set("tunAttach", Napi::Function::New(env, TunAttach));
  exports.Set("flock", Napi::Function::New(env, Flock));
  exports.Set("watchReadable", Napi::Function::New(env, WatchReadable));
  exports.Set("unwatchReadable", Napi::Function::New(env, UnwatchReadable));
  exports.Set("unixSeqpacket", Napi::Function::New(env, UnixSeqpacket));
  exports.Set("unixAccept", Napi::Function::New(env, UnixAccept));
  exports.Set("sendFds", Napi::Function::New(env, SendFds));
  exports.Set("recvFds", Napi::Function::New(env, RecvFds));
  exports.Set("maxBatch", Napi::Number::New(env, kMaxBatch));
  exports.Set("maxIov", Napi::Number::New(env, kMaxIov));
  return exports;
}

}  // namespace

NODE_API_MODULE(vxnet_io, Init)
