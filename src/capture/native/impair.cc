// mirrorflow's impairment forwarder: copies Ethernet frames both ways between two interfaces,
// delaying each by a fixed time and dropping each with a fixed probability (the kernels we run on
// have no netem). Part of the capture addon (registered by pcap-addon.cc's Init); typed in
// src/capture/native-binding.ts (ImpairmentBinding), driven by scripts/impair.ts.
//
// Design: nothing runs on the Node event loop. Per direction (a→b, b→a) there are two threads:
//   receiver  pcap on the source interface (immediate mode, nanosecond timestamps, direction
//             PCAP_D_IN so our own injections on that interface are not read back), blocking
//             reads. Each frame draws from a seeded PRNG (drop with probability p), and a kept
//             frame is queued with due = its kernel receive timestamp + delay, on CLOCK_MONOTONIC
//             (the receive timestamp is wall-clock: its age is measured against CLOCK_REALTIME
//             and subtracted, so the receiver's own wake-up latency does not add to the delay).
//   sender    takes the queue head, sleeps with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)
//             until it is due, and sends it on an AF_PACKET socket bound to the other interface
//             (what pcap_inject does; protocol 0, so that socket receives nothing).
// The delay is constant, so receive order is due order: the queue is a FIFO (due times are kept
// non-decreasing, so frames never overtake each other, as on a real link). Buffers are recycled
// through a free list: no allocation per frame once the queue has reached its working depth.
// Threads are SCHED_FIFO when allowed (option realtime, default true; best effort) and use a
// 1 ns timer slack, so wake-ups are late by tens of microseconds, not the default 50 µs slack plus
// scheduling noise. What lateness remains (a VM's idle vCPU wakes slowly) is learnt: the sender
// sleeps until due minus the recent wake-up lateness and busy-waits the rest (at most spinMaxUs
// per frame, default 300; 0 turns the spin off).
//
// JavaScript API:
//   startImpairment({ a, b, delayUs?, lossProb? | lossPpm?, seed?, queueLimit?, snaplen?,
//                     realtime?, spinMaxUs?, bufferSizeBytes? }) -> Impairment
//     a, b       interface names (both must be up)
//     delayUs    0..60e6 (default 0), both directions
//     lossProb   0..1 (or lossPpm 0..1e6; default 0), independent per frame
//     seed       integer 0..2^53-1 (default: random); each direction derives its own stream
//     queueLimit frames waiting per direction, 1..1048576 (default 65536); beyond: queueOverflow
//     Throws Error{code} with messages such as
//       impair: cannot open interface (interface=nosuch0, error="...")   code impair-open
//       impair: bad option (option=delayUs, expected=integer 0..60000000) code impair-option (TypeError)
//   impairment.stats() -> { running, realtime, seed, error, aToB: DirStats, bToA: DirStats }
//     DirStats: { from, to, received, dropped, forwarded, queueOverflow, injectErrors, truncated,
//                 queued, captureDropped, lateUsMax, lateUsMean, lastInjectError }
//       received       frames read on `from` (after the direction filter)
//       dropped        dropped by the impairment (the PRNG)
//       forwarded      sent on `to`
//       queueOverflow  dropped because queueLimit frames were waiting
//       injectErrors   sends that failed (lastInjectError: the errno text of the last one)
//       truncated      frames longer than snaplen (not forwarded)
//       queued         waiting now
//       captureDropped pcap_stats ps_drop of the receiving handle (kernel ring overflow)
//       lateUsMax/Mean how late sends were against their due time
//   impairment.stop() -> stats   idempotent; joins the threads; queued frames are discarded
//   impairment.isRunning() -> boolean   false after stop() or when a receiver failed (error says why)
// Running impairments do not keep the event loop alive; they are stopped on GC and env teardown,
// so keep a reference for as long as frames should flow.

#include <napi.h>
#include <pcap/pcap.h>

#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

namespace mirrorflow_impair {

namespace {

// ---- messages: `impair: <what> (<key>=<value>, ...)`, values quoted when they hold whitespace

std::string QuoteValue(const std::string& s) {
  if (s.find_first_of(" \t\n\r\f\v") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n' || c == '\r' || c == '\t') {
      out += ' ';
      continue;
    }
    out += c;
  }
  return out + "\"";
}

using Fields = std::initializer_list<std::pair<const char*, std::string>>;

[[noreturn]] void ThrowImpair(Napi::Env env, const char* code, const std::string& what, Fields fields, bool typeError = false) {
  std::string message = "impair: " + what;
  if (fields.size() > 0) {
    message += " (";
    bool first = true;
    for (const auto& f : fields) {
      if (!first) message += ", ";
      first = false;
      message += std::string(f.first) + "=" + QuoteValue(f.second);
    }
    message += ")";
  }
  Napi::Error err = typeError ? Napi::TypeError::New(env, message) : Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  for (const auto& f : fields) err.Set(f.first, Napi::String::New(env, f.second));
  throw err;
}

std::string Trim(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool IsMissing(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

std::string OptIface(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString() || v.As<Napi::String>().Utf8Value().empty() || v.As<Napi::String>().Utf8Value().size() >= IF_NAMESIZE) {
    ThrowImpair(o.Env(), "impair-option", "bad option", {{"option", key}, {"expected", "interface name"}}, true);
  }
  return v.As<Napi::String>().Utf8Value();
}

double OptNumber(const Napi::Object& o, const char* key, double fallback, double min, double max, bool integer, const std::string& expected) {
  Napi::Value v = o.Get(key);
  if (IsMissing(v)) return fallback;
  if (!v.IsNumber()) ThrowImpair(o.Env(), "impair-option", "bad option", {{"option", key}, {"expected", expected}}, true);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max) || (integer && d != static_cast<double>(static_cast<int64_t>(d)))) {
    ThrowImpair(o.Env(), "impair-option", "bad option", {{"option", key}, {"expected", expected}}, true);
  }
  return d;
}

bool OptBool(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (IsMissing(v)) return fallback;
  if (!v.IsBoolean()) ThrowImpair(o.Env(), "impair-option", "bad option", {{"option", key}, {"expected", "boolean"}}, true);
  return v.As<Napi::Boolean>().Value();
}

int64_t NowNs(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/** Best effort: SCHED_FIFO (when `realtime`) and a 1 ns timer slack for the calling thread. */
bool TuneThread(bool realtime, const char* name) {
  pthread_setname_np(pthread_self(), name);
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  if (!realtime) return false;
  struct sched_param sp;
  std::memset(&sp, 0, sizeof sp);
  sp.sched_priority = 10;
  return pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0;
}

struct Frame {
  int64_t dueNs;
  std::vector<uint8_t> bytes;
};

// One direction: frames read on `from`, sent on `to`.
class Direction {
 public:
  std::string from;
  std::string to;
  pcap_t* rx = nullptr;
  int txFd = -1;
  int64_t delayNs = 0;
  uint64_t lossThreshold = 0;  // drop when the next draw is below it
  bool lossAll = false;
  uint64_t rng = 0;
  size_t queueLimit = 0;
  bool realtime = false;
  int64_t spinMaxNs = 0;       // longest busy-wait before a due time
  int64_t wakeLateEwmaNs = 0;  // sender only: how late clock_nanosleep wakes up, smoothed
  const std::atomic<bool>* stop = nullptr;
  std::atomic<int>* ready = nullptr;  // counts threads that have started (the constructor waits for all)

  std::atomic<uint64_t> received{0}, dropped{0}, forwarded{0}, queueOverflow{0}, injectErrors{0}, truncated{0};
  std::atomic<uint64_t> lateNsMax{0}, lateNsSum{0}, lateCount{0};
  std::atomic<bool> rxRealtime{false}, txRealtime{false};

  std::mutex mu;  // guards everything below
  std::condition_variable cv;
  std::deque<Frame> queue;
  std::vector<std::vector<uint8_t>> spare;
  int64_t lastDueNs = INT64_MIN;
  std::string error;
  std::string lastInjectError;
  struct pcap_stat lastStats {};

  std::thread rxThread, txThread;

  void RunReceiver() {
    rxRealtime = TuneThread(realtime, "mf-impair-rx");
    ready->fetch_add(1);
    while (!stop->load()) {
      const int r = pcap_dispatch(rx, -1, &Direction::OnFrame, reinterpret_cast<u_char*>(this));
      if (r == PCAP_ERROR_BREAK) continue;  // stop() broke the loop; the condition ends it
      if (r < 0) {
        std::lock_guard<std::mutex> l(mu);
        error = "read failed on " + from + ": " + Trim(pcap_geterr(rx));
        return;
      }
    }
  }

  static void OnFrame(u_char* user, const struct pcap_pkthdr* h, const u_char* bytes) {
    auto* d = reinterpret_cast<Direction*>(user);
    d->received.fetch_add(1, std::memory_order_relaxed);
    if (h->caplen < h->len) {
      d->truncated.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (d->lossAll || (d->lossThreshold != 0 && SplitMix64(d->rng) < d->lossThreshold)) {
      d->dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const int64_t nowReal = NowNs(CLOCK_REALTIME);
    const int64_t nowMono = NowNs(CLOCK_MONOTONIC);
    const int64_t tsNs = static_cast<int64_t>(h->ts.tv_sec) * 1000000000LL + h->ts.tv_usec;  // nano precision
    int64_t ageNs = nowReal - tsNs;
    if (ageNs < 0 || ageNs > 1000000000LL) ageNs = 0;  // clock stepped: count from now
    int64_t due = nowMono - ageNs + d->delayNs;

    std::unique_lock<std::mutex> l(d->mu);
    if (d->queue.size() >= d->queueLimit) {
      d->queueOverflow.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (due < d->lastDueNs) due = d->lastDueNs;  // never overtake an earlier frame
    d->lastDueNs = due;
    std::vector<uint8_t> buf;
    if (!d->spare.empty()) {
      buf = std::move(d->spare.back());
      d->spare.pop_back();
    }
    buf.assign(bytes, bytes + h->caplen);
    d->queue.push_back(Frame{due, std::move(buf)});
    const bool wasEmpty = d->queue.size() == 1;
    l.unlock();
    if (wasEmpty) d->cv.notify_one();
  }

  void RunSender() {
    txRealtime = TuneThread(realtime, "mf-impair-tx");
    ready->fetch_add(1);
    for (;;) {
      Frame* f;
      {
        std::unique_lock<std::mutex> l(mu);
        while (queue.empty() && !stop->load()) cv.wait_for(l, std::chrono::milliseconds(100));
        if (stop->load()) return;
        f = &queue.front();  // stays valid: the receiver only appends (deque keeps references)
      }
      const int64_t due = f->dueNs;
      // Sleep until a little before due (by the wake-up lateness seen so far), then spin the rest:
      // timer wake-ups on a VM's idle vCPU come tens of microseconds late even for SCHED_FIFO.
      const int64_t advanceNs = std::min<int64_t>(wakeLateEwmaNs + 20000, spinMaxNs);
      for (;;) {
        const int64_t now = NowNs(CLOCK_MONOTONIC);
        if (now >= due - advanceNs) break;
        if (stop->load()) return;
        const int64_t until = std::min<int64_t>(due - advanceNs, now + 50000000LL);  // look at stop at least every 50 ms
        struct timespec ts;
        ts.tv_sec = static_cast<time_t>(until / 1000000000LL);
        ts.tv_nsec = static_cast<long>(until % 1000000000LL);
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
        if (until == due - advanceNs) {
          const int64_t woke = NowNs(CLOCK_MONOTONIC);
          const int64_t wakeLate = std::max<int64_t>(0, std::min<int64_t>(woke - until, spinMaxNs));
          wakeLateEwmaNs += (wakeLate - wakeLateEwmaNs) / 16;
          break;
        }
      }
      int64_t sendAt;
      while ((sendAt = NowNs(CLOCK_MONOTONIC)) < due) {
      }
      const int64_t lateNs = sendAt - due;  // the send itself may run the peer's receive path: not counted
      const ssize_t r = send(txFd, f->bytes.data(), f->bytes.size(), 0);
      const int sendErrno = errno;
      if (r < 0) {
        injectErrors.fetch_add(1, std::memory_order_relaxed);
      } else {
        forwarded.fetch_add(1, std::memory_order_relaxed);
        lateNsSum.fetch_add(static_cast<uint64_t>(lateNs), std::memory_order_relaxed);
        lateCount.fetch_add(1, std::memory_order_relaxed);
        uint64_t prev = lateNsMax.load(std::memory_order_relaxed);
        while (static_cast<uint64_t>(lateNs) > prev && !lateNsMax.compare_exchange_weak(prev, static_cast<uint64_t>(lateNs))) {
        }
      }
      std::lock_guard<std::mutex> l(mu);
      if (r < 0) lastInjectError = std::strerror(sendErrno);
      if (spare.size() < 1024) spare.push_back(std::move(queue.front().bytes));
      queue.pop_front();
    }
  }

  Napi::Object ToJs(Napi::Env env) {
    Napi::Object o = Napi::Object::New(env);
    auto num = [&](const char* k, uint64_t v) { o.Set(k, Napi::Number::New(env, static_cast<double>(v))); };
    o.Set("from", Napi::String::New(env, from));
    o.Set("to", Napi::String::New(env, to));
    num("received", received.load());
    num("dropped", dropped.load());
    num("forwarded", forwarded.load());
    num("queueOverflow", queueOverflow.load());
    num("injectErrors", injectErrors.load());
    num("truncated", truncated.load());
    std::lock_guard<std::mutex> l(mu);
    num("queued", queue.size());
    if (rx != nullptr) {
      struct pcap_stat st;
      std::memset(&st, 0, sizeof st);
      if (pcap_stats(rx, &st) == 0) lastStats = st;
    }
    num("captureDropped", lastStats.ps_drop);
    const uint64_t n = lateCount.load();
    o.Set("lateUsMax", Napi::Number::New(env, static_cast<double>(lateNsMax.load()) / 1000.0));
    o.Set("lateUsMean", Napi::Number::New(env, n == 0 ? 0.0 : static_cast<double>(lateNsSum.load()) / static_cast<double>(n) / 1000.0));
    o.Set("lastInjectError", lastInjectError.empty() ? env.Null() : Napi::String::New(env, lastInjectError));
    return o;
  }
};

class Impairment;

struct Registry {
  Napi::FunctionReference ctor;
  std::unordered_set<Impairment*> running;
};

pcap_t* OpenReceiver(Napi::Env env, const std::string& dev, int snaplen, int bufferSizeBytes) {
  char errbuf[PCAP_ERRBUF_SIZE];
  errbuf[0] = '\0';
  pcap_t* p = pcap_create(dev.c_str(), errbuf);
  if (p == nullptr) ThrowImpair(env, "impair-open", "cannot open interface", {{"interface", dev}, {"error", Trim(errbuf)}});
  auto fail = [&](const std::string& what, const std::string& error) {
    pcap_close(p);
    ThrowImpair(env, "impair-open", what, {{"interface", dev}, {"error", error}});
  };
  pcap_set_snaplen(p, snaplen);
  pcap_set_promisc(p, 1);
  pcap_set_timeout(p, 100);  // blocking reads return at least every 100 ms (and pcap_breakloop wakes them)
  pcap_set_buffer_size(p, bufferSizeBytes);
  pcap_set_immediate_mode(p, 1);
  if (pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO) != 0) fail("nanosecond timestamps not supported", "pcap_set_tstamp_precision");
  const int rc = pcap_activate(p);
  if (rc < 0) {
    std::string error = pcap_statustostr(rc);
    const std::string detail = Trim(pcap_geterr(p));
    if (!detail.empty() && rc != PCAP_ERROR_ACTIVATED) {
      // pcap's detail often repeats the status text: keep the longer, more specific one.
      if (detail.find(error) != std::string::npos) error = detail;
      else if (error.find(detail) == std::string::npos) error += ": " + detail;
    }
    fail("cannot open interface", error);
  }
  if (pcap_get_tstamp_precision(p) != PCAP_TSTAMP_PRECISION_NANO) fail("nanosecond timestamps not supported", "pcap_get_tstamp_precision");
  if (pcap_datalink(p) != DLT_EN10MB) fail("not an Ethernet interface", "linktype=" + std::to_string(pcap_datalink(p)));
  if (pcap_setdirection(p, PCAP_D_IN) != 0) fail("cannot set capture direction", Trim(pcap_geterr(p)));
  return p;
}

int OpenSender(Napi::Env env, const std::string& dev, pcap_t* toClose1, pcap_t* toClose2) {
  const unsigned ifindex = if_nametoindex(dev.c_str());
  int fd = -1;
  std::string error;
  if (ifindex == 0) {
    error = std::strerror(errno);
  } else {
    fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);  // protocol 0: sends only, receives nothing
    if (fd < 0) {
      error = std::strerror(errno);
    } else {
      struct sockaddr_ll sll;
      std::memset(&sll, 0, sizeof sll);
      sll.sll_family = AF_PACKET;
      sll.sll_ifindex = static_cast<int>(ifindex);
      sll.sll_protocol = 0;
      if (bind(fd, reinterpret_cast<struct sockaddr*>(&sll), sizeof sll) != 0) {
        error = std::strerror(errno);
        close(fd);
        fd = -1;
      }
    }
  }
  if (fd < 0) {
    if (toClose1 != nullptr) pcap_close(toClose1);
    if (toClose2 != nullptr) pcap_close(toClose2);
    ThrowImpair(env, "impair-open", "cannot open interface for sending", {{"interface", dev}, {"error", error}});
  }
  return fd;
}

class Impairment : public Napi::ObjectWrap<Impairment> {
 public:
  static Napi::Function Define(Napi::Env env, Registry* registry) {
    // The registry rides along as the class's data: the constructor finds it in info.Data().
    return DefineClass(env, "Impairment",
                       {
                           InstanceMethod<&Impairment::StatsJs>("stats"),
                           InstanceMethod<&Impairment::StopJs>("stop"),
                           InstanceMethod<&Impairment::IsRunningJs>("isRunning"),
                       },
                       registry);
  }

  explicit Impairment(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Impairment>(info) {
    Napi::Env env = info.Env();
    registry_ = static_cast<Registry*>(info.Data());
    if (info.Length() < 1 || !info[0].IsObject()) {
      ThrowImpair(env, "impair-option", "bad option", {{"option", "options"}, {"expected", "object"}}, true);
    }
    Napi::Object o = info[0].As<Napi::Object>();
    const std::string a = OptIface(o, "a");
    const std::string b = OptIface(o, "b");
    if (a == b) ThrowImpair(env, "impair-option", "bad option", {{"option", "b"}, {"expected", "an interface other than a"}}, true);
    const int64_t delayUs = static_cast<int64_t>(OptNumber(o, "delayUs", 0, 0, 60e6, true, "integer 0..60000000"));
    const bool hasProb = !IsMissing(o.Get("lossProb"));
    const bool hasPpm = !IsMissing(o.Get("lossPpm"));
    if (hasProb && hasPpm) ThrowImpair(env, "impair-option", "bad option", {{"option", "lossPpm"}, {"expected", "lossProb or lossPpm, not both"}}, true);
    double lossProb = OptNumber(o, "lossProb", 0, 0, 1, false, "number 0..1");
    if (hasPpm) lossProb = OptNumber(o, "lossPpm", 0, 0, 1e6, true, "integer 0..1000000") / 1e6;
    const bool hasSeed = !IsMissing(o.Get("seed"));
    uint64_t seed = static_cast<uint64_t>(OptNumber(o, "seed", 0, 0, 9007199254740991.0, true, "integer 0..2^53-1"));
    if (!hasSeed) {
      std::random_device rd;
      seed = ((static_cast<uint64_t>(rd()) << 32) ^ rd()) & 0x1fffffffffffffULL;
    }
    seed_ = seed;
    const size_t queueLimit = static_cast<size_t>(OptNumber(o, "queueLimit", 65536, 1, 1 << 20, true, "integer 1..1048576"));
    const int snaplen = static_cast<int>(OptNumber(o, "snaplen", 262144, 64, 262144, true, "integer 64..262144"));
    const int bufferSizeBytes = static_cast<int>(OptNumber(o, "bufferSizeBytes", 8 << 20, 65536, 1 << 30, true, "integer 65536..1073741824"));
    const bool realtime = OptBool(o, "realtime", true);
    const int64_t spinMaxUs = static_cast<int64_t>(OptNumber(o, "spinMaxUs", 300, 0, 10000, true, "integer 0..10000"));

    // Open everything before starting any thread, so a failure leaves nothing behind.
    pcap_t* rxA = OpenReceiver(env, a, snaplen, bufferSizeBytes);
    pcap_t* rxB;
    try {
      rxB = OpenReceiver(env, b, snaplen, bufferSizeBytes);
    } catch (...) {
      pcap_close(rxA);
      throw;
    }
    const int txB = OpenSender(env, b, rxA, rxB);
    int txA;
    try {
      txA = OpenSender(env, a, rxA, rxB);
    } catch (...) {
      close(txB);
      throw;
    }

    uint64_t mix = seed;
    const uint64_t seedAB = SplitMix64(mix);
    const uint64_t seedBA = SplitMix64(mix);
    // P(draw < threshold) = threshold / 2^64 = lossProb.
    const uint64_t threshold = lossProb >= 1.0 ? 0 : static_cast<uint64_t>(static_cast<long double>(lossProb) * 18446744073709551616.0L);
    Direction* dirs[2] = {&ab_, &ba_};
    ab_.from = a;
    ab_.to = b;
    ab_.rx = rxA;
    ab_.txFd = txB;
    ab_.rng = seedAB;
    ba_.from = b;
    ba_.to = a;
    ba_.rx = rxB;
    ba_.txFd = txA;
    ba_.rng = seedBA;
    for (Direction* d : dirs) {
      d->delayNs = delayUs * 1000;
      d->lossThreshold = threshold;
      d->lossAll = lossProb >= 1.0;
      d->queueLimit = queueLimit;
      d->realtime = realtime;
      d->spinMaxNs = spinMaxUs * 1000;
      d->stop = &stop_;
      d->ready = &ready_;
    }
    for (Direction* d : dirs) {
      d->txThread = std::thread(&Direction::RunSender, d);
      d->rxThread = std::thread(&Direction::RunReceiver, d);
    }
    started_ = true;
    registry_->running.insert(this);
    // Return once every thread runs (and stats().realtime is known); a thread starts in microseconds.
    while (ready_.load() < 4) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }

  ~Impairment() override { Stop(); }

  void Stop() {
    if (!started_ || stopped_) return;
    stopped_ = true;
    stop_ = true;
    Direction* dirs[2] = {&ab_, &ba_};
    for (Direction* d : dirs) {
      pcap_breakloop(d->rx);
      d->cv.notify_all();
    }
    for (Direction* d : dirs) {
      if (d->rxThread.joinable()) d->rxThread.join();
      if (d->txThread.joinable()) d->txThread.join();
    }
    for (Direction* d : dirs) {
      std::lock_guard<std::mutex> l(d->mu);
      struct pcap_stat st;
      std::memset(&st, 0, sizeof st);
      if (pcap_stats(d->rx, &st) == 0) d->lastStats = st;
      pcap_close(d->rx);
      d->rx = nullptr;
      close(d->txFd);
      d->txFd = -1;
      d->queue.clear();
      d->spare.clear();
    }
    registry_->running.erase(this);
  }

  static void StopAllInEnv(void* arg) {
    auto* registry = static_cast<Registry*>(arg);
    std::vector<Impairment*> all(registry->running.begin(), registry->running.end());
    for (Impairment* i : all) i->Stop();
    delete registry;
  }

 private:
  bool Failed() {
    Direction* dirs[2] = {&ab_, &ba_};
    for (Direction* d : dirs) {
      std::lock_guard<std::mutex> l(d->mu);
      if (!d->error.empty()) return true;
    }
    return false;
  }

  Napi::Value StatsJs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    std::string error;
    Direction* dirs[2] = {&ab_, &ba_};
    for (Direction* d : dirs) {
      std::lock_guard<std::mutex> l(d->mu);
      if (!d->error.empty()) error += (error.empty() ? "" : "; ") + d->error;
    }
    o.Set("running", Napi::Boolean::New(env, !stopped_ && error.empty()));
    o.Set("realtime", Napi::Boolean::New(env, ab_.txRealtime.load() && ba_.txRealtime.load()));
    o.Set("seed", Napi::Number::New(env, static_cast<double>(seed_)));
    o.Set("error", error.empty() ? env.Null() : Napi::String::New(env, error));
    o.Set("aToB", ab_.ToJs(env));
    o.Set("bToA", ba_.ToJs(env));
    return o;
  }

  Napi::Value StopJs(const Napi::CallbackInfo& info) {
    Stop();
    return StatsJs(info);
  }

  Napi::Value IsRunningJs(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !stopped_ && !Failed()); }

  Registry* registry_ = nullptr;
  std::atomic<bool> stop_{false};
  std::atomic<int> ready_{0};
  bool started_ = false;
  bool stopped_ = false;
  uint64_t seed_ = 0;
  Direction ab_;
  Direction ba_;
};

Napi::Value Start(const Napi::CallbackInfo& info) {
  auto* registry = static_cast<Registry*>(info.Data());
  return registry->ctor.New({info.Length() > 0 ? info[0] : info.Env().Undefined()});
}

}  // namespace

/** Adds startImpairment to the addon's exports (called from pcap-addon.cc's Init). */
void Register(Napi::Env env, Napi::Object exports) {
  auto* registry = new Registry();
  registry->ctor = Napi::Persistent(Impairment::Define(env, registry));
  exports.Set("startImpairment", Napi::Function::New(env, Start, "startImpairment", registry));
  napi_add_env_cleanup_hook(env, &Impairment::StopAllInEnv, registry);
}

}  // namespace mirrorflow_impair
