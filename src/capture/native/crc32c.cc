// CRC-32C (Castagnoli, the checksum of Kafka record batches) for the Kafka producer: kafkajs
// computes it byte by byte in JavaScript, about a tenth of the producer's CPU time. Part of the
// capture addon (registered by pcap-addon.cc's Init); installed into kafkajs by
// src/pipeline/kafka-crc32c.ts.
//
// crc32c(bytes: Uint8Array, software?: boolean): number — the CRC-32C of the bytes (unsigned
// 32-bit); `software` forces the table path (for tests).
// x86-64 with SSE4.2 uses the CPU's crc32 instruction, 8 bytes at a time; anything else a
// slicing-by-8 table. Both give exactly the values of the reflected polynomial 0x82F63B78 with
// the initial value and final XOR 0xFFFFFFFF (RFC 3720's CRC32C).
#include <napi.h>

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace mirrorflow_crc32c {

namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

struct Tables {
  uint32_t t[8][256];
  Tables() {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
      for (int s = 1; s < 8; s++) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
  }
};

const Tables& tables() {
  static const Tables instance;
  return instance;
}

/** Slicing-by-8 over a state that is already inverted. */
uint32_t SoftwareUpdate(uint32_t crc, const uint8_t* p, size_t n) {
  const Tables& tb = tables();
  while (n >= 8) {
    uint32_t lo;
    uint32_t hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    lo = __builtin_bswap32(lo);
    hi = __builtin_bswap32(hi);
#endif
    lo ^= crc;
    crc = tb.t[7][lo & 0xff] ^ tb.t[6][(lo >> 8) & 0xff] ^ tb.t[5][(lo >> 16) & 0xff] ^ tb.t[4][lo >> 24] ^ tb.t[3][hi & 0xff] ^
          tb.t[2][(hi >> 8) & 0xff] ^ tb.t[1][(hi >> 16) & 0xff] ^ tb.t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) crc = tb.t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
  return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t HardwareUpdate(uint32_t crc, const uint8_t* p, size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}

bool HasSse42() {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}
#endif

uint32_t Crc32c(const uint8_t* p, size_t n, bool software) {
  uint32_t crc = 0xFFFFFFFFu;
#if defined(__x86_64__)
  if (!software && HasSse42()) return HardwareUpdate(crc, p, n) ^ 0xFFFFFFFFu;
#endif
  return SoftwareUpdate(crc, p, n) ^ 0xFFFFFFFFu;
}

Napi::Value Crc32cJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    throw Napi::TypeError::New(env, "crc32c: expected a Uint8Array or Buffer");
  }
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(env, "crc32c: expected a Uint8Array or Buffer");
  Napi::Uint8Array bytes = ta.As<Napi::Uint8Array>();
  const bool software = info.Length() > 1 && info[1].ToBoolean().Value();
  return Napi::Number::New(env, Crc32c(bytes.Data(), bytes.ElementLength(), software));
}

}  // namespace

/** Adds crc32c to the addon's exports (called from pcap-addon.cc's Init). */
void Register(Napi::Env env, Napi::Object exports) { exports.Set("crc32c", Napi::Function::New(env, Crc32cJs, "crc32c")); }

}  // namespace mirrorflow_crc32c
