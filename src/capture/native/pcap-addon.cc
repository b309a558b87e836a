// mirrorflow's live-capture addon: a thin node-addon-api layer over libpcap.
//
// Design: the event loop never blocks and JavaScript is called once per batch, never per frame.
// The pcap handle is non-blocking; its selectable fd is watched with a one-shot uv_poll on the
// Node event loop (no threads). JavaScript asks for readiness with poll(cb), then calls
// read(...), which runs pcap_dispatch with a callback that copies each frame and its header
// straight into caller-owned memory (one Buffer for the bytes, typed arrays for the headers).
//
// JavaScript API (typed in src/capture/native-binding.ts):
//
//   open({ device, snaplen?, bufferSizeBytes?, filter?, promisc?, immediate?, timeoutMs?,
//          tstampPrecision?: 'nano' | 'micro', direction?: 'inout' | 'in' | 'out' }) -> handle
//     pcap_create, pcap_set_snaplen / _promisc / _timeout / _buffer_size / _immediate_mode,
//     pcap_set_tstamp_precision (nano, falling back to micro when the device refuses),
//     pcap_activate, pcap_setdirection, pcap_compile + pcap_setfilter, pcap_setnonblock.
//     Throws Error{code} with messages such as
//       capture: cannot open interface (interface=nosuch0, error="...")      code capture-open
//       capture: bad filter (interface=eth0, filter="udp port", error="...") code capture-filter
//       capture: bad option (option=snaplen, expected=integer)               code capture-option (TypeError)
//
//   handle.read(data: Buffer, offset, caplen, len, tsSec, tsNsec: Uint32Array) -> count
//     Copies as many waiting frames as fit (frames <= the shortest array, bytes <= data.length)
//     back to back into data; frame i is data[offset[i] .. offset[i] + caplen[i]), len[i] is the
//     length on the wire, tsSec[i]/tsNsec[i] the kernel timestamp (nanoseconds within the second,
//     also when the precision is only micro). Returns 0 when nothing is waiting (never blocks).
//     data.length must be >= snaplen(). A frame that does not fit is kept for the next read.
//     Throws capture-read when pcap reports an error (after handing out what was read before it).
//   handle.poll(cb: (err: Error | null) => void) -> void
//     Calls cb once, from the event loop, when the capture fd becomes readable (or on a poll
//     error). One pending poll at a time. While a poll is pending the handle keeps the event loop
//     alive; close() drops a pending poll without calling it.
//   handle.stats() -> { received, dropped, ifDropped }     pcap_stats (last values after close)
//   handle.linkType() -> number                            pcap_datalink (DLT_*; 1 = Ethernet)
//   handle.snaplen() -> number                             pcap_snapshot
//   handle.tstampPrecision() -> 'nano' | 'micro'           what the device actually gives
//   handle.warning() -> string | null                      pcap_activate's warning, if any
//   handle.inject(frame: Buffer | Uint8Array) -> bytes     pcap_inject; throws capture-inject
//   handle.close() -> void                                 idempotent; also run on GC and env teardown
//   handle.isClosed() -> boolean
//   libVersion() -> string                                 pcap_lib_version
//   startImpairment(opts) -> Impairment                    the impairment forwarder (impair.cc)
//
// After close(), read/poll/inject throw capture-closed; stats() returns the counters taken at close.

#include <napi.h>
#include <pcap/pcap.h>
#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace mirrorflow_crc32c {
void Register(Napi::Env env, Napi::Object exports);  // crc32c.cc
}

namespace mirrorflow_impair {
void Register(Napi::Env env, Napi::Object exports);  // impair.cc
}

namespace {

// ---- messages: `<area>: <what> (<key>=<value>, ...)`, values quoted (JSON) when they hold whitespace

std::string QuoteValue(const std::string& s) {
  bool needs = false;
  for (unsigned char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') needs = true;
  }
  if (!needs) return s;
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  return out;
}

using Fields = std::initializer_list<std::pair<const char*, std::string>>;

std::string Kv(Fields fields) {
  if (fields.size() == 0) return "";
  std::string out = " (";
  bool first = true;
  for (const auto& f : fields) {
    if (!first) out += ", ";
    first = false;
    out += f.first;
    out += "=";
    out += QuoteValue(f.second);
  }
  out += ")";
  return out;
}

[[noreturn]] void ThrowCapture(Napi::Env env, const char* code, const std::string& what, Fields fields,
                               bool typeError = false) {
  std::string message = "capture: " + what + Kv(fields);
  Napi::Error err = typeError ? Napi::TypeError::New(env, message) : Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  for (const auto& f : fields) err.Set(f.first, Napi::String::New(env, f.second));
  throw err;
}

std::string TrimPcapText(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// ---- option parsing

bool IsMissing(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

std::string OptString(const Napi::Object& o, const char* key, const char* fallback, bool required) {
  Napi::Value v = o.Get(key);
  if (IsMissing(v)) {
    if (required) ThrowCapture(o.Env(), "capture-option", "missing option", {{"option", key}}, true);
    return fallback;
  }
  if (!v.IsString()) ThrowCapture(o.Env(), "capture-option", "bad option", {{"option", key}, {"expected", "string"}}, true);
  return v.As<Napi::String>().Utf8Value();
}

int64_t OptInt(const Napi::Object& o, const char* key, int64_t fallback, int64_t min, int64_t max) {
  Napi::Value v = o.Get(key);
  if (IsMissing(v)) return fallback;
  std::string range = "integer " + std::to_string(min) + ".." + std::to_string(max);
  if (!v.IsNumber()) ThrowCapture(o.Env(), "capture-option", "bad option", {{"option", key}, {"expected", range}}, true);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max)) || d != static_cast<double>(static_cast<int64_t>(d))) {
    ThrowCapture(o.Env(), "capture-option", "bad option", {{"option", key}, {"expected", range}}, true);
  }
  return static_cast<int64_t>(d);
}

bool OptBool(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (IsMissing(v)) return fallback;
  if (!v.IsBoolean()) ThrowCapture(o.Env(), "capture-option", "bad option", {{"option", key}, {"expected", "boolean"}}, true);
  return v.As<Napi::Boolean>().Value();
}

// ---- the handle

class PcapHandle;

// Open handles of one env, closed by the env's cleanup hook (worker exit, process teardown). Owned
// by the hook: it outlives every handle that is still open.
struct Registry {
  std::unordered_set<PcapHandle*> open;
};

struct AddonData {
  Napi::FunctionReference ctor;
  Registry* registry;
};

struct ReadCtx {
  PcapHandle* self;
  uint8_t* data;
  size_t cap;
  size_t used;
  uint32_t* offset;
  uint32_t* caplen;
  uint32_t* len;
  uint32_t* tsSec;
  uint32_t* tsNsec;
  uint32_t n;
  uint32_t max;
  bool nano;
  bool full;
};

class PcapHandle : public Napi::ObjectWrap<PcapHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PcapHandle",
                       {
                           InstanceMethod<&PcapHandle::Read>("read"),
                           InstanceMethod<&PcapHandle::Poll>("poll"),
                           InstanceMethod<&PcapHandle::Stats>("stats"),
                           InstanceMethod<&PcapHandle::LinkType>("linkType"),
                           InstanceMethod<&PcapHandle::Snaplen>("snaplen"),
                           InstanceMethod<&PcapHandle::TstampPrecision>("tstampPrecision"),
                           InstanceMethod<&PcapHandle::Warning>("warning"),
                           InstanceMethod<&PcapHandle::Inject>("inject"),
                           InstanceMethod<&PcapHandle::CloseJs>("close"),
                           InstanceMethod<&PcapHandle::IsClosed>("isClosed"),
                       });
  }

  explicit PcapHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PcapHandle>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      ThrowCapture(env, "capture-option", "bad option", {{"option", "options"}, {"expected", "object"}}, true);
    }
    Napi::Object o = info[0].As<Napi::Object>();
    device_ = OptString(o, "device", "", true);
    if (device_.empty()) ThrowCapture(env, "capture-option", "bad option", {{"option", "device"}, {"expected", "interface name"}}, true);
    filter_ = OptString(o, "filter", "", false);
    const int snaplen = static_cast<int>(OptInt(o, "snaplen", 262144, 1, 262144));
    const int bufferSizeBytes = static_cast<int>(OptInt(o, "bufferSizeBytes", 32 << 20, 65536, INT32_MAX));
    const int timeoutMs = static_cast<int>(OptInt(o, "timeoutMs", 50, 0, 60000));
    const bool promisc = OptBool(o, "promisc", true);
    const bool immediate = OptBool(o, "immediate", false);
    const std::string precision = OptString(o, "tstampPrecision", "nano", false);
    if (precision != "nano" && precision != "micro") {
      ThrowCapture(env, "capture-option", "bad option", {{"option", "tstampPrecision"}, {"expected", "nano|micro"}}, true);
    }
    const std::string direction = OptString(o, "direction", "inout", false);
    if (direction != "inout" && direction != "in" && direction != "out") {
      ThrowCapture(env, "capture-option", "bad option", {{"option", "direction"}, {"expected", "inout|in|out"}}, true);
    }

    char errbuf[PCAP_ERRBUF_SIZE];
    errbuf[0] = '\0';
    pcap_t* p = pcap_create(device_.c_str(), errbuf);
    if (p == nullptr) ThrowCapture(env, "capture-open", "cannot open interface", {{"interface", device_}, {"error", TrimPcapText(errbuf)}});

    // From here on every failure closes p before throwing.
    auto fail = [&](const char* code, const char* what, std::string error, bool withFilter) {
      pcap_close(p);
      if (withFilter) ThrowCapture(env, code, what, {{"interface", device_}, {"filter", filter_}, {"error", error}});
      ThrowCapture(env, code, what, {{"interface", device_}, {"error", error}});
    };

    pcap_set_snaplen(p, snaplen);
    pcap_set_promisc(p, promisc ? 1 : 0);
    pcap_set_timeout(p, timeoutMs);
    pcap_set_buffer_size(p, bufferSizeBytes);
    pcap_set_immediate_mode(p, immediate ? 1 : 0);
    if (precision == "nano" && pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO) != 0) {
      pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_MICRO);
    }
    if (precision == "micro") pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_MICRO);

    int rc = pcap_activate(p);
    if (rc == PCAP_ERROR_TSTAMP_PRECISION_NOTSUP) {
      // Some capture modules refuse nano only at activation time: fall back to micro.
      pcap_close(p);
      errbuf[0] = '\0';
      p = pcap_create(device_.c_str(), errbuf);
      if (p == nullptr) ThrowCapture(env, "capture-open", "cannot open interface", {{"interface", device_}, {"error", TrimPcapText(errbuf)}});
      pcap_set_snaplen(p, snaplen);
      pcap_set_promisc(p, promisc ? 1 : 0);
      pcap_set_timeout(p, timeoutMs);
      pcap_set_buffer_size(p, bufferSizeBytes);
      pcap_set_immediate_mode(p, immediate ? 1 : 0);
      rc = pcap_activate(p);
    }
    if (rc < 0) {
      std::string error = pcap_statustostr(rc);
      std::string detail = TrimPcapText(pcap_geterr(p));
      if (!detail.empty() && (rc == PCAP_ERROR || rc == PCAP_ERROR_NO_SUCH_DEVICE || rc == PCAP_ERROR_PERM_DENIED ||
                              rc == PCAP_ERROR_PROMISC_PERM_DENIED || rc == PCAP_ERROR_IFACE_NOT_UP)) {
        // pcap's detail often repeats the status text: keep the longer, more specific one.
        if (detail.find(error) != std::string::npos) error = detail;
        else if (error.find(detail) == std::string::npos) error += ": " + detail;
      }
      fail("capture-open", "cannot open interface", error, false);
    }
    if (rc > 0) {
      warning_ = pcap_statustostr(rc);
      std::string detail = TrimPcapText(pcap_geterr(p));
      if (!detail.empty()) warning_ += ": " + detail;
    }

    if (direction != "inout") {
      if (pcap_setdirection(p, direction == "in" ? PCAP_D_IN : PCAP_D_OUT) != 0) {
        fail("capture-open", "cannot set capture direction", TrimPcapText(pcap_geterr(p)), false);
      }
    }
    if (!filter_.empty()) {
      struct bpf_program prog;
      if (pcap_compile(p, &prog, filter_.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
        fail("capture-filter", "bad filter", TrimPcapText(pcap_geterr(p)), true);
      }
      if (pcap_setfilter(p, &prog) != 0) {
        std::string error = TrimPcapText(pcap_geterr(p));
        pcap_freecode(&prog);
        fail("capture-filter", "bad filter", error, true);
      }
      pcap_freecode(&prog);
    }
    if (pcap_setnonblock(p, 1, errbuf) != 0) fail("capture-open", "cannot set non-blocking mode", TrimPcapText(errbuf), false);
    const int fd = pcap_get_selectable_fd(p);
    if (fd < 0) fail("capture-open", "no selectable descriptor", "pcap_get_selectable_fd failed", false);

    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) fail("capture-open", "no event loop", "napi_get_uv_event_loop failed", false);
    auto* poll = new uv_poll_t;
    const int prc = uv_poll_init(loop, poll, fd);
    if (prc != 0) {
      delete poll;
      fail("capture-open", "cannot watch the capture descriptor", uv_strerror(prc), false);
    }
    poll->data = this;

    p_ = p;
    poll_ = poll;
    snaplen_ = pcap_snapshot(p);
    linkType_ = pcap_datalink(p);
    nano_ = pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO;
    env_ = env;
    registry_ = env.GetInstanceData<AddonData>()->registry;
    registry_->open.insert(this);
  }

  ~PcapHandle() override { Close(false); }

  // Releases everything; safe to call any number of times. fromJs: a JS call, where it is safe to
  // run N-API functions beyond deleting references (destroying the async context).
  void Close(bool fromJs) {
    if (p_ == nullptr) return;
    struct pcap_stat st;
    std::memset(&st, 0, sizeof st);
    if (pcap_stats(p_, &st) == 0) {
      lastStats_ = st;
      haveLastStats_ = true;
    }
    if (poll_ != nullptr) {
      uv_poll_stop(poll_);
      poll_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    if (polling_) {
      polling_ = false;
      pollCb_.Reset();
      Unref();
    }
    if (asyncCtx_ != nullptr) {
      // Inside the poll callback OnPoll deletes it; from finalizers it is leaked on purpose
      // (no async-hooks calls there).
      if (fromJs && !inPollCallback_) delete asyncCtx_;
      asyncCtx_ = nullptr;
    }
    pcap_close(p_);
    p_ = nullptr;
    pending_.clear();
    hasPending_ = false;
    if (registry_ != nullptr) registry_->open.erase(this);
  }

  static void CloseAllInEnv(void* arg) {
    auto* registry = static_cast<Registry*>(arg);
    std::vector<PcapHandle*> handles(registry->open.begin(), registry->open.end());
    for (PcapHandle* h : handles) h->Close(false);
    delete registry;
  }

  // Keeps a frame that did not fit into the caller's buffer for the next read.
  void Stash(const struct pcap_pkthdr* h, const u_char* bytes) {
    pendingHdr_ = *h;
    pending_.assign(bytes, bytes + h->caplen);
    hasPending_ = true;
  }

 private:
  static void OnPacket(u_char* user, const struct pcap_pkthdr* h, const u_char* bytes) {
    auto* c = reinterpret_cast<ReadCtx*>(user);
    const uint32_t cl = h->caplen;
    if (c->n >= c->max || cl > c->cap - c->used) {
      c->self->Stash(h, bytes);
      c->full = true;
      return;
    }
    std::memcpy(c->data + c->used, bytes, cl);
    const uint32_t i = c->n++;
    c->offset[i] = static_cast<uint32_t>(c->used);
    c->caplen[i] = cl;
    c->len[i] = h->len;
    c->tsSec[i] = static_cast<uint32_t>(h->ts.tv_sec);
    c->tsNsec[i] = c->nano ? static_cast<uint32_t>(h->ts.tv_usec) : static_cast<uint32_t>(h->ts.tv_usec) * 1000u;
    c->used += cl;
  }

  void CheckOpen(Napi::Env env) {
    if (p_ == nullptr) ThrowCapture(env, "capture-closed", "source closed", {{"interface", device_}});
  }

  static uint32_t* U32(const Napi::CallbackInfo& info, size_t i, const char* name, size_t* length) {
    if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
      ThrowCapture(info.Env(), "capture-option", "bad read argument", {{"argument", name}, {"expected", "Uint32Array"}}, true);
    }
    Napi::Uint32Array a = info[i].As<Napi::Uint32Array>();
    *length = a.ElementLength();
    return a.Data();
  }

  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (!pendingError_.empty()) {
      std::string error;
      std::swap(error, pendingError_);
      ThrowCapture(env, "capture-read", "read failed", {{"interface", device_}, {"error", error}});
    }
    if (!info[0].IsBuffer()) ThrowCapture(env, "capture-option", "bad read argument", {{"argument", "data"}, {"expected", "Buffer"}}, true);
    Napi::Buffer<uint8_t> data = info[0].As<Napi::Buffer<uint8_t>>();
    size_t n0, n1, n2, n3, n4;
    ReadCtx c;
    c.offset = U32(info, 1, "offset", &n0);
    c.caplen = U32(info, 2, "caplen", &n1);
    c.len = U32(info, 3, "len", &n2);
    c.tsSec = U32(info, 4, "tsSec", &n3);
    c.tsNsec = U32(info, 5, "tsNsec", &n4);
    size_t maxFrames = std::min({n0, n1, n2, n3, n4, static_cast<size_t>(UINT32_MAX)});
    c.self = this;
    c.data = data.Data();
    c.cap = std::min(data.Length(), static_cast<size_t>(UINT32_MAX));
    c.used = 0;
    c.n = 0;
    c.max = static_cast<uint32_t>(maxFrames);
    c.nano = nano_;
    c.full = false;
    const size_t snap = static_cast<size_t>(snaplen_);
    if (c.cap < snap) {
      ThrowCapture(env, "capture-option", "batch buffer smaller than snaplen",
                   {{"bytes", std::to_string(c.cap)}, {"snaplen", std::to_string(snap)}}, true);
    }
    if (c.max == 0) return Napi::Number::New(env, 0);

    if (hasPending_) {
      hasPending_ = false;
      OnPacket(reinterpret_cast<u_char*>(&c), &pendingHdr_, pending_.data());  // fits: cap >= snaplen
    }
    while (c.n < c.max && !c.full) {
      // Ask for only as many frames as surely fit, so at most one frame is ever stashed.
      const size_t left = c.cap - c.used;
      const int cnt = left >= snap ? static_cast<int>(std::min<size_t>({c.max - c.n, left / snap, static_cast<size_t>(INT32_MAX)})) : 1;
      const int r = pcap_dispatch(p_, cnt, OnPacket, reinterpret_cast<u_char*>(&c));
      if (r == 0 || r == PCAP_ERROR_BREAK) break;
      if (r < 0) {
        std::string error = TrimPcapText(pcap_geterr(p_));
        if (c.n == 0) ThrowCapture(env, "capture-read", "read failed", {{"interface", device_}, {"error", error}});
        pendingError_ = error;  // hand out what was read; the next read throws
        break;
      }
    }
    return Napi::Number::New(env, c.n);
  }

  Napi::Value Poll(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (!info[0].IsFunction()) ThrowCapture(env, "capture-option", "bad poll argument", {{"argument", "callback"}, {"expected", "function"}}, true);
    if (polling_) ThrowCapture(env, "capture-busy", "a poll is already pending", {{"interface", device_}});
    const int rc = uv_poll_start(poll_, UV_READABLE, &PcapHandle::OnPollStatic);
    if (rc != 0) ThrowCapture(env, "capture-read", "cannot poll", {{"interface", device_}, {"error", uv_strerror(rc)}});
    pollCb_ = Napi::Persistent(info[0].As<Napi::Function>());
    polling_ = true;
    Ref();  // the handle stays alive while the loop may call back into it
    return env.Undefined();
  }

  static void OnPollStatic(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<PcapHandle*>(handle->data);
    if (self != nullptr) self->OnPoll(status);
  }

  void OnPoll(int status) {
    uv_poll_stop(poll_);
    if (!polling_) return;
    polling_ = false;
    Napi::Env env = env_;
    Napi::HandleScope scope(env);
    Napi::FunctionReference cb = std::move(pollCb_);
    Napi::Value arg = env.Null();
    if (status < 0) {
      Napi::Error err = Napi::Error::New(env, "capture: poll failed" + Kv({{"interface", device_}, {"error", uv_strerror(status)}}));
      err.Set("code", Napi::String::New(env, "capture-read"));
      arg = err.Value();
    }
    if (asyncCtx_ == nullptr) asyncCtx_ = new Napi::AsyncContext(env, "mirrorflow:pcap-poll");
    Napi::AsyncContext* ctx = asyncCtx_;
    inPollCallback_ = true;
    try {
      cb.MakeCallback(env.Global(), {arg}, *ctx);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());  // surfaces as 'uncaughtException'
    }
    inPollCallback_ = false;
    if (asyncCtx_ != ctx) delete ctx;  // close() ran inside the callback and left the context to us
    Unref();  // after the call: the callback may have closed or re-armed the handle, never freed it
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    struct pcap_stat st;
    std::memset(&st, 0, sizeof st);
    if (p_ != nullptr) {
      if (pcap_stats(p_, &st) != 0) ThrowCapture(env, "capture-stats", "cannot read counters", {{"interface", device_}, {"error", TrimPcapText(pcap_geterr(p_))}});
    } else if (haveLastStats_) {
      st = lastStats_;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("received", Napi::Number::New(env, st.ps_recv));
    o.Set("dropped", Napi::Number::New(env, st.ps_drop));
    o.Set("ifDropped", Napi::Number::New(env, st.ps_ifdrop));
    return o;
  }

  Napi::Value LinkType(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), linkType_); }
  Napi::Value Snaplen(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), snaplen_); }
  Napi::Value TstampPrecision(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), nano_ ? "nano" : "micro"); }
  Napi::Value Warning(const Napi::CallbackInfo& info) {
    if (warning_.empty()) return info.Env().Null();
    return Napi::String::New(info.Env(), warning_);
  }
  Napi::Value IsClosed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), p_ == nullptr); }

  Napi::Value Inject(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CheckOpen(env);
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      ThrowCapture(env, "capture-option", "bad inject argument", {{"argument", "frame"}, {"expected", "Buffer or Uint8Array"}}, true);
    }
    Napi::Uint8Array frame = info[0].As<Napi::Uint8Array>();
    const int r = pcap_inject(p_, frame.Data(), frame.ByteLength());
    if (r < 0) {
      ThrowCapture(env, "capture-inject", "inject failed",
                   {{"interface", device_}, {"bytes", std::to_string(frame.ByteLength())}, {"error", TrimPcapText(pcap_geterr(p_))}});
    }
    return Napi::Number::New(env, r);
  }

  Napi::Value CloseJs(const Napi::CallbackInfo& info) {
    Close(true);
    return info.Env().Undefined();
  }

  pcap_t* p_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  napi_env env_ = nullptr;
  Registry* registry_ = nullptr;
  Napi::AsyncContext* asyncCtx_ = nullptr;
  Napi::FunctionReference pollCb_;
  bool polling_ = false;
  bool inPollCallback_ = false;
  std::string device_;
  std::string filter_;
  std::string warning_;
  std::string pendingError_;
  int snaplen_ = 0;
  int linkType_ = 0;
  bool nano_ = false;
  struct pcap_stat lastStats_ {};
  bool haveLastStats_ = false;
  std::vector<uint8_t> pending_;
  struct pcap_pkthdr pendingHdr_ {};
  bool hasPending_ = false;
};

Napi::Value Open(const Napi::CallbackInfo& info) {
  AddonData* data = info.Env().GetInstanceData<AddonData>();
  return data->ctor.New({info.Length() > 0 ? info[0] : info.Env().Undefined()});
}

Napi::Value LibVersion(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), pcap_lib_version()); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->ctor = Napi::Persistent(PcapHandle::Define(env));
  data->registry = new Registry();
  env.SetInstanceData<AddonData>(data);
  napi_add_env_cleanup_hook(env, &PcapHandle::CloseAllInEnv, data->registry);
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("libVersion", Napi::Function::New(env, LibVersion, "libVersion"));
  mirrorflow_impair::Register(env, exports);
  mirrorflow_crc32c::Register(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(mirrorflow_pcap, Init)
