"""Campaign plans for `refarith sweep`: the registry-wide binary32 cast check and the 2^32-pair arithmetic.

    python benchmarks/plan_sweeps.py [--shard-bits 24] [--workers 2] [--json FILE]

(a) Every (target, setting) of the binary32 kernel theorems (refarith.smt.theorems.casts), as the spec
    ``cast(binary32->DST,rounding=..,overflow=..,nan=..,negative=..)``: whether the sharded sweep covers it
    (float targets of at most 8 bits and 6 mantissa bits: the sticky-key reference), its shard count, and the
    campaign's cost extrapolated from one shard of ``cast(binary32->ocp_e4m3)`` against ``refarith:numpy``
    timed here (CPU seconds, after a one-chunk warm-up).
(b) add/mul/div of bfloat16 and binary16 against torch's CPU kernels: one shard of each timed the same way.

The machine may be loaded; CPU seconds do not depend on that, wall-clock extrapolations assume the workers get a
core each.
"""

from __future__ import annotations

import argparse
import json
import os

from refarith.certify.engine import plan
from refarith.certify.runner import sweep_supported
from refarith.certify.shards import make_campaign
from refarith.errors import RefarithError
from refarith.smt.theorems.casts import kernel_theorems, targets
from refarith.spec import parse_spec


def _spec(dst: str, setting: tuple[str, str, str, str]) -> str:
    """The canonical spec id of a theorem setting (the nan/negative policies where the target's cast takes them)."""
    r, o, n, g = setting
    for extra in ((f"nan={n}", f"negative={g}"), (f"nan={n}",), (f"negative={g}",), ()):
        try:
            return str(parse_spec(f"cast(binary32->{dst},rounding={r},overflow={o}" + "".join("," + e for e in extra)
                                  + ")"))
        except RefarithError:
            continue
    raise RefarithError(f"no spec for binary32->{dst} {setting}")


def cast_units() -> list[str]:
    """Canonical spec ids of every binary32 kernel theorem setting (deduplicated, in registry order)."""
    out: list[str] = []
    for dst in targets("binary32"):
        for _, settings in kernel_theorems("binary32", dst):
            for st in settings:
                sid = _spec(dst, st)
                if sid not in out:
                    out.append(sid)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shard-bits", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    units = cast_units()
    covered = [u for u in units if sweep_supported(parse_spec(u)) is None]
    rep = plan(make_campaign("cast(binary32->ocp_e4m3)", "refarith:numpy", args.shard_bits), args.workers)
    per = rep["cpu_seconds_per_2^32"]
    n_shards = 1 << (32 - args.shard_bits)
    print(f"# (a) binary32 cast theorem settings: {len(units)}; covered by the sharded sweep: {len(covered)} "
          f"({len(units) - len(covered)} have 16-bit targets, covered by refarith.smt.castsweep instead)")
    print(f"shards per setting: {n_shards} of 2^{args.shard_bits}; measured: {rep['cpu_seconds_per_shard']} CPU s per "
          f"shard, {per} CPU s per 2^32 (cast(binary32->ocp_e4m3), refarith:numpy)")
    print(f"campaign (a): {len(covered)} x {n_shards} = {len(covered) * n_shards} shards, "
          f"{len(covered) * per / 3600:.1f} CPU h, {len(covered) * per / 3600 / args.workers:.1f} h on "
          f"{args.workers} workers")
    arith = {}
    for fmt in ("binary16", "bfloat16"):
        for op in ("add", "mul", "div"):
            r = plan(make_campaign(f"{op}({fmt})", f"refarith.certify.torch_ops:{op}_{fmt}", args.shard_bits),
                     args.workers)
            arith[f"{op}({fmt})"] = r
            print(f"(b) {op}({fmt}) vs torch CPU: {r['cpu_seconds_per_shard']} CPU s per shard, "
                  f"{r['cpu_seconds_per_2^32']} CPU s per 2^32 pairs, {r[f'wall_hours_on_{args.workers}_workers']} h "
                  f"on {args.workers} workers")
    if args.json:
        from refarith.golden.fileformat import write_atomic

        doc = {"cast_units": units, "covered": covered, "cast_plan": rep, "arith_plans": arith,
               "cpu_count": os.cpu_count()}
        write_atomic(args.json, json.dumps(doc, indent=1).encode() + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
