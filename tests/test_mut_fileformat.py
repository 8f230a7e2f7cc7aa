"""The golden file format (refarith.golden.fileformat) against its written definition.

Every expected text, array and message is written out from the format's description (the module docstring):
a header of ``# key: value`` lines, one vector per line with fixed-width lower-case hex columns, ``!`` where the
spec raises, gzip with mtime 0, no file name and level 9.  Small hand-made files only; no kernel runs.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib

import numpy as np
import pytest

from refarith.errors import GoldenFileError, OutputError
from refarith.formats import get_format
from refarith.golden import fileformat as ff
from refarith.spec import parse_spec

ADD = "add(ocp_e2m1,rounding=rne,overflow=saturate,nan=error)"
MX = "mx_quantize(ocp_e2m1,block=4,scale=floor,rounding=rne)"
CAST3 = "cast(binary32->binary3p1se,rounding=rne,overflow=satnone)"

FORMAT_LINES = ("# format: one vector per line: the input columns, ':', the output columns; lower-case hex, "
                "fixed width\n"
                "# format: '!' in place of the output columns: the spec raises (input outside its domain)\n")


def _head(spec: str, inputs: str, outputs: str, count: int, rule: str = "exhaustive", generator: str = "2") -> str:
    return (f"# refarith golden vectors\n# spec: {spec}\n# generator: {generator}\n# rule: {rule}\n"
            f"# inputs: {inputs}\n# outputs: {outputs}\n# count: {count}\n" + FORMAT_LINES)


MX_BODY = ("3f800000 00000000 bf000000 40c00000 : 7f 1 0 9 6\n"
           "00000001 7f800000 ffffffff 80000000 : !\n"
           "c0400000 3e800000 00000000 41000000 : 81 f e 2 a\n")
MX_TEXT = _head(MX, "x:binary32*4", "scale:e8m0 elements:ocp_e2m1*4", 3, rule="boundary") + MX_BODY


def _msg(text: str, path: str = "f.txt") -> str:
    with pytest.raises(GoldenFileError) as e:
        ff.parse(path, text)
    return str(e.value)


# --- widths, hashing, compression ------------------------------------------------------------------------

def test_hexwidth_is_ceil_of_bits_over_4():
    assert [ff.hexwidth(n) for n in range(1, 18)] == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5]
    assert ff.hexwidth(32) == 8 and ff.hexwidth(64) == 16


def test_sha256_is_hex_digest():
    assert ff.sha256(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_compress_fixed_header_and_level_9_deflate():
    text = MX_TEXT.encode() * 50
    data = ff.compress(text)
    # RFC 1952 member header: magic, CM=8 (deflate), FLG=0 (no FNAME), MTIME=0, XFL=2 (maximum compression)
    assert data[:9] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02"
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    assert data[10:-8] == c.compress(text) + c.flush()
    assert data[-8:] == zlib.crc32(text).to_bytes(4, "little") + len(text).to_bytes(4, "little")
    assert gzip.decompress(data) == text


def test_decompress_round_trip_and_errors():
    assert ff.decompress("p", ff.compress(b"abc\n")) == "abc\n"
    with pytest.raises(GoldenFileError, match=r"^p: not a valid gzip file \("):
        ff.decompress("p", b"plain text")
    with pytest.raises(GoldenFileError, match=r"^p: not a valid gzip file \("):
        ff.decompress("p", ff.compress(b"abcdef" * 100)[:-12])
    with pytest.raises(GoldenFileError, match=r"^p: contains non-ASCII bytes$"):
        ff.decompress("p", ff.compress("µ\n".encode()))


# --- render --------------------------------------------------------------------------------------------------

def test_render_exact_text():
    spec = parse_spec(MX)
    b32, e8m0, e2m1 = get_format("binary32"), get_format("e8m0"), get_format("ocp_e2m1")
    inputs = [(0x3F800000, 0, 0xBF000000, 0x40C00000), (1, 0x7F800000, 0xFFFFFFFF, 0x80000000),
              (0xC0400000, 0x3E800000, 0, 0x41000000)]
    outputs = [(0x7F, 1, 0, 9, 6), None, (0x81, 15, 14, 2, 10)]
    got = ff.render(spec, "boundary", "x:binary32*4", "scale:e8m0 elements:ocp_e2m1*4", (b32,) * 4,
                    (e8m0,) + (e2m1,) * 4, inputs, outputs)
    assert got == MX_TEXT.encode("ascii")


def test_render_pads_every_column_to_its_format_width():
    spec = parse_spec(ADD)
    e2m1 = get_format("ocp_e2m1")
    got = ff.render(spec, "r", "a:ocp_e2m1 b:ocp_e2m1", "y:ocp_e2m1", (e2m1, e2m1), (e2m1,), [(0, 15)], [(3,)])
    assert got.decode().split("\n")[-2:] == ["0 f : 3", ""]
    b16 = get_format("binary16")
    got = ff.render(spec, "r", "i", "o", (b16,), (b16, e2m1), [(0x1F,)], [(2, 0)])
    assert got.decode().split("\n")[-2] == "001f : 0002 0"


# --- parse: a valid file -------------------------------------------------------------------------------------

def _check_mx(g: ff.GoldenFile) -> None:
    assert g.path == "f.txt"
    assert str(g.spec) == MX
    assert g.header == {"spec": MX, "generator": "2", "rule": "boundary", "inputs": "x:binary32*4",
                        "outputs": "scale:e8m0 elements:ocp_e2m1*4", "count": "3"}
    assert g.first_line == 10 and g.count == 3
    assert len(g.inputs) == 4
    cols = [[0x3F800000, 1, 0xC0400000], [0, 0x7F800000, 0x3E800000], [0xBF000000, 0xFFFFFFFF, 0],
            [0x40C00000, 0x80000000, 0x41000000]]
    for k in range(4):
        assert g.inputs[k].dtype == np.uint64 and g.inputs[k].tolist() == cols[k]
    assert g.outputs.dtype == np.uint64 and g.outputs.shape == (3, 5)
    assert g.outputs.tolist() == [[0x7F, 1, 0, 9, 6], [0, 0, 0, 0, 0], [0x81, 15, 14, 2, 10]]
    assert g.raises.dtype == bool and g.raises.tolist() == [False, True, False]


def test_parse_multi_column_file():
    _check_mx(ff.parse("f.txt", MX_TEXT))


def test_line_by_line_parser_gives_the_same_file(monkeypatch):
    """The line-by-line reader (the one that names defects) parses a valid file to the same arrays."""
    monkeypatch.setattr(ff, "_parse_body", lambda *a: None)
    _check_mx(ff.parse("f.txt", MX_TEXT))


def test_parse_body_direct():
    ins, outs, raised = ff._parse_body(["0 f : 3", "a 1 : !"], [1, 1], [1], [16, 16], [16])
    assert ins.tolist() == [[0, 15], [10, 1]] and outs.tolist() == [[3], [0]] and raised.tolist() == [False, True]
    ins, outs, raised = ff._parse_body([], [1], [2], [16], [256])
    assert ins.shape == (0, 1) and outs.shape == (0, 1) and raised.shape == (0,)
    assert ff._parse_body(["0 : 3"], [], [1], [], [16]) is None
    assert ff._parse_body(["0 : 3"], [1], [], [16], []) is None
    for bad in (["0 : 30"], ["0 : G"], ["0 :  3"], ["0 3"], ["00 : 3"], ["0 : 3 "]):
        assert ff._parse_body(bad, [1], [1], [16], [16]) is None, bad
    # a code at its format's code count is refused (the caller then names it), one below is accepted
    assert ff._parse_body(["0 : 8"], [1], [1], [16], [8]) is None
    assert ff._parse_body(["8 : 0"], [1], [1], [8], [16]) is None
    assert ff._parse_body(["7 : 7"], [1], [1], [8], [8])[1].tolist() == [[7]]
    assert ff._parse_body(["ffffffffffffffff : 0"], [16], [1], [1 << 64], [16])[0].tolist() == [[2**64 - 1]]


def test_empty_body_and_header_lines():
    g = ff.parse("e", _head(ADD, "a:ocp_e2m1 b:ocp_e2m1", "y:ocp_e2m1", 0))
    assert g.count == 0 and g.first_line == 10 and len(g.inputs) == 2 and g.outputs.shape == (0, 1)
    assert ff.header_lines(MX_TEXT) == 9
    assert ff.header_lines("a\n#b") == 0
    assert ff.header_lines("#a\n#b") == 2


def test_unknown_header_keys_are_kept_and_format_lines_dropped():
    text = MX_TEXT.replace("# count: 3\n", "# count: 3\n# note: anything\n")
    g = ff.parse("f.txt", text)
    assert g.header["note"] == "anything" and "format" not in g.header and g.first_line == 11


# --- parse: every defect named --------------------------------------------------------------------------------

def test_header_defects():
    assert _msg("") == "f.txt:1: missing header line '# refarith golden vectors'"
    assert _msg("# refarith golden vector\n") == "f.txt:1: missing header line '# refarith golden vectors'"
    assert _msg(MX_TEXT[:-1]) == "f.txt:12: truncated (no final newline)"
    assert (_msg(MX_TEXT.replace("# rule: boundary", "#rule: boundary"))
            == "f.txt:4: malformed header line '#rule: boundary'")
    assert (_msg(MX_TEXT.replace("# rule: boundary", "# Rule: boundary"))
            == "f.txt:4: malformed header line '# Rule: boundary'")
    for key in ("spec", "generator", "rule", "inputs", "outputs", "count"):
        lines = [s for s in MX_TEXT.split("\n") if not s.startswith(f"# {key}: ")]
        assert _msg("\n".join(lines)) == f"f.txt: header lacks '# {key}:'", key
    assert (_msg(MX_TEXT.replace("# generator: 2", "# generator: 1"))
            == "f.txt: generator version '1', this reader knows '2'")
    assert _msg(MX_TEXT.replace("# count: 3", "# count: three")) == "f.txt: count 'three' is not an integer"
    assert (_msg(MX_TEXT.replace("# count: 3", "# count: 4"))
            == "f.txt: header says 4 vectors, file has 3 (truncated or padded)")
    assert (_msg(MX_TEXT + "3f800000 00000000 bf000000 40c00000 : 7f 1 0 9 6\n")
            == "f.txt: header says 3 vectors, file has 4 (truncated or padded)")


def test_spec_defects():
    m = _msg(MX_TEXT.replace(f"# spec: {MX}", "# spec: frobnicate(ocp_e2m1)"))
    assert m.startswith("f.txt: header names a spec refarith cannot use: ") and "frobnicate" in m
    text = _head("add(ocp_e2m1)", "a:ocp_e2m1 b:ocp_e2m1", "y:ocp_e2m1", 0)
    assert _msg(text) == f"f.txt: header spec 'add(ocp_e2m1)' is not canonical (expected {ADD})"
    expected = (f"f.txt: header operands do not match the spec {MX} (expected inputs 'x:binary32*4', "
                "outputs 'scale:e8m0 elements:ocp_e2m1*4')")
    assert _msg(MX_TEXT.replace("# inputs: x:binary32*4", "# inputs: x:binary32*5")) == expected
    assert _msg(MX_TEXT.replace("# outputs: scale:e8m0", "# outputs: s:e8m0")) == expected


def _mx_line(line: str) -> str:
    return _head(MX, "x:binary32*4", "scale:e8m0 elements:ocp_e2m1*4", 2, rule="boundary") + \
        "3f800000 00000000 bf000000 40c00000 : 7f 1 0 9 6\n" + line + "\n"


def test_vector_line_defects_name_line_and_column():
    shape = "expected 4 input columns, ':', 5 output columns"
    for line in ("3f800000 00000000 bf000000 40c00000 : 7f 1 0 9",
                 "3f800000 00000000 bf000000 40c00000 7f 1 0 9 6 6",
                 "3f800000 00000000 bf000000 : 7f 1 0 9 6 6",
                 "3f800000 00000000 bf000000 40c00000 : ! 1",
                 "3f800000 00000000 bf000000 40c00000  : 7f 1 0 9 6"):
        assert _msg(_mx_line(line)) == f"f.txt:11: malformed vector line {line!r}: {shape}", line
    long = "0" * 100
    assert _msg(_mx_line(long)) == f"f.txt:11: malformed vector line {long[:80]!r}: {shape}"
    cases = [
        ("3f80000 00000000 bf000000 40c00000 : 7f 1 0 9 6", "input column 1 is '3f80000' (expected 8 "
         "lower-case hex digits of binary32)"),
        ("3f800000 00000000 bf000000 40C00000 : 7f 1 0 9 6", "input column 4 is '40C00000' (expected 8 "
         "lower-case hex digits of binary32)"),
        ("3f800000 00000000 bf000000 40c00000 : 7 1 0 9 6", "output column 1 is '7' (expected 2 lower-case hex "
         "digits of e8m0)"),
        ("3f800000 00000000 bf000000 40c00000 : 7f 1 0 9 g", "output column 5 is 'g' (expected 1 lower-case hex "
         "digits of ocp_e2m1)"),
        ("3f800000 00000000 bf000000 40c00000 : 7f 1 0 09 6", "output column 4 is '09' (expected 1 lower-case "
         "hex digits of ocp_e2m1)"),
    ]
    for line, what in cases:
        assert _msg(_mx_line(line)) == f"f.txt:11: malformed vector line: {what}", line
    # a raising line is exactly the input columns, ':', '!'
    g = ff.parse("f.txt", _mx_line("00000000 00000000 00000000 00000000 : !"))
    assert g.raises.tolist() == [False, True] and g.outputs[1].tolist() == [0] * 5


def test_code_beyond_the_format_is_named():
    head = _head(CAST3, "x:binary32", "y:binary3p1se", 2)
    assert ff.parse("c", head + "00000000 : 7\n3f800000 : 0\n").outputs.tolist() == [[7], [0]]
    assert _msg(head + "00000000 : 7\n3f800000 : 8\n", "c") == "c:11: code 8 does not fit binary3p1se"
    m = _msg(head + "00000000 : 7\n3f800000 : 8\n".replace(": 8", ": 9"), "c")
    assert m == "c:11: code 9 does not fit binary3p1se"


# --- files on disk -------------------------------------------------------------------------------------------

def test_load_checks_hash_before_parsing(tmp_path):
    p = tmp_path / "g.txt.gz"
    data = ff.compress(MX_TEXT.encode())
    p.write_bytes(data)
    g = ff.load(p, hashlib.sha256(data).hexdigest())
    assert g.path == str(p) and g.outputs.tolist()[2] == [0x81, 15, 14, 2, 10]
    assert ff.load(str(p)).count == 3
    with pytest.raises(GoldenFileError) as e:
        ff.load(p, "0" * 64)
    assert str(e.value) == f"{p}: SHA-256 does not match the manifest"
    p.write_bytes(b"not gzip")  # the hash is checked first: a matching hash of a bad file reaches the gzip check
    with pytest.raises(GoldenFileError, match="not a valid gzip file"):
        ff.load(p, hashlib.sha256(b"not gzip").hexdigest())
    with pytest.raises(GoldenFileError) as e:
        ff.load(tmp_path / "missing.gz")
    assert str(e.value) == f"{tmp_path / 'missing.gz'}: cannot read (No such file or directory)"


def _leftovers(d) -> list[str]:
    return sorted(n for n in os.listdir(d) if n.endswith(".tmp"))


def test_write_atomic_creates_parents_mode_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "a" / "b" / "f.gz"
    ff.write_atomic(str(p), b"one")
    assert p.read_bytes() == b"one" and (p.stat().st_mode & 0o777) == 0o644
    ff.write_atomic(p, b"two")
    assert p.read_bytes() == b"two" and _leftovers(p.parent) == []


def test_stage_file_names_and_commit(tmp_path):
    p = tmp_path / "f.gz"
    t = ff.stage_file(p, b"x")
    assert t.parent == tmp_path and t.name.startswith(".f.gz.") and t.name.endswith(".tmp")
    assert t.read_bytes() == b"x" and not p.exists()
    ff.commit_files([(t, p)])
    assert p.read_bytes() == b"x" and not t.exists()


def test_unwritable_target_is_one_line_and_leaves_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(OutputError) as e:
        ff.write_atomic(blocker / "f.gz", b"x")
    assert str(e.value).startswith(f"{blocker / 'f.gz'}: cannot write (") and str(e.value).endswith(
        "); nothing written")
    assert os.listdir(tmp_path) == ["file"]


def test_write_all_atomic_is_all_or_nothing(tmp_path):
    a = tmp_path / "a.gz"
    a.write_bytes(b"old")
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(OutputError):
        ff.write_all_atomic([(a, b"new"), (blocker / "b.gz", b"x")])
    assert a.read_bytes() == b"old" and _leftovers(tmp_path) == []
    ff.write_all_atomic([(a, b"new"), (tmp_path / "c.gz", b"c")])
    assert a.read_bytes() == b"new" and (tmp_path / "c.gz").read_bytes() == b"c" and _leftovers(tmp_path) == []


def test_commit_files_failure_removes_the_remaining_temporaries(tmp_path):
    t1, t2, t3 = (ff.stage_file(tmp_path / n, n.encode()) for n in ("x", "y", "z"))
    target_dir = tmp_path / "d"
    target_dir.mkdir()
    (target_dir / "inner").write_bytes(b"")  # os.replace of a file onto a non-empty directory fails
    with pytest.raises(OutputError) as e:
        ff.commit_files([(t1, tmp_path / "x"), (t2, target_dir), (t3, tmp_path / "z")])
    assert str(e.value).startswith(f"{target_dir}: cannot write (")
    assert (tmp_path / "x").read_bytes() == b"x" and not (tmp_path / "z").exists()
    assert not t2.exists() and not t3.exists() and _leftovers(tmp_path) == []


def test_discard_skips_none_and_missing(tmp_path):
    t = tmp_path / "t"
    t.write_bytes(b"")
    ff.discard([None, str(tmp_path / "never"), str(t)])
    assert not t.exists()


def test_cannot_write_message_without_strerror():
    from pathlib import Path

    assert str(ff._cannot_write(Path("d/f.gz"), OSError())) == "d/f.gz: cannot write (OSError); nothing written"
    e = PermissionError(13, "Permission denied")
    assert str(ff._cannot_write(Path("f"), e)) == "f: cannot write (Permission denied); nothing written"
