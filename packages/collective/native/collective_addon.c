// Native kernels of @mtlface/collective (optional; the package works without them):
//
//   map(fd, bytes, writable) → ArrayBuffer over mmap(MAP_SHARED) of an open file, so both ends of
//       a shared-memory ring copy straight into and out of the same pages (Node has no mmap). The
//       writer reserves the pages first (posix_fallocate): a full tmpfs is an error here, never a
//       SIGBUS on a later store.
//   reduceF32, encode, decode, reduceHalf: the wires' element kernels on any typed arrays (no
//       copies into a separate heap as WebAssembly needs), AVX2 + F16C where the CPU has them,
//       portable C otherwise. Bit-identical to src/wire/half.ts and codec.ts (tests compare).
//
// Semantics (per element; ⊕ is + or max where NaN wins):
//   reduceF32(acc, src, max, divisor):                 acc = (acc ⊕ src) / divisor
//   encode(half, src, dst, round):                     dst = enc(src); round: src = dec(dst)
//   decode(half, src, dst):                            dst = dec(src)
//   reduceHalf(half, acc, src, max, divisor, out, keepAcc):
//       a = (acc ⊕ dec(src)) / divisor; out: out = enc(a), keepAcc: a = dec(out); acc = a unless
//       (out && !keepAcc)
// half: 0 = IEEE binary16, 1 = bfloat16. Encoding is round-to-nearest-even, overflow → ±inf,
// NaN → quiet NaN with its sign (f16: exactly sign|0x7e00, as the JavaScript encoder).

#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MTL_X86 1
#else
#define MTL_X86 0
#endif

typedef union {
  float f;
  uint32_t u;
} bits32;

static inline uint32_t f2u(float f) {
  bits32 b;
  b.f = f;
  return b.u;
}
static inline float u2f(uint32_t u) {
  bits32 b;
  b.u = u;
  return b.f;
}

// ---- scalar conversions (F. Giesen's float_to_half_fast3_rtne, as half.ts) ----

static inline uint16_t f32_to_f16(uint32_t bits) {
  const uint32_t sign = (bits >> 16) & 0x8000u;
  uint32_t u = bits & 0x7fffffffu;
  uint32_t o;
  if (u >= ((127u + 16u) << 23)) {
    o = u > (0xffu << 23) ? 0x7e00u : 0x7c00u;
  } else if (u < (113u << 23)) {
    const uint32_t magic_bits = (127u - 15u + 23u - 10u + 1u) << 23;
    // volatile-free: the add must happen in f32 (no -ffast-math here)
    float f = u2f(u) + u2f(magic_bits);
    o = f2u(f) - magic_bits;
  } else {
    const uint32_t odd = (u >> 13) & 1u;
    u += (uint32_t)(((int32_t)15 - 127) * (1 << 23)) + 0xfffu + odd;
    o = u >> 13;
  }
  return (uint16_t)(o | sign);
}

static inline uint32_t f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0u);
  if (exp == 0) {
    float v = (float)man * 5.9604644775390625e-8f;  // man · 2^-24, exact
    return sign | f2u(v);
  }
  return sign | ((exp + 112u) << 23) | (man << 13);
}

static inline uint16_t f32_to_bf16(uint32_t bits) {
  if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u);
  return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

static inline uint32_t enc_dec(int half, uint32_t bits, uint16_t* h) {
  if (half == 0) {
    *h = f32_to_f16(bits);
    return f16_to_f32(*h);
  }
  *h = f32_to_bf16(bits);
  return (uint32_t)*h << 16;
}

static inline float combine(float a, float b, int max) {
  if (!max) return a + b;
  return (b > a || b != b) ? b : a;
}

// ---- portable loops ----

static void reduce_f32_c(float* acc, const float* src, size_t n, int max, float d) {
  for (size_t i = 0; i < n; i++) {
    float a = combine(acc[i], src[i], max);
    acc[i] = d != 1.0f ? a / d : a;
  }
}

static void encode_c(int half, float* src, uint16_t* dst, size_t n, int round) {
  uint32_t* s = (uint32_t*)src;
  for (size_t i = 0; i < n; i++) {
    uint16_t h;
    uint32_t back = enc_dec(half, s[i], &h);
    dst[i] = h;
    if (round) s[i] = back;
  }
}

static void decode_c(int half, const uint16_t* src, float* dst, size_t n) {
  uint32_t* d = (uint32_t*)dst;
  for (size_t i = 0; i < n; i++) d[i] = half == 0 ? f16_to_f32(src[i]) : (uint32_t)src[i] << 16;
}

static void reduce_half_c(int half, float* acc, const uint16_t* src, size_t n, int max, float d,
                          uint16_t* out, int keep) {
  for (size_t i = 0; i < n; i++) {
    float b = u2f(half == 0 ? f16_to_f32(src[i]) : (uint32_t)src[i] << 16);
    float a = combine(acc[i], b, max);
    if (d != 1.0f) a = a / d;
    if (out) {
      uint16_t h;
      uint32_t back = enc_dec(half, f2u(a), &h);
      out[i] = h;
      if (keep) a = u2f(back);
      else continue;
    }
    acc[i] = a;
  }
}

// ---- AVX2 + F16C ----

#if MTL_X86
#define AVX __attribute__((target("avx2,f16c")))

AVX static inline __m256 combine8(__m256 a, __m256 b, int max) {
  if (!max) return _mm256_add_ps(a, b);
  __m256 take = _mm256_or_ps(_mm256_cmp_ps(b, a, _CMP_GT_OQ), _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
  return _mm256_blendv_ps(a, b, take);
}

// f16 encode of 8 lanes; F16C keeps NaN payload bits, the JavaScript encoder gives sign|0x7e00.
AVX static inline __m128i enc_f16_8(__m256 v) {
  __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m128i mag = _mm_and_si128(h, _mm_set1_epi16(0x7fff));
  __m128i nan = _mm_cmpgt_epi16(mag, _mm_set1_epi16(0x7c00));
  __m128i canon = _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16((short)0x8000)), _mm_set1_epi16(0x7e00));
  return _mm_blendv_epi8(h, canon, nan);
}

// bf16 encode of 8 lanes (integer RNE, NaN quieted), returned as 8 × u16.
AVX static inline __m128i enc_bf16_8(__m256 v) {
  __m256i u = _mm256_castps_si256(v);
  __m256i mag = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
  __m256i nan = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x7f800000));
  __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), odd), 16);
  __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
  r = _mm256_blendv_epi8(r, q, nan);
  r = _mm256_and_si256(r, _mm256_set1_epi32(0xffff));
  __m256i packed = _mm256_packus_epi32(r, r);  // lanes 0-3 | 0-3 || 4-7 | 4-7
  packed = _mm256_permute4x64_epi64(packed, 0x08);  // 64-bit blocks 0, 2
  return _mm256_castsi256_si128(packed);
}

AVX static inline __m256 dec8(int half, const uint16_t* p) {
  __m128i h = _mm_loadu_si128((const __m128i*)p);
  if (half == 0) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

AVX static inline __m256 dec8r(int half, __m128i h) {
  if (half == 0) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

AVX static inline __m128i enc8(int half, __m256 v) { return half == 0 ? enc_f16_8(v) : enc_bf16_8(v); }

AVX static void reduce_f32_avx(float* acc, const float* src, size_t n, int max, float d) {
  size_t i = 0;
  const __m256 dv = _mm256_set1_ps(d);
  const int div = d != 1.0f;
  for (; i + 8 <= n; i += 8) {
    __m256 a = combine8(_mm256_loadu_ps(acc + i), _mm256_loadu_ps(src + i), max);
    if (div) a = _mm256_div_ps(a, dv);
    _mm256_storeu_ps(acc + i, a);
  }
  reduce_f32_c(acc + i, src + i, n - i, max, d);
}

AVX static void encode_avx(int half, float* src, uint16_t* dst, size_t n, int round) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = enc8(half, _mm256_loadu_ps(src + i));
    _mm_storeu_si128((__m128i*)(dst + i), h);
    if (round) _mm256_storeu_ps(src + i, dec8r(half, h));
  }
  encode_c(half, src + i, dst + i, n - i, round);
}

AVX static void decode_avx(int half, const uint16_t* src, float* dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, dec8(half, src + i));
  decode_c(half, src + i, dst + i, n - i);
}

AVX static void reduce_half_avx(int half, float* acc, const uint16_t* src, size_t n, int max, float d,
                                uint16_t* out, int keep) {
  size_t i = 0;
  const __m256 dv = _mm256_set1_ps(d);
  const int div = d != 1.0f;
  for (; i + 8 <= n; i += 8) {
    __m256 a = combine8(_mm256_loadu_ps(acc + i), dec8(half, src + i), max);
    if (div) a = _mm256_div_ps(a, dv);
    if (out) {
      __m128i h = enc8(half, a);
      _mm_storeu_si128((__m128i*)(out + i), h);
      if (!keep) continue;
      a = dec8r(half, h);
    }
    _mm256_storeu_ps(acc + i, a);
  }
  reduce_half_c(half, acc + i, src + i, n - i, max, d, out ? out + i : NULL, keep);
}
#endif

static int use_avx = 0;

// ---- N-API glue ----

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, NULL, "collective addon: " #call " failed"); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static int arg_array(napi_env env, napi_value v, napi_typedarray_type want, void** data, size_t* len,
                     const char* what) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  napi_typedarray_type t;
  if (is) napi_get_typedarray_info(env, v, &t, len, data, NULL, NULL);
  if (!is || t != want) {
    char msg[128];
    snprintf(msg, sizeof msg, "collective addon: %s must be a %s", what,
             want == napi_float32_array ? "Float32Array" : "Uint16Array");
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  return 1;
}

static int arg_int(napi_env env, napi_value v, int64_t* out) {
  return napi_get_value_int64(env, v, out) == napi_ok;
}

static int arg_bool(napi_env env, napi_value v) {
  bool b = false;
  napi_get_value_bool(env, v, &b);
  return b ? 1 : 0;
}

static float arg_divisor(napi_env env, napi_value v) {
  double d = 1;
  napi_get_value_double(env, v, &d);
  return (float)d;
}

static napi_value length_error(napi_env env, size_t a, size_t b) {
  char msg[128];
  snprintf(msg, sizeof msg, "collective addon: lengths differ (%zu vs %zu)", a, b);
  napi_throw_range_error(env, NULL, msg);
  return NULL;
}

// The mapping goes when its ArrayBuffer is collected; V8 is told about the memory both ways so that
// groups made and closed in a loop do not pile up mappings between collections.
static void unmap_cb(napi_env env, void* data, void* hint) {
  int64_t left;
  munmap(data, (size_t)(uintptr_t)hint);
  napi_adjust_external_memory(env, -(int64_t)(uintptr_t)hint, &left);
}

static napi_value throw_errno(napi_env env, const char* what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value code, text, error;
  napi_create_string_utf8(env, err == ENOSPC ? "ENOSPC" : "EMAP", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_throw(env, error);
  return NULL;
}

// map(fd, bytes, writable): ArrayBuffer
static napi_value Map(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t fd = -1, bytes = 0;
  if (argc < 3 || !arg_int(env, argv[0], &fd) || !arg_int(env, argv[1], &bytes) || fd < 0 || bytes <= 0) {
    napi_throw_type_error(env, NULL, "collective addon: map(fd, bytes, writable)");
    return NULL;
  }
  const int writable = arg_bool(env, argv[2]);
  if (writable) {
    int err = posix_fallocate((int)fd, 0, (off_t)bytes);
    if (err) return throw_errno(env, "reserving the shared-memory ring", err);
  } else {
    struct stat st;
    if (fstat((int)fd, &st) != 0) return throw_errno(env, "fstat of the shared-memory ring", errno);
    if (st.st_size < bytes) {
      napi_throw_error(env, "ESHORT", "the shared-memory ring file is shorter than its geometry");
      return NULL;
    }
  }
  void* p = mmap(NULL, (size_t)bytes, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, (int)fd, 0);
  if (p == MAP_FAILED) return throw_errno(env, "mapping the shared-memory ring", errno);
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, (size_t)bytes, unmap_cb, (void*)(uintptr_t)bytes, &ab) !=
      napi_ok) {
    munmap(p, (size_t)bytes);
    napi_throw_error(env, NULL, "collective addon: external ArrayBuffers are not allowed in this runtime");
    return NULL;
  }
  int64_t total;
  napi_adjust_external_memory(env, bytes, &total);
  return ab;
}

// The kernels' arguments: [half,] two typed arrays of equal length, then scalars.
typedef struct {
  size_t argc;
  napi_value argv[8];
  int64_t half;
  void* a;
  void* b;
  size_t n;
} kernel_args;

// Reads `nargs` arguments; the two arrays sit at `at` and `at + 1` (types ta, tb). 0: a JS error is pending.
static int kernel_parse(napi_env env, napi_callback_info info, size_t nargs, size_t at,
                        napi_typedarray_type ta, const char* na, napi_typedarray_type tb, const char* nb,
                        kernel_args* k) {
  k->argc = nargs;
  k->half = 0;
  if (napi_get_cb_info(env, info, &k->argc, k->argv, NULL, NULL) != napi_ok || k->argc < nargs) {
    napi_throw_type_error(env, NULL, "collective addon: too few arguments");
    return 0;
  }
  if (at == 1 && !arg_int(env, k->argv[0], &k->half)) {
    napi_throw_type_error(env, NULL, "collective addon: half must be 0 (f16) or 1 (bf16)");
    return 0;
  }
  size_t nb_len = 0;
  if (!arg_array(env, k->argv[at], ta, &k->a, &k->n, na) || !arg_array(env, k->argv[at + 1], tb, &k->b, &nb_len, nb))
    return 0;
  if (k->n != nb_len) {
    length_error(env, k->n, nb_len);
    return 0;
  }
  return 1;
}

#if MTL_X86
#define DISPATCH(vec, portable) \
  do {                          \
    if (use_avx)                \
      vec;                      \
    else                        \
      portable;                 \
  } while (0)
#else
#define DISPATCH(vec, portable) portable
#endif

// reduceF32(acc, src, max, divisor)
static napi_value ReduceF32(napi_env env, napi_callback_info info) {
  kernel_args k;
  if (!kernel_parse(env, info, 4, 0, napi_float32_array, "acc", napi_float32_array, "src", &k)) return NULL;
  const int max = arg_bool(env, k.argv[2]);
  const float d = arg_divisor(env, k.argv[3]);
  DISPATCH(reduce_f32_avx(k.a, k.b, k.n, max, d), reduce_f32_c(k.a, k.b, k.n, max, d));
  return NULL;
}

// encode(half, src f32, dst u16, round)
static napi_value Encode(napi_env env, napi_callback_info info) {
  kernel_args k;
  if (!kernel_parse(env, info, 4, 1, napi_float32_array, "src", napi_uint16_array, "dst", &k)) return NULL;
  const int round = arg_bool(env, k.argv[3]);
  DISPATCH(encode_avx((int)k.half, k.a, k.b, k.n, round), encode_c((int)k.half, k.a, k.b, k.n, round));
  return NULL;
}

// decode(half, src u16, dst f32)
static napi_value Decode(napi_env env, napi_callback_info info) {
  kernel_args k;
  if (!kernel_parse(env, info, 3, 1, napi_uint16_array, "src", napi_float32_array, "dst", &k)) return NULL;
  DISPATCH(decode_avx((int)k.half, k.a, k.b, k.n), decode_c((int)k.half, k.a, k.b, k.n));
  return NULL;
}

// reduceHalf(half, acc f32, src u16, max, divisor, out u16 | null, keepAcc)
static napi_value ReduceHalf(napi_env env, napi_callback_info info) {
  kernel_args k;
  if (!kernel_parse(env, info, 7, 1, napi_float32_array, "acc", napi_uint16_array, "src", &k)) return NULL;
  uint16_t* out = NULL;
  napi_valuetype t;
  napi_typeof(env, k.argv[5], &t);
  if (t != napi_null && t != napi_undefined) {
    size_t no = 0;
    if (!arg_array(env, k.argv[5], napi_uint16_array, (void**)&out, &no, "out")) return NULL;
    if (no != k.n) return length_error(env, k.n, no);
  }
  const int max = arg_bool(env, k.argv[3]);
  const float d = arg_divisor(env, k.argv[4]);
  const int keep = arg_bool(env, k.argv[6]);
  DISPATCH(reduce_half_avx((int)k.half, k.a, k.b, k.n, max, d, out, keep),
           reduce_half_c((int)k.half, k.a, k.b, k.n, max, d, out, keep));
  return NULL;
}

// setVector(on): tests run both paths; returns whether the vector path is now in use.
static napi_value SetVector(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int want = argc > 0 ? arg_bool(env, argv[0]) : 1;
#if MTL_X86
  use_avx = want && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
#else
  (void)want;
  use_avx = 0;
#endif
  napi_value r;
  napi_get_boolean(env, use_avx != 0, &r);
  return r;
}

static napi_value Init(napi_env env, napi_value exports) {
#if MTL_X86
  __builtin_cpu_init();
  use_avx = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c");
#endif
  napi_property_descriptor props[] = {
      {"map", NULL, Map, NULL, NULL, NULL, napi_default, NULL},
      {"reduceF32", NULL, ReduceF32, NULL, NULL, NULL, napi_default, NULL},
      {"encode", NULL, Encode, NULL, NULL, NULL, napi_default, NULL},
      {"decode", NULL, Decode, NULL, NULL, NULL, napi_default, NULL},
      {"reduceHalf", NULL, ReduceHalf, NULL, NULL, NULL, napi_default, NULL},
      {"setVector", NULL, SetVector, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value v;
  napi_get_boolean(env, use_avx != 0, &v);
  napi_set_named_property(env, exports, "vector", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
