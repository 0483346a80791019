// vxnet_io: the thin syscall layer under vxnet's data path.
//
// Design: every function here is one system-call pattern and nothing else. Packet parsing,
// encapsulation, segmentation and every policy decision live in TypeScript. Calls are
// synchronous and are meant to be made from worker threads, which block in poll(2) with a short
// timeout so that they notice a stop request; the main thread never calls the blocking ones.
//
// Batches: a call moves up to `count` packets between the kernel and ONE caller-owned buffer (a
// slab). The caller passes an Int32Array of offsets into the slab (one per packet slot, leaving
// headroom in front of each so outer headers can be written in place) and an Int32Array that
// receives or supplies the lengths. No per-packet JS objects or callbacks are created.
//
// Room to grow without changing that shape: IFF_VNET_HDR packets simply carry their 10-byte
// virtio header in the slot; UDP GRO reports a per-message segment size in `gsoSizes`; UDP GSO
// takes a per-message segment size in `gsoSizes`; multi-queue TUN is a flag of openTun, and each
// queue is just another fd for another worker.

#include <napi.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

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

namespace {

constexpr int kMaxBatch = 1024;

struct BatchState {
  mmsghdr msgs[kMaxBatch];
  iovec iovs[kMaxBatch];
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

// Waits until fd is readable (or writable), up to timeoutMs. Returns >0 ready, 0 timeout, -errno.
int WaitFor(int fd, short events, int timeoutMs) {
  pollfd p{fd, events, 0};
  int r = poll(&p, 1, timeoutMs);
  if (r < 0) return errno == EINTR ? 0 : -errno;
  return r;
}

// openTun(name: string, flags: number) -> { fd, name }
// flags: 1 = IFF_VNET_HDR, 2 = IFF_MULTI_QUEUE.
Napi::Value OpenTun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int flags = info[1].As<Napi::Number>().Int32Value();
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
  int fd = info[0].As<Napi::Number>().Int32Value();
  unsigned int flags = info[1].As<Napi::Number>().Uint32Value();
  int r = ioctl(fd, TUNSETOFFLOAD, flags);
  return Napi::Number::New(info.Env(), r < 0 ? errno : 0);
}

// tunRead(fd, slab, offsets, capacity, lengths, max, timeoutMs[, maxBytes]) -> count, or -errno.
// Waits up to timeoutMs for the first packet, then drains without blocking: up to `max`
// packets, and (when maxBytes > 0) stops once that many bytes have been read, so one call
// moves many small packets or a few 64 KB super-packets.
Napi::Value TunRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  Slab slab;
  GetSlab(info[1], &slab);
  size_t nOff, nLen;
  int32_t* offsets = TypedData<int32_t>(info[2], &nOff);
  int capacity = info[3].As<Napi::Number>().Int32Value();
  int32_t* lengths = TypedData<int32_t>(info[4], &nLen);
  int max = info[5].As<Napi::Number>().Int32Value();
  int timeoutMs = info[6].As<Napi::Number>().Int32Value();
  int64_t maxBytes = info.Length() > 7 && info[7].IsNumber() ? info[7].As<Napi::Number>().Int64Value() : 0;
  if (static_cast<size_t>(max) > nOff) max = static_cast<int>(nOff);
  if (static_cast<size_t>(max) > nLen) max = static_cast<int>(nLen);

  int w = WaitFor(fd, POLLIN, timeoutMs);
  if (w <= 0) return Napi::Number::New(env, w);
  int n = 0;
  int64_t bytes = 0;
  while (n < max && (maxBytes <= 0 || bytes < maxBytes)) {
    size_t off = static_cast<size_t>(offsets[n]);
    if (off + capacity > slab.length) break;
    ssize_t r = read(fd, slab.data + off, capacity);
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

// tunWrite(fd, slab, offsets, lengths, count) -> packets written. Failed writes are skipped
// (the caller counts count - written as drops); a full queue waits briefly for room.
Napi::Value TunWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  Slab slab;
  GetSlab(info[1], &slab);
  size_t nOff, nLen;
  int32_t* offsets = TypedData<int32_t>(info[2], &nOff);
  int32_t* lengths = TypedData<int32_t>(info[3], &nLen);
  int count = info[4].As<Napi::Number>().Int32Value();
  int written = 0;
  for (int i = 0; i < count && static_cast<size_t>(i) < nOff && static_cast<size_t>(i) < nLen; i++) {
    size_t off = static_cast<size_t>(offsets[i]);
    size_t len = static_cast<size_t>(lengths[i]);
    if (off + len > slab.length) continue;
    for (int attempt = 0; attempt < 3; attempt++) {
      ssize_t r = write(fd, slab.data + off, len);
      if (r >= 0) {
        written++;
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        WaitFor(fd, POLLOUT, 10);
        continue;
      }
      break;
    }
  }
  return Napi::Number::New(env, written);
}

// udpOpen(addr: uint32, port, rcvbuf, sndbuf, flags) -> { fd, port, gro, gso }
// flags: 1 = try UDP_GRO, 2 = SO_REUSEPORT. `gso` says whether the kernel knows UDP_SEGMENT
// (probed with a per-socket segment size of 0, which changes nothing).
Napi::Value UdpOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t addr = info[0].As<Napi::Number>().Uint32Value();
  int port = info[1].As<Napi::Number>().Int32Value();
  int rcvbuf = info[2].As<Napi::Number>().Int32Value();
  int sndbuf = info[3].As<Napi::Number>().Int32Value();
  int flags = info[4].As<Napi::Number>().Int32Value();
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(env, "socket", errno);
  int one = 1;
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  if (sndbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  if (flags & 2) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
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
//         max, timeoutMs) -> count or -errno. gsoSizes[i] is the UDP_GRO segment size, or 0.
Napi::Value UdpRecv(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  Slab slab;
  GetSlab(info[1], &slab);
  size_t nOff, nLen, nSrc, nGso;
  int32_t* offsets = TypedData<int32_t>(info[2], &nOff);
  int capacity = info[3].As<Napi::Number>().Int32Value();
  int32_t* lengths = TypedData<int32_t>(info[4], &nLen);
  uint32_t* srcAddrs = TypedData<uint32_t>(info[5], &nSrc);
  int32_t* gsoSizes = TypedData<int32_t>(info[6], &nGso);
  int max = info[7].As<Napi::Number>().Int32Value();
  int timeoutMs = info[8].As<Napi::Number>().Int32Value();
  size_t lim = nOff;
  if (nLen < lim) lim = nLen;
  if (nSrc < lim) lim = nSrc;
  if (nGso < lim) lim = nGso;
  if (static_cast<size_t>(max) > lim) max = static_cast<int>(lim);
  if (max > kMaxBatch) max = kMaxBatch;

  BatchState* b = Batch();
  int usable = 0;
  for (int i = 0; i < max; i++) {
    size_t off = static_cast<size_t>(offsets[i]);
    if (off + capacity > slab.length) break;
    b->iovs[i].iov_base = slab.data + off;
    b->iovs[i].iov_len = capacity;
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
  if (usable == 0) return Napi::Number::New(env, 0);
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

// udpSend(fds: Int32Array, sockIndex: Uint8Array, slab, offsets, lengths, dstAddrs: Uint32Array,
//         dstPorts: Uint16Array, gsoSizes: Int32Array, count) -> messages sent.
// Consecutive messages that use the same socket go out in one sendmmsg; gsoSizes[i] > 0 attaches
// UDP_SEGMENT so the kernel splits that message into datagrams of that size. Returns -errno
// (negative) only when nothing at all could be sent because of a persistent error.
Napi::Value UdpSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t nFds, nIdx, nOff, nLen, nDst, nPort, nGso;
  int32_t* fds = TypedData<int32_t>(info[0], &nFds);
  uint8_t* sockIndex = TypedData<uint8_t>(info[1], &nIdx);
  Slab slab;
  GetSlab(info[2], &slab);
  int32_t* offsets = TypedData<int32_t>(info[3], &nOff);
  int32_t* lengths = TypedData<int32_t>(info[4], &nLen);
  uint32_t* dst = TypedData<uint32_t>(info[5], &nDst);
  uint16_t* ports = TypedData<uint16_t>(info[6], &nPort);
  int32_t* gso = TypedData<int32_t>(info[7], &nGso);
  int count = info[8].As<Napi::Number>().Int32Value();
  size_t lim = nIdx;
  for (size_t n : {nOff, nLen, nDst, nPort, nGso})
    if (n < lim) lim = n;
  if (static_cast<size_t>(count) > lim) count = static_cast<int>(lim);

  BatchState* b = Batch();
  int sent = 0;
  int lastErr = 0;
  int i = 0;
  while (i < count) {
    // Build one run of messages for the same socket.
    int run = 0;
    uint8_t sidx = sockIndex[i];
    while (i + run < count && run < kMaxBatch && sockIndex[i + run] == sidx) {
      int k = i + run;
      mmsghdr& m = b->msgs[run];
      size_t off = static_cast<size_t>(offsets[k]);
      size_t len = static_cast<size_t>(lengths[k]);
      if (off + len > slab.length) len = 0;
      b->iovs[run].iov_base = slab.data + off;
      b->iovs[run].iov_len = len;
      sockaddr_in& a = b->addrs[run];
      memset(&a, 0, sizeof(a));
      a.sin_family = AF_INET;
      a.sin_port = htons(ports[k]);
      a.sin_addr.s_addr = htonl(dst[k]);
      m.msg_hdr.msg_name = &a;
      m.msg_hdr.msg_namelen = sizeof(a);
      m.msg_hdr.msg_iov = &b->iovs[run];
      m.msg_hdr.msg_iovlen = 1;
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
      run++;
    }
    int fd = sidx < nFds ? fds[sidx] : -1;
    int done = 0;
    int stalls = 0;
    while (done < run && fd >= 0) {
      int r = sendmmsg(fd, b->msgs + done, run - done, 0);
      if (r > 0) {
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
      // A message the kernel refuses (EMSGSIZE, EINVAL for a bad GSO size, an unreachable
      // destination...) is skipped so the rest of the batch still goes out.
      lastErr = r < 0 ? errno : EIO;
      done++;
    }
    i += run;
  }
  if (sent == 0 && lastErr != 0) return Napi::Number::New(env, -lastErr);
  return Napi::Number::New(env, sent);
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  int r = close(fd);
  return Napi::Number::New(info.Env(), r < 0 ? errno : 0);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("openTun", Napi::Function::New(env, OpenTun));
  exports.Set("tunSetOffload", Napi::Function::New(env, TunSetOffload));
  exports.Set("tunRead", Napi::Function::New(env, TunRead));
  exports.Set("tunWrite", Napi::Function::New(env, TunWrite));
  exports.Set("udpOpen", Napi::Function::New(env, UdpOpen));
  exports.Set("udpRecv", Napi::Function::New(env, UdpRecv));
  exports.Set("udpSend", Napi::Function::New(env, UdpSend));
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("maxBatch", Napi::Number::New(env, kMaxBatch));
  return exports;
}

}  // namespace

NODE_API_MODULE(vxnet_io, Init)
