"""IEEE P3109 projection cases taken from the interim report v4.0 (26 June 2026), with the expected code of each
worked out by hand from the clause cited (page numbers of that PDF).  Shared by tests/test_p3109.py and the
findings table docs/p3109_findings.md."""

from __future__ import annotations

# (case id, clause and page, format, value, rounding, saturation, expected code)
# rounding: rne NearestTiesToEven, rna NearestTiesToAway, rtz TowardZero, rup TowardPositive, rdn TowardNegative,
# rto ToOdd.  Binary8p4se: bias 8, M_hi = 224 (0x7E), next grid point 240, +inf 0x7F, NaN 0x80, -inf 0xFF,
# smallest subnormal 2^-10.  Binary8p4sf: M_hi = 240 (0x7F).  Binary8p4ue: bias 16, M_hi = 53248 (0xFD), next grid
# points 57344 and 61440, +inf 0xFE, NaN 0xFF, smallest subnormal 2^-18.  Binary8p4uf: M_hi = 57344 (0xFE).
CASES: list[tuple[str, str, str, str, str, str, int]] = [
    # §3.1 (p. 9): 2.0 in Binary8p4se is 0x48, its +inf 0x7F; §4.7.6 (p. 23): Encode(X < 0) = Encode(-X) + 2^(K-1)
    ("two", "§3.1 p.9", "binary8p4se", "2", "rne", "satnone", 0x48),
    ("minus-two", "§4.7.6 p.23", "binary8p4se", "-2", "rne", "satnone", 0xC8),
    ("zero", "§4.7.6 p.23", "binary8p4se", "0", "rne", "satnone", 0x00),
    ("minus-zero", "§3.1 p.9 (no -0)", "binary8p4se", "-0", "rne", "satnone", 0x00),
    # §4.7.3 (p. 19): NaN projects to NaN, encoded 2^(K-1) signed / 2^K - 1 unsigned (§4.7.6 p. 23)
    ("nan-signed", "§4.7.3 p.19", "binary8p4se", "nan", "rne", "satfinite", 0x80),
    ("nan-unsigned", "§4.7.3 p.19", "binary8p4ue", "nan", "rtz", "satnone", 0xFF),
    # §4.7.3 NOTE 1 (p. 19): values between M_hi and half an ulp above it project to M_hi under rounding to nearest
    ("mid-above-max", "§4.7.3 NOTE 1 p.19", "binary8p4se", "232", "rne", "satnone", 0x7E),
    ("just-above-mid", "§4.7.3 NOTE 1 p.19", "binary8p4se", "233", "rne", "satnone", 0x7F),
    ("just-above-mid-rna", "§4.7.4 p.20", "binary8p4se", "232", "rna", "satnone", 0x7F),
    # §4.7.3 NOTE 2 (p. 19): subnormals as IEEE 754 under NearestTiesToEven
    ("half-min-sub", "§4.7.3 NOTE 2 p.19", "binary8p4se", "1/2048", "rne", "satnone", 0x00),
    ("above-half-min-sub", "§4.7.3 NOTE 2 p.19", "binary8p4se", "1025/2097152", "rne", "satnone", 0x01),
    ("minus-half-min-sub", "§4.7.3 NOTE 2 p.19", "binary8p4se", "-1/2048", "rne", "satnone", 0x00),
    ("three-quarter-sub", "§4.7.4 p.20", "binary8p4se", "3/4096", "rne", "satnone", 0x01),
    # §4.7.4 (p. 20): ToOdd rounds away when inexact and the truncated code is even
    ("odd-inexact", "§4.7.4 p.20", "binary8p4se", "2.1", "rto", "satnone", 0x49),
    ("odd-exact", "§4.7.4 p.20", "binary8p4se", "2", "rto", "satnone", 0x48),
    ("odd-stays", "§4.7.4 p.20", "binary8p4se", "2.3", "rto", "satnone", 0x49),
    # §4.7.4 (p. 20): P = 1, CodeIsEven = (floor S = 0) or IsEven(Q + B); Binary8p1se: bias 64, 2 = 0x41, 4 = 0x42
    ("p1-tie-up", "§4.7.4 p.20", "binary8p1se", "3", "rne", "satnone", 0x42),
    ("p1-tie-down", "§4.7.4 p.20", "binary8p1se", "6", "rne", "satnone", 0x42),
    ("p1-tie-zero", "§4.7.4 p.20", "binary8p1se", "1/18446744073709551616", "rne", "satnone", 0x00),
    ("p1-odd", "§4.7.4 p.20", "binary8p1se", "5", "rto", "satnone", 0x43),  # 4 = 0x42 even: away, to 8
    # §4.7.5 (p. 22), SatNone, signed extended: +inf, -inf kept; beyond M_hi by direction
    ("sn-inf", "§4.7.5 p.22", "binary8p4se", "inf", "rne", "satnone", 0x7F),
    ("sn-ninf", "§4.7.5 p.22", "binary8p4se", "-inf", "rne", "satnone", 0xFF),
    ("sn-over-rtz", "§4.7.5 p.22", "binary8p4se", "1000", "rtz", "satnone", 0x7E),
    ("sn-over-rdn", "§4.7.5 p.22", "binary8p4se", "1000", "rdn", "satnone", 0x7E),
    ("sn-over-rup", "§4.7.5 p.22", "binary8p4se", "1000", "rup", "satnone", 0x7F),
    ("sn-under-rup", "§4.7.5 p.22", "binary8p4se", "-1000", "rup", "satnone", 0xFE),
    ("sn-under-rtz", "§4.7.5 p.22", "binary8p4se", "-1000", "rtz", "satnone", 0xFE),
    ("sn-under-rdn", "§4.7.5 p.22", "binary8p4se", "-1000", "rdn", "satnone", 0xFF),
    ("sn-under-rne", "§4.7.5 p.22", "binary8p4se", "-1000", "rne", "satnone", 0xFF),
    ("sn-over-rto", "§4.7.5 p.22", "binary8p4se", "225", "rto", "satnone", 0x7F),
    ("sn-under-rto", "§4.7.5 p.22", "binary8p4se", "-225", "rto", "satnone", 0xFF),
    # SatNone, signed finite: everything beyond the range is M_hi / M_lo, +inf too
    ("snf-over", "§4.7.5 p.22", "binary8p4sf", "1000000", "rne", "satnone", 0x7F),
    ("snf-mid", "§4.7.5 p.22", "binary8p4sf", "248", "rne", "satnone", 0x7F),
    ("snf-under", "§4.7.5 p.22", "binary8p4sf", "-1000000", "rne", "satnone", 0xFF),
    ("snf-inf", "§4.7.5 p.22", "binary8p4sf", "inf", "rne", "satnone", 0x7F),
    ("snf-ninf", "§4.7.5 p.22", "binary8p4sf", "-inf", "rne", "satnone", 0xFF),
    ("snf-over-rto", "§4.7.5 p.22", "binary8p4sf", "241", "rto", "satnone", 0x7F),
    # SatNone, unsigned extended: ToOdd beyond M_hi gives M_hi; below M_lo = 0 NaN except rtz/rup
    ("snu-over-rne", "§4.7.5 p.22", "binary8p4ue", "60000", "rne", "satnone", 0xFE),
    ("snu-over-rto", "§4.7.5 p.22", "binary8p4ue", "57345", "rto", "satnone", 0xFD),
    ("snu-max-rto", "§4.7.5 p.22", "binary8p4ue", "53249", "rto", "satnone", 0xFD),
    ("snu-inf", "§4.7.5 p.22", "binary8p4ue", "inf", "rne", "satnone", 0xFE),
    ("snu-ninf", "§4.7.5 p.22", "binary8p4ue", "-inf", "rne", "satnone", 0xFF),
    ("snu-ninf-rtz", "§4.7.5 p.22 (the -inf rule precedes the directed ones)", "binary8p4ue", "-inf", "rtz",
     "satnone", 0xFF),
    ("snu-ninf-rup", "§4.7.5 p.22 (the -inf rule precedes the directed ones)", "binary8p4ue", "-inf", "rup",
     "satnone", 0xFF),
    ("snu-neg-rne", "§4.7.5 p.22", "binary8p4ue", "-1", "rne", "satnone", 0xFF),
    ("snu-neg-rtz", "§4.7.5 p.22", "binary8p4ue", "-1", "rtz", "satnone", 0x00),
    ("snu-neg-rup", "§4.7.5 p.22", "binary8p4ue", "-1", "rup", "satnone", 0x00),
    ("snu-neg-rdn", "§4.7.5 p.22", "binary8p4ue", "-1", "rdn", "satnone", 0xFF),
    ("snu-neg-tiny", "§4.7.4-4.7.5 pp.20-22", "binary8p4ue", "-1/1073741824", "rne", "satnone", 0x00),
    ("snu-neg-sub", "§4.7.4-4.7.5 pp.20-22", "binary8p4ue", "-3/1048576", "rne", "satnone", 0xFF),
    ("snu-neg-tiny-rdn", "§4.7.4-4.7.5 pp.20-22", "binary8p4ue", "-1/1073741824", "rdn", "satnone", 0xFF),
    # SatNone, unsigned finite
    ("snuf-over", "§4.7.5 p.22", "binary8p4uf", "1000000", "rne", "satnone", 0xFE),
    ("snuf-inf", "§4.7.5 p.22", "binary8p4uf", "inf", "rne", "satnone", 0xFE),
    ("snuf-ninf", "§4.7.5 p.22", "binary8p4uf", "-inf", "rne", "satnone", 0xFF),
    ("snuf-neg", "§4.7.5 p.22", "binary8p4uf", "-1", "rna", "satnone", 0xFF),
    # SatFinite: clamp everything, infinities included
    ("sf-inf", "§4.7.5 p.22", "binary8p4se", "inf", "rne", "satfinite", 0x7E),
    ("sf-ninf", "§4.7.5 p.22", "binary8p4se", "-inf", "rne", "satfinite", 0xFE),
    ("sf-over", "§4.7.5 p.22", "binary8p4se", "1000", "rup", "satfinite", 0x7E),
    ("sf-over-rto", "§4.7.5 p.22", "binary8p4se", "225", "rto", "satfinite", 0x7E),
    ("sf-u-ninf", "§4.7.5 p.22", "binary8p4ue", "-inf", "rne", "satfinite", 0x00),
    ("sf-u-neg", "§4.7.5 p.22", "binary8p4ue", "-1", "rdn", "satfinite", 0x00),
    ("sf-u-inf", "§4.7.5 p.22", "binary8p4ue", "inf", "rne", "satfinite", 0xFD),
    # SatPropagate: finite values clamped, infinities kept where the format has them
    ("sp-inf", "§4.7.5 p.22", "binary8p4se", "inf", "rne", "satpropagate", 0x7F),
    ("sp-ninf", "§4.7.5 p.22", "binary8p4se", "-inf", "rne", "satpropagate", 0xFF),
    ("sp-over", "§4.7.5 p.22", "binary8p4se", "1000", "rne", "satpropagate", 0x7E),
    ("sp-under", "§4.7.5 p.22", "binary8p4se", "-1000", "rne", "satpropagate", 0xFE),
    ("sp-f-inf", "§4.7.5 p.22", "binary8p4sf", "inf", "rne", "satpropagate", 0x7F),
    ("sp-u-inf", "§4.7.5 p.22", "binary8p4ue", "inf", "rne", "satpropagate", 0xFE),
    ("sp-u-ninf", "§4.7.5 p.22", "binary8p4ue", "-inf", "rne", "satpropagate", 0x00),
    ("sp-u-neg", "§4.7.5 p.22", "binary8p4ue", "-1", "rne", "satpropagate", 0x00),
    # unsigned P = K (§3.1 p.9: 0 < P <= K unsigned): Binary8p8ue, bias 1, 1.0 = 0x80, M_hi = 1 + 125/128 (0xFD)
    ("pk-one", "§3.1 p.9, §4.7.6 p.23", "binary8p8ue", "1", "rne", "satnone", 0x80),
    ("pk-half", "§3.1 p.9, §4.7.6 p.23", "binary8p8ue", "1/2", "rne", "satnone", 0x40),
    ("pk-over", "§4.7.5 p.22", "binary8p8ue", "2", "rne", "satnone", 0xFE),
    ("pk-over-sf", "§4.7.5 p.22", "binary8p8ue", "2", "rne", "satfinite", 0xFD),
    # K = 3 (§3.1: K > 2): Binary3p2se: 0.5 = 0x1, 1.0 = 0x2 (M_hi), +inf 0x3; Binary3p2sf: 1.5 = 0x3 (M_hi)
    ("k3-tie", "§4.7.4 p.20", "binary3p2se", "5/4", "rne", "satnone", 0x2),
    ("k3-over", "§4.7.5 p.22", "binary3p2se", "13/10", "rne", "satnone", 0x3),
    ("k3f-over", "§4.7.5 p.22", "binary3p2sf", "10", "rne", "satnone", 0x3),
    ("k3f-ninf", "§4.7.5 p.22", "binary3p2sf", "-inf", "rne", "satnone", 0x7),
]
