"""The NVFP4 training recipe (NVIDIA, arXiv 2509.25149, §4), exactly: which NVFP4 quantization each GEMM operand
of a linear layer gets.

Roles (``ROLES``), each a composition of existing exact models:

* ``weight``: 16x16 tiles (:data:`refarith.exact.nvfp4.TILES`), RNE, so that the quantized W of the forward GEMM
  and the quantized W^T of the data-gradient GEMM are transposes of each other (theorem
  ``nvfp4_recipe.transpose_16x16``).
* ``activation``: 1x16 blocks along the last axis, RNE.
* ``gradient``: 1x16 blocks, stochastic rounding of the elements (``rounding="sr"``, one random integer of
  ``rand_bits`` bits per element, variant ``sr_variant``, default ``te_e2m1_8`` with 8 bits: Transformer
  Engine's software SR onto E2M1); the scales stay RNE.
* ``wgrad_activation``, ``wgrad_gradient``: the two inputs of the weight-gradient GEMM, laid out with the
  reduction (token) axis last: first the random Hadamard transform of 16 along that axis
  (:func:`refarith.exact.rotation.rotate_float`, default :data:`RHT`: Transformer Engine's 16 signs and its stored
  matrix form ``x @ (diag(d) H / 4)``, row sums in order in binary32), then 1x16 blocks; the gradient one rounds
  stochastically as ``gradient``.  ``rht`` is the format the transform takes and returns: ``binary32`` (default:
  binary32 inputs, each row sum rounded once to binary32) or ``bfloat16`` (Transformer Engine's reference
  ``NVFP4QuantizerRef._apply_rht``: bfloat16 inputs and matrix, the product ``x_mat @ transform`` in bfloat16,
  here with binary32 accumulation in order and one rounding of each sum to bfloat16; an input that is not a
  bfloat16 number is an error).

Every role uses the same NVFP4 variant (``division``, ``levels``, ``global_scale``, ``zero_scale``; default
torchao's); the inputs are binary32 bit patterns, R x C, C a multiple of 16 for the rotated roles.

Spec op ``nvfp4_recipe(role=R,...)`` (``role`` has no default: every id names its role), e.g.
``nvfp4_recipe(role=weight)`` or ``nvfp4_recipe(role=wgrad_gradient,sr=c,k=4)``.  The NVFP4 parameters are those
of ``nvfp4_quantize`` with its defaults; ``sr`` and ``k`` (gradient roles only) default to the recipe's
``te_e2m1_8`` with 8 bits and are omitted from ids at those values.  :func:`spec_kwargs` turns a spec into the
keyword arguments of :func:`quantize_role` (and of :func:`refarith.fast.nvfp4_recipe.quantize_role`).
"""

from __future__ import annotations

import functools

from refarith.errors import BadValueError, RefarithError, SpecError, UnknownModeError
from refarith.exact import nvfp4 as nv
from refarith.exact import rotation as rot
from refarith.spec import OpSchema, Param, Spec, register_op

ROLES = ("weight", "activation", "gradient", "wgrad_activation", "wgrad_gradient")
RHT = {"n": 16, "signs": "te_wgrad", "order": "sequential", "acc": "binary32", "norm": "matrix"}
RHT_FORMATS = ("binary32", "bfloat16")
SR_DEFAULT = ("te_e2m1_8", 8)


def role_params(role: str, has_rand: bool) -> tuple[str, bool, bool]:
    """(tile, stochastic, rotated) of a role; UnknownModeError for an unknown role, or random bits given to a
    rounding-to-nearest role or missing for a gradient role."""
    if role not in ROLES:
        raise UnknownModeError(f"unknown NVFP4 recipe role {role!r}; expected one of {', '.join(ROLES)}")
    sr = role.endswith("gradient")
    if sr != has_rand:
        raise UnknownModeError(f"NVFP4 recipe role {role!r} " + ("needs rand (stochastic rounding)" if sr else
                                                                   "rounds to nearest even and takes no rand"))
    return ("16x16" if role == "weight" else "1x16", sr, role.startswith("wgrad"))


def rotate_rows(matrix: list[list[int]], rht: str = "binary32") -> list[list[int]]:
    """The recipe's random Hadamard transform (:data:`RHT`) of every run of 16 along each row, in format ``rht``
    (binary32 bit patterns in and out; ``bfloat16``: every input must be a bfloat16 number)."""
    if rht not in RHT_FORMATS:
        raise UnknownModeError(f"unknown rht format {rht!r}; expected one of {', '.join(RHT_FORMATS)}")
    if any(len(r) % 16 for r in matrix):
        raise BadValueError("the NVFP4 recipe's Hadamard transform needs rows that tile into runs of 16")
    if rht == "bfloat16":
        for r in matrix:
            for c in r:
                if c & 0xFFFF:
                    raise BadValueError(f"rht=bfloat16 takes bfloat16 inputs; 0x{c:08x} is not a bfloat16 number")
    return [list(_rotate_row(tuple(r), rht)) for r in matrix]


@functools.lru_cache(maxsize=8192)
def _rotate_row(row: tuple[int, ...], rht: str = "binary32") -> tuple[int, ...]:
    """One row's transform, remembered: ``identify`` quantizes the same rotated rows under every NVFP4 variant."""
    if rht == "bfloat16":
        out = rot.rotate_float([c >> 16 for c in row], "bfloat16", RHT["n"], RHT["signs"], 0, RHT["order"],
                               RHT["acc"], RHT["norm"])
        return tuple(c << 16 for c in out)
    return tuple(rot.rotate_float(list(row), "binary32", RHT["n"], RHT["signs"], 0, RHT["order"], RHT["acc"],
                                  RHT["norm"]))


def quantize_role(matrix: list[list[int]], role: str, rand: list[list[int]] | None = None,
                  rand_bits: int = SR_DEFAULT[1], sr_variant: str = SR_DEFAULT[0], rht: str = "binary32",
                  **nvfp4_kw) -> nv.NVFP4Blocks:
    """Quantize an R x C matrix of binary32 bit patterns as the recipe does for ``role``; ``rand`` (gradient roles
    only): R x C random integers; ``rht``: the rotated roles' transform format.  Blocks in row-major block order,
    as :func:`refarith.exact.nvfp4.tiles`."""
    tile, sr, rotated = role_params(role, rand is not None)
    if rht != "binary32" and not rotated:
        raise UnknownModeError(f"rht={rht} applies to the rotated roles only, not {role}")
    if rotated:
        matrix = rotate_rows(matrix, rht)
    blocks = nv.tiles(matrix, tile)
    if not sr:
        return nv.quantize_blocks(blocks, **nvfp4_kw)
    return nv.quantize_blocks(blocks, rounding="sr", rand=nv.tiles(rand, tile), rand_bits=rand_bits,
                              sr_variant=sr_variant, **nvfp4_kw)


# ------------------------------------------------------------------ the spec op
def spec_kwargs(spec: Spec) -> dict:
    """Keyword arguments of :func:`quantize_role` for an ``nvfp4_recipe`` spec (role, the NVFP4 variant, and for
    the gradient roles ``rand_bits`` and ``sr_variant``); ``rand`` is the caller's."""
    p = spec.param
    kw: dict = dict(role=p["role"], division=p["division"], levels=int(p["levels"]), zero_scale=p["zero_scale"],
                    global_scale=p.get("global_scale", "decode"))
    if p["role"].endswith("gradient"):
        kw.update(sr_variant=p.get("sr", SR_DEFAULT[0]), rand_bits=int(p.get("k", SR_DEFAULT[1])))
    if "rht" in p:
        kw["rht"] = p["rht"]
    return kw


def is_stochastic(spec: Spec) -> bool:
    """True for the gradient roles (one random integer per element)."""
    return spec.param["role"].endswith("gradient")


def _normalize_sr(v: str) -> str | None:
    from refarith.exact.stochastic import canonical_variant

    try:
        c = canonical_variant(v)
    except RefarithError as e:
        raise SpecError(str(e)) from None
    return None if c == SR_DEFAULT[0] else c


def _validate(spec: Spec) -> None:
    from refarith.exact.stochastic import check_variant

    p = spec.param
    if "role" not in p:
        raise SpecError(f"{spec}: nvfp4_recipe needs role=<{'|'.join(ROLES)}>")
    if "rht" in p and not p["role"].startswith("wgrad"):
        raise SpecError(f"{spec}: rht applies to the rotated roles wgrad_activation and wgrad_gradient only")
    if p.get("global_scale") == "reciprocal" and p["levels"] != "2":
        raise SpecError(f"{spec}: global_scale=reciprocal needs levels=2 (one level has no global scale)")
    if not is_stochastic(spec):
        if "sr" in p or "k" in p:
            raise SpecError(f"{spec}: {'sr' if 'sr' in p else 'k'} applies to the gradient roles only (role "
                            f"{p['role']} rounds to nearest even)")
        return
    if "k" in p and (not p["k"].isdigit() or int(p["k"]) < 1):
        raise SpecError(f"{spec}: k must be a positive integer")
    try:
        check_variant(p.get("sr", SR_DEFAULT[0]), int(p.get("k", SR_DEFAULT[1])), "ocp_e2m1")
    except RefarithError as e:
        raise SpecError(f"{spec}: {e}") from None


register_op(OpSchema(
    "nvfp4_recipe", 0,
    (
        Param("role", lambda f: None, ROLES, "the GEMM operand: weight (16x16 tiles), activation (1x16), gradient "
              "(1x16, stochastic), wgrad_activation / wgrad_gradient (16-point random Hadamard transform, then 1x16; "
              "the gradient one stochastic); required"),
        Param("division", "reciprocal", nv.DIVISIONS, "as nvfp4_quantize: x * fl(1/S) (torchao) or x / S"),
        Param("levels", "2", nv.LEVELS, "as nvfp4_quantize: 2 (binary32 tensor scale and UE4M3 block scales) or 1"),
        Param("global_scale", lambda f: None, nv.GLOBAL_SCALES, "as nvfp4_quantize: decode (default) or reciprocal",
              normalize=lambda v: None if v == "decode" else v),
        Param("zero_scale", "eps", nv.ZERO_SCALES, "as nvfp4_quantize: eps, zero or eighth"),
        Param("sr", lambda f: None, None, "gradient roles: the stochastic rounding variant (absent: te_e2m1_8, "
              "Transformer Engine's)", normalize=_normalize_sr),
        Param("k", lambda f: None, None, "gradient roles: random bits per element (absent: 8)",
              normalize=lambda v: None if v == str(SR_DEFAULT[1]) else v),
        Param("rht", lambda f: None, RHT_FORMATS, "rotated roles: the transform's format, binary32 (absent) or "
              "bfloat16 (Transformer Engine's; bfloat16 inputs)", normalize=lambda v: None if v == "binary32" else v),
    ),
    "the NVFP4 training recipe (arXiv 2509.25149 §4): the NVFP4 quantization of one GEMM operand role",
    _validate,
))
