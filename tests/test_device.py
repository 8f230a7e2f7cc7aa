"""--device for certify and identify: user kernels receive torch tensors on the device and must answer there;
refarith's torch and Triton backends and torch's own casts run there; a device that is not there is exit 2."""

from __future__ import annotations

import sys
import textwrap

import pytest

torch = pytest.importorskip("torch", reason="torch not installed: device kernels take torch tensors")

from refarith.certify.runner import certify  # noqa: E402
from refarith.cli import main  # noqa: E402
from refarith.errors import BadValueError, KernelError  # noqa: E402

SPEC = "cast(binary32->ocp_e4m3,overflow=saturate)"


@pytest.fixture
def kernels(tmp_path, monkeypatch):
    (tmp_path / "devkern.py").write_text(textwrap.dedent('''
        import torch

        seen = []

        def good(x):
            seen.append((type(x).__name__, str(x.device), str(x.dtype)))
            return x.to(torch.float8_e4m3fn).view(torch.uint8)

        def saturating(x):
            return torch.clamp(x, -448.0, 448.0).to(torch.float8_e4m3fn).view(torch.uint8)

        def wrong_device(x):
            return x.to(torch.float8_e4m3fn).view(torch.uint8).to("meta")

        def numpy_out(x):
            return x.to(torch.float8_e4m3fn).view(torch.uint8).numpy()

        def codes_in(x):
            seen.append(str(x.dtype))
            return (x & 0).to(torch.uint8)
        codes_in.refarith_inputs = "codes"
    '''))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("devkern", None)
    import devkern
    return devkern


def test_user_kernel_gets_tensors_on_the_device(kernels):
    c = certify("devkern:saturating", SPEC, device="cpu")
    assert c.passed, c.totals()
    certify("devkern:good", SPEC, device="cpu")
    assert kernels.seen and all(s == ("Tensor", "cpu", "torch.float32") for s in kernels.seen)
    assert "on cpu" in c.kernel_version


def test_codes_kernels_get_int64_tensors(kernels):
    certify("devkern:codes_in", "cast(ocp_e4m3->ocp_e2m1,nan=zero)", device="cpu")
    assert kernels.seen == ["torch.int64"]


def test_numpy_stays_the_default(kernels):
    with pytest.raises(KernelError):  # good() calls Tensor methods: with numpy inputs it fails, named
        certify("devkern:good", SPEC)


@pytest.mark.parametrize("fn,msg", [("wrong_device", "on meta, expected cpu"),
                                    ("numpy_out", "returned ndarray as result 0, expected a torch tensor")])
def test_results_off_the_device_are_errors(kernels, fn, msg, capsys):
    assert main(["certify", f"devkern:{fn}", "--spec", SPEC, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1


def test_cli_end_to_end_on_cpu(kernels, capsys):
    assert main(["certify", "devkern:saturating", "--spec", SPEC, "--device", "cpu"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["identify", "devkern:saturating", "--spec", "cast(binary32->ocp_e4m3)", "--device", "cpu"]) == 0
    assert "overflow=saturate" in capsys.readouterr().out


@pytest.mark.parametrize("dev,msg", [("cuda", "no CUDA device"), ("cuda:7", "CUDA"), ("tpu", "must be cpu, cuda"),
                                     ("meta", "must be cpu, cuda")])
def test_unusable_devices_exit_2(dev, msg, capsys):
    if dev.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["certify", "torch:float8_e4m3fn", "--spec", "cast(binary32->ocp_e4m3)", "--device", dev]) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1
    with pytest.raises(BadValueError):
        certify("torch:float8_e4m3fn", "cast(binary32->ocp_e4m3)", device=dev)


def test_builtin_peers_and_backends_on_the_device():
    c = certify("torch:float8_e4m3fn", "cast(binary32->ocp_e4m3)", device="cpu")
    assert "on cpu" in c.kernel_version
    assert certify("refarith:torch", "cast(bfloat16->ocp_e5m2)", device="cpu").passed
    ml = pytest.importorskip("ml_dtypes", reason="ml_dtypes not installed")
    del ml
    c = certify("ml_dtypes:float8_e4m3fn", "cast(binary32->ocp_e4m3)", device="cpu")
    assert c.passed


def test_refarith_triton_certifies():
    pytest.importorskip("triton", reason="triton not installed")
    assert certify("refarith:triton", "cast(binary32->ocp_e4m3)", fuzz=100).passed
    assert certify("refarith:triton", "cast(binary16->e8m0,negative=clamp)", device="cpu").passed
