#!/usr/bin/env bash
# Rebuild the committed peer certificates (needs ml_dtypes, gfloat, torch, torchao and en_dtypes installed).
# Each command exits 1 when the peer is not bit-exact; that is the finding, so failures do not stop the script.
set -u
cd "$(dirname "$0")/../.."
out=docs/certificates
c() { refarith certify "$@" --fuzz 2000 --report "$out" || true; }
c ml_dtypes:float8_e4m3fn --spec 'cast(binary32->ocp_e4m3,overflow=nan)' --exhaustive
c torch:float8_e4m3fn --spec 'cast(binary32->ocp_e4m3,overflow=nan)'
c gfloat:ocp_e4m3 --spec 'cast(binary32->ocp_e4m3,overflow=nan)' --nan-payload-ok
c torch:float8_e5m2 --spec 'cast(binary32->ocp_e5m2,overflow=inf)'
c ml_dtypes:float4_e2m1fn --spec 'cast(binary32->ocp_e2m1,overflow=saturate,nan=error)'
c ml_dtypes:float8_e8m0fnu --spec 'cast(binary32->e8m0,rounding=rna,overflow=nan,negative=error)'
c torchao:mx --spec 'mx_quantize(ocp_e4m3,scale=floor)'
c torchao:mx --spec 'mx_quantize(ocp_e2m1,scale=rceil)'
c torchao:nvfp4 --spec 'nvfp4_quantize(levels=1)'
c torchao:nvfp4 --spec 'nvfp4_quantize(levels=2)'
# the NVFP4 training recipe: torchao's 1x16 quantizer is the activation role (no Hadamard transform, no 16x16 tiles)
c torchao:nvfp4 --spec 'nvfp4_recipe(role=activation)'
# torchao's CPU reference of 1x128 blockwise FP8 (prototype.blockwise_fp8_training), through refarith's adapter; NaN
# payloads differ (0x7fc00001 for a NaN tile scale), accepted
refarith certify refarith.certify.recipe_peers:torchao_blockwise_act \
  --spec 'fp8_block_quantize(ocp_e4m3,division=scale,eps=torchao)' --nan-payload-ok --report "$out" || true
# en_dtypes 0.0.4's numpy hifloat8 through refarith's adapter (ties away, the HiFloat8 paper's TA rounding)
c refarith.certify.hifloat_peers:en_dtypes_hifloat8 --spec 'cast(binary16->hifloat8,rounding=rna)'
c refarith.certify.hifloat_peers:en_dtypes_hifloat8 --spec 'cast(binary32->hifloat8,rounding=rna)'
# refarith's own Triton backend over all 2^32 binary32 inputs under the interpreter (about 15 CPU minutes; no fuzz
# stage, the exhaustive sweep covers every input)
refarith certify refarith:triton --spec 'cast(binary32->ocp_e4m3)' --exhaustive --jobs 2 --report "$out" || true
# Triton's own float8 conversions as its interpreter computes them on CPU (TRITON_INTERPRET path); on a GPU the
# compiled conversion is a different code path: certify it there with --device cuda.
c triton:float8e4nv --spec 'cast(binary32->ocp_e4m3,overflow=nan)'
c triton:float8e4nv+rtz --spec 'cast(binary32->ocp_e4m3,rounding=rtz,overflow=nan)'
c triton:float8e5 --spec 'cast(binary32->ocp_e5m2,overflow=inf)'
c triton:float8e5+rtz --spec 'cast(binary32->ocp_e5m2,rounding=rtz,overflow=inf)'
c triton:float8e4b8 --spec 'cast(binary32->e4m3fnuz,overflow=nan)'
c triton:float8e5b16 --spec 'cast(binary32->e5m2fnuz,overflow=nan)'
# gfloat's stochastic RoundModes, bit-exact on (x, r) vectors at the hard places (gfloat takes srbits, srnumbits =
# the spec's k): each against the refarith variant its source defines (refarith.exact.stochastic).
s() { refarith certify "$@" --nan-payload-ok --report "$out" || true; }
for f in 'ocp_e5m2 overflow=inf' 'ocp_e4m3 overflow=nan' 'ocp_e2m1+sat overflow=saturate'; do
  set -- $f
  s "gfloat:$1+Stochastic" --spec "cast(binary32->${1%+sat},rounding=sr,$2,sr=c,k=8)"
  s "gfloat:$1+StochasticOdd" --spec "cast(binary32->${1%+sat},rounding=sr,$2,sr=c_odd,k=8)"
  s "gfloat:$1+StochasticFast" --spec "cast(binary32->${1%+sat},rounding=sr,$2,sr=b,k=8)"
  s "gfloat:$1+StochasticFastest" --spec "cast(binary32->${1%+sat},rounding=sr,$2,sr=a,k=8)"
done
# Deployed libraries (pip install '.[deployed]' and fpy2 with --no-deps, see README "Deployed libraries"): their
# CPU fake quantizers as values kernels, every binary16 input (the golden stage is exhaustive there), and
# identify's verdict on the binary32 boundary and random vectors beside each certificate
# (<target>__<spec>.identify.json, written through a temporary file).
d() {
  local t=$1 spec=$2 id=$3 vary=$4; shift 4
  refarith certify "$t" --spec "$spec" --report "$out" "$@" || true
  refarith identify "$t" --spec "$id" --vary "$vary" --json --quiet "$@" > "$out/.identify.tmp" || true
  mv "$out/.identify.tmp" "$out/${t//[:+]/-}__${id//[^A-Za-z0-9]/_}.identify.json"
}
d pychop:ocp_e5m2 'cast(binary16->ocp_e5m2,overflow=inf)' 'cast(binary32->ocp_e5m2)' rounding,overflow
d compressed_tensors:fp8 'cast(binary16->ocp_e4m3,overflow=saturate)' 'cast(binary32->ocp_e4m3)' rounding,overflow \
  --nan-payload-ok
d compressed_tensors:fp4 'cast(binary16->ocp_e2m1,overflow=saturate,nan=error)' 'cast(binary32->ocp_e2m1)' \
  rounding,overflow,nan
d quark:fp8_e4m3 'cast(binary16->ocp_e4m3,overflow=saturate)' 'cast(binary32->ocp_e4m3)' rounding,overflow \
  --nan-payload-ok
d quark:fp8_e5m2 'cast(binary16->ocp_e5m2,overflow=saturate)' 'cast(binary32->ocp_e5m2)' rounding,overflow \
  --nan-payload-ok
d fpy2:MX_E4M3 'cast(binary16->ocp_e4m3,overflow=nan)' 'cast(binary32->ocp_e4m3)' rounding,overflow
d pychop:ieee_e4m3+rtz 'cast(binary16->ieee_e4m3,rounding=rtz,overflow=inf_always)' 'cast(binary32->ieee_e4m3)' \
  rounding,overflow
d fpy2:MX_E4M3+rto 'cast(binary16->ocp_e4m3,rounding=rto,overflow=nan_rto)' 'cast(binary32->ocp_e4m3)' rounding,overflow
# fpy2's other MX contexts (all of fpy2 0.3.0's: per element, no block-scale API); MX_INT8 rounds x * 2^-6 on its k/64
# grid (the adapter's scaling), so its code is int8's code of round(x), wrapping
d fpy2:MX_E5M2 'cast(binary16->ocp_e5m2,overflow=inf)' 'cast(binary32->ocp_e5m2)' rounding,overflow
d fpy2:MX_E3M2 'cast(binary16->ocp_e3m2,overflow=saturate,nan=error)' 'cast(binary32->ocp_e3m2)' rounding,overflow,nan
d fpy2:MX_E2M3 'cast(binary16->ocp_e2m3,overflow=saturate,nan=error)' 'cast(binary32->ocp_e2m3)' rounding,overflow,nan
d fpy2:MX_E2M1 'cast(binary16->ocp_e2m1,overflow=saturate,nan=error)' 'cast(binary32->ocp_e2m1)' rounding,overflow,nan
d fpy2:MX_E8M0 'cast(binary16->e8m0,rounding=rna,overflow=nan,negative=nan)' 'cast(binary32->e8m0,negative=nan)' \
  rounding,overflow,negative
d fpy2:MX_INT8 'cast(binary16->int8,overflow=wrap)' 'cast(binary32->int8)' rounding,overflow
d brevitas:fp8_e4m3 'cast(binary16->ocp_e4m3,overflow=saturate_inf_nan)' 'cast(binary32->ocp_e4m3)' rounding,overflow \
  --nan-payload-ok
d brevitas:fp8_e5m2 'cast(binary16->ocp_e5m2,overflow=saturate_inf_nan)' 'cast(binary32->ocp_e5m2)' rounding,overflow \
  --nan-payload-ok
d brevitas:fp8_e5m2+nonsat 'cast(binary16->ocp_e5m2,overflow=inf)' 'cast(binary32->ocp_e5m2)' rounding,overflow \
  --nan-payload-ok
# compressed-tensors NVFP4: a Python loop per tensor (about 15 minutes here), against its variant (reciprocal global
# scale g = fl(fl(1/amax) * 2688) in the per-tensor column, 0.125 for a zero block scale)
d compressed_tensors:nvfp4 'nvfp4_quantize(division=divide,levels=2,global_scale=reciprocal,zero_scale=eighth)' \
  'nvfp4_quantize(division=divide,levels=2)' division,global_scale,zero_scale --signed-zero-ok
# Quark's CPU fake_quantize_mx (values X * P_i: the op mx_fake_quantize) on its six elements in its default scale
# mode (quark:mx_<element> is +even), MXFP4 also +floor and +ceil; NaN signs depend on the batch. The target fixes
# Quark's mode, so identify --vary scale varies the reference only; identify accepts the sign of zero (Quark's
# FP4/FP6 kernel gives +0 for every zero), certify counts it.
q() {
  local t=$1 e=$2 scale=$3
  refarith certify "$t" --spec "mx_fake_quantize($e,scale=$scale)" --fuzz 500 --nan-payload-ok --report "$out" || true
  refarith identify "$t" --spec "mx_fake_quantize($e)" --vary scale --nan-payload-ok --signed-zero-ok --json --quiet \
    > "$out/.identify.tmp" || true
  mv "$out/.identify.tmp" "$out/${t//[:+]/-}__mx_fake_quantize_${e}_.identify.json"
}
for p in mx_fp4:ocp_e2m1 mx_fp8_e4m3:ocp_e4m3 mx_fp8_e5m2:ocp_e5m2 mx_fp6_e3m2:ocp_e3m2 mx_fp6_e2m3:ocp_e2m3 \
         mx_int8:int8_sym; do
  q "quark:${p%%:*}" "${p##*:}" even
done
q quark:mx_fp4+floor ocp_e2m1 floor
q quark:mx_fp4+ceil ocp_e2m1 ceil
# brevitas' OCP MX activation quantizers (MXFloat8e4m3Act, MXInt8Act: its scale rule is floor_half); MXINT8 with
# -128 has no golden file: fuzzed
d brevitas:mxfp8_e4m3 'mx_quantize(ocp_e4m3,scale=floor)' 'mx_quantize(ocp_e4m3)' scale
refarith certify brevitas:mxint8 --spec 'mx_quantize(int8,scale=floor_half)' --fuzz 2000 --report "$out" || true
refarith identify brevitas:mxint8 --spec 'mx_quantize(int8)' --vary scale --json --quiet > "$out/.identify.tmp" || true
mv "$out/.identify.tmp" "$out/brevitas-mxint8__mx_quantize_int8_.identify.json"
# qtorch's CPU float_quantize into binary16 (its extension builds on first import: a fresh TORCH_EXTENSIONS_DIR)
d qtorch:binary16 'cast(binary32->binary16,rounding=rna,overflow=inf)' 'cast(binary32->binary16)' rounding,overflow
d qtorch:bfloat16 'cast(binary32->bfloat16,rounding=rna,overflow=inf)' 'cast(binary32->bfloat16)' rounding,overflow
# Sharded campaigns (pip install '.[dist]'): torch's CPU bfloat16/binary16 add/mul/div on all 2^32 pairs (4-7 min
# each on a 2-worker LocalCluster here), a slice of one binary32 cast on a 2-worker LocalCluster; merged
# certificates in sweeps/, ledgers in $LEDGERS.
ledgers=${LEDGERS:-$(mktemp -d)}
for f in binary16 bfloat16; do
  for op in add mul div; do
    refarith sweep run --spec "$op($f)" --target "refarith.certify.torch_ops:${op}_$f" --shard-bits 24 --workers 2 \
      --ledger "$ledgers/${op}_$f" --report "$out/sweeps" --quiet || true
  done
done
refarith sweep run --spec 'cast(binary32->ocp_e4m3,overflow=nan)' --target refarith:numpy \
  --range 0x3c000000:0x3d000000 --shard-bits 22 --workers 2 --ledger "$ledgers/cast_e4m3" --report "$out/sweeps" \
  --quiet || true
# The registry-wide binary32 cast campaign (every setting of every binary32 cast kernel theorem, all 2^32 inputs;
# about 4 CPU hours here): its ledgers are committed under sweeps/ledgers/, so a rerun resumes and only rebuilds the
# merged certificate unless settings are missing.
refarith sweep cast-theorems --ledger "$out/sweeps/ledgers/cast-theorems-binary32" --workers 2 --report "$out/sweeps" \
  --quiet || true
# FMA triples: torch CPU (fp8 through binary32 addcmul; binary16 addcmul) on all 2^24 triples of each OCP fp8
# format, gfloat's rounding of the exact binary64 a * b + c of ocp_e4m3 in five modes, and a 2^26-triple slice
# of the 2^48 binary16 campaign (a = 1.5, b in [1, 2), every c).
refarith sweep run --spec 'fma(ocp_e4m3,overflow=saturate)' --target refarith.certify.torch_ops:fma_ocp_e4m3 \
  --shard-bits 20 --engine local --ledger "$ledgers/fma_e4m3" --report "$out/sweeps" --quiet || true
refarith sweep run --spec 'fma(ocp_e5m2)' --target refarith.certify.torch_ops:fma_ocp_e5m2 \
  --shard-bits 20 --engine local --ledger "$ledgers/fma_e5m2" --report "$out/sweeps" --quiet || true
for m in rne rna rtz rup rdn; do
  refarith sweep run --spec "fma(ocp_e4m3,rounding=$m,overflow=saturate)" \
    --target "refarith.certify.gfloat_fma:fma_ocp_e4m3_$m" --shard-bits 20 --engine local \
    --ledger "$ledgers/gfloat_fma_$m" --report "$out/sweeps" --quiet || true
done
# MPFR's fma (refarith.certify.mpfr_fma; the oracle extra's gmpy2) on all 2^24 triples of both OCP fp8 formats in
# every mode, round to odd included (about 10-15 CPU s each).
for m in rne rna rtz rup rdn rto; do
  refarith sweep run --spec "fma(ocp_e4m3,rounding=$m,overflow=saturate)" \
    --target "refarith.certify.mpfr_fma:fma_ocp_e4m3_$m" --shard-bits 20 --engine local --nan-payload-ok \
    --ledger "$ledgers/mpfr_fma_e4m3_$m" --report "$out/sweeps" --quiet || true
  refarith sweep run --spec "fma(ocp_e5m2,rounding=$m)" --target "refarith.certify.mpfr_fma:fma_ocp_e5m2_$m" \
    --shard-bits 20 --engine local --nan-payload-ok --ledger "$ledgers/mpfr_fma_e5m2_$m" --report "$out/sweeps" \
    --quiet || true
done
refarith sweep run --spec 'fma(binary16)' --target refarith.certify.torch_ops:fma_binary16 --shard-bits 24 \
  --range 0x3e003c000000:0x3e0040000000 --engine local --ledger "$ledgers/fma_binary16" --report "$out/sweeps" \
  --quiet || true
