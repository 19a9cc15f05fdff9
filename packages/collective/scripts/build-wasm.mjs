// Generates the WebAssembly SIMD kernels of the f16/bf16 wires and the f32 reduction:
//   src/wire/simd.wat      the text (generated: the per-lane bodies are inlined by the helpers below)
//   src/wire/simdWasm.ts   its compiled bytes, base64 (what the package loads; no build step at run time)
// Run after editing this file: `node packages/collective/scripts/build-wasm.mjs` (needs the wabt devDependency).
//
// Every kernel is bit-identical to the JavaScript codec in src/wire/half.ts (test/wire.test.ts checks):
// f16 encode is F. Giesen's float_to_half_fast3_rtne, decode the classic magic-number conversion with
// NaNs quieted, bf16 round-to-nearest-even with NaNs quieted. Buffers are processed 8 elements at a
// time: callers pad their regions (the tail lanes read and write padding).
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

const here = dirname(fileURLToPath(import.meta.url));
const wireDir = join(here, '../src/wire');
const PAGES = 64; // 4 MiB, fixed: growing would detach the ArrayBuffer views JS holds

const i4 = (v) => `(v128.const i32x4 ${v} ${v} ${v} ${v})`;

/** f32 bits (i32x4 expression) → f16 bits in the low half of each lane. */
function enc4(f, t) {
  return `
    (local.set $sign${t} (v128.and ${f} ${i4('0x80000000')}))
    (local.set $u${t} (v128.xor ${f} (local.get $sign${t})))
    (v128.or
      (v128.bitselect
        (v128.bitselect ${i4('0x7e00')} ${i4('0x7c00')} (i32x4.gt_s (local.get $u${t}) ${i4('0x7f800000')}))
        (v128.bitselect
          (i32x4.sub (f32x4.add (local.get $u${t}) ${i4('0x3f000000')}) ${i4('0x3f000000')})
          (i32x4.shr_u
            (i32x4.add (i32x4.add (local.get $u${t}) ${i4('0xc8000fff')})
                       (v128.and (i32x4.shr_u (local.get $u${t}) (i32.const 13)) ${i4('1')}))
            (i32.const 13))
          (i32x4.lt_s (local.get $u${t}) ${i4('0x38800000')}))
        (i32x4.ge_s (local.get $u${t}) ${i4('0x47800000')}))
      (i32x4.shr_u (local.get $sign${t}) (i32.const 16)))`;
}

/** f16 bits (zero-extended i32x4 expression) → f32 bits. */
function dec4(h, t) {
  return `
    (local.set $h${t} ${h})
    (local.set $o${t} (i32x4.shl (v128.and (local.get $h${t}) ${i4('0x7fff')}) (i32.const 13)))
    (local.set $e${t} (v128.and (local.get $o${t}) ${i4('0x0f800000')}))
    (local.set $o${t} (i32x4.add (local.get $o${t}) ${i4('0x38000000')}))
    (local.set $o${t}
      (v128.bitselect (i32x4.add (local.get $o${t}) ${i4('0x38000000')}) (local.get $o${t})
                      (i32x4.eq (local.get $e${t}) ${i4('0x0f800000')})))
    (local.set $o${t}
      (v128.or (local.get $o${t})
               (v128.and (i32x4.gt_s (v128.and (local.get $h${t}) ${i4('0x7fff')}) ${i4('0x7c00')}) ${i4('0x400000')})))
    (v128.or
      (v128.bitselect
        (f32x4.sub (i32x4.add (local.get $o${t}) ${i4('0x00800000')}) ${i4('0x38800000')})
        (local.get $o${t})
        (i32x4.eq (local.get $e${t}) ${i4('0')}))
      (i32x4.shl (v128.and (local.get $h${t}) ${i4('0x8000')}) (i32.const 16)))`;
}

function encBf4(f, t) {
  return `
    (local.set $u${t} ${f})
    (v128.bitselect
      (v128.or (i32x4.shr_u (local.get $u${t}) (i32.const 16)) ${i4('0x40')})
      (i32x4.shr_u
        (i32x4.add (i32x4.add (local.get $u${t}) ${i4('0x7fff')})
                   (v128.and (i32x4.shr_u (local.get $u${t}) (i32.const 16)) ${i4('1')}))
        (i32.const 16))
      (i32x4.gt_s (v128.and (local.get $u${t}) ${i4('0x7fffffff')}) ${i4('0x7f800000')}))`;
}

/** acc ⊕ b for two f32x4 expressions: sum, or max where NaN wins (as reduceF32). */
// Operand order as V8 compiles `acc[i] += x` (x first), so that even NaN payloads match the JS loops here.
const sum = (a, b) => `(f32x4.add ${b} ${a})`;
function max(a, b, t) {
  return `
    (local.set $b${t} ${b})
    (local.set $a${t} ${a})
    (v128.bitselect (local.get $b${t}) (local.get $a${t})
      (v128.or (f32x4.gt (local.get $b${t}) (local.get $a${t})) (f32x4.ne (local.get $b${t}) (local.get $b${t}))))`;
}

const locals = (names) => names.map((n) => `(local $${n} v128)`).join(' ');
const lane = ['0', '1'];
const encLocals = locals(lane.flatMap((t) => [`sign${t}`, `u${t}`]));
const decLocals = locals(lane.flatMap((t) => [`h${t}`, `o${t}`, `e${t}`]));
const maxLocals = locals(lane.flatMap((t) => [`a${t}`, `b${t}`]));

/**
 * A loop over n elements, 8 per step: `body` gets the current pointers; `a` advances by
 * `aStep` bytes per step, `b` by `bStep` (0: unused).
 */
function loop(name, params, extraLocals, aStep, bStep, body) {
  return `
  (func (export "${name}") ${params} ${extraLocals}
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        ${body}
        (local.set $a (i32.add (local.get $a) (i32.const ${aStep})))
        ${bStep ? `(local.set $b (i32.add (local.get $b) (i32.const ${bStep})))` : ''}
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $next))))`;
}

const P2 = '(param $a i32) (param $b i32) (param $n i32)';
const ld = (p, off) => `(v128.load offset=${off} (local.get $${p}))`;
const st = (p, off, v) => `(v128.store offset=${off} (local.get $${p}) ${v})`;
const h16 = (p) => [`(i32x4.extend_low_i16x8_u ${ld(p, 0)})`, `(i32x4.extend_high_i16x8_u ${ld(p, 0)})`];

const wat = `;; GENERATED by scripts/build-wasm.mjs; do not edit.
(module
  (memory (export "memory") ${PAGES} ${PAGES})
  ;; a: f32 source, b: f16 destination
  ${loop('enc_f16', P2, encLocals, 32, 16, st('b', 0, `(i16x8.narrow_i32x4_u ${enc4(ld('a', 0), '0')} ${enc4(ld('a', 16), '1')})`))}
  ;; a: f32 destination, b: f16 source
  ${loop('dec_f16', P2, decLocals, 32, 16, `${st('a', 0, dec4(h16('b')[0], '0'))} ${st('a', 16, dec4(h16('b')[1], '1'))}`)}
  ;; a: f32 accumulator += decode(b: f16)
  ${loop('add_f16', P2, decLocals, 32, 16, `${st('a', 0, sum(ld('a', 0), dec4(h16('b')[0], '0')))} ${st('a', 16, sum(ld('a', 16), dec4(h16('b')[1], '1')))}`)}
  ;; a: f32 accumulator = max(a, decode(b: f16)), NaN wins
  ${loop('max_f16', P2, `${decLocals} ${maxLocals}`, 32, 16, `${st('a', 0, max(ld('a', 0), dec4(h16('b')[0], '0'), '0'))} ${st('a', 16, max(ld('a', 16), dec4(h16('b')[1], '1'), '1'))}`)}
  ;; a: f32 source, b: bf16 destination
  ${loop('enc_bf16', P2, locals(['u0', 'u1']), 32, 16, st('b', 0, `(i16x8.narrow_i32x4_u ${encBf4(ld('a', 0), '0')} ${encBf4(ld('a', 16), '1')})`))}
  ;; a: f32 destination, b: bf16 source
  ${loop('dec_bf16', P2, '', 32, 16, `${st('a', 0, `(i32x4.shl ${h16('b')[0]} (i32.const 16))`)} ${st('a', 16, `(i32x4.shl ${h16('b')[1]} (i32.const 16))`)}`)}
  ;; a: f32 accumulator += b: f32
  ${loop('add_f32', P2, '', 32, 32, `${st('a', 0, sum(ld('a', 0), ld('b', 0)))} ${st('a', 16, sum(ld('a', 16), ld('b', 16)))}`)}
  ;; a: f32 accumulator = max(a, b: f32), NaN wins
  ${loop('max_f32', P2, maxLocals, 32, 32, `${st('a', 0, max(ld('a', 0), ld('b', 0), '0'))} ${st('a', 16, max(ld('a', 16), ld('b', 16), '1'))}`)}
  ;; a: f32 accumulator /= d
  ${loop('div_f32', '(param $a i32) (param $n i32) (param $d f32)', '', 32, 0, `${st('a', 0, `(f32x4.div ${ld('a', 0)} (f32x4.splat (local.get $d)))`)} ${st('a', 16, `(f32x4.div ${ld('a', 16)} (f32x4.splat (local.get $d)))`)}`)}
)
`;

const wabt = await wabtInit();
const mod = wabt.parseWat('simd.wat', wat, { simd: true });
mod.validate();
const { buffer } = mod.toBinary({});
mod.destroy();
writeFileSync(join(wireDir, 'simd.wat'), wat);
const b64 = Buffer.from(buffer).toString('base64');
writeFileSync(
  join(wireDir, 'simdWasm.ts'),
  `// GENERATED by scripts/build-wasm.mjs from the kernels described there (text: simd.wat); do not edit.\n` +
    `export const SIMD_WASM_BASE64 =\n  '${b64}';\n` +
    `export const SIMD_WASM_PAGES = ${PAGES};\n`,
);
console.log(`simd.wat → ${buffer.length} bytes of wasm`);
