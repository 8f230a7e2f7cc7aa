"""Peer implementations of the quantization recipes as certification targets (``package.module:function``).

* ``refarith.certify.recipe_peers:torchao_blockwise_act``: torchao's CPU reference of 1x128 activation-tile FP8
  quantization, ``torchao.prototype.blockwise_fp8_training.kernels.torch_blockwise_scale_act_quant_lhs`` (written
  for torchao 0.18): one vector is one 1x128 tile; returns torchao's dequantization scale (1 / s) and its
  float8_e4m3fn codes.  Spec: ``fp8_block_quantize(ocp_e4m3,tile=1x128,division=scale,eps=torchao)``.

A torchao version the adapter was not written for is a KernelError (one line, exit 2), never a silent run.
"""

from __future__ import annotations

import numpy as np

from refarith.errors import KernelError

TORCHAO_VERSIONS = ("0.18",)
"""torchao release series whose blockwise reference this adapter follows."""


def _torchao_kernels():
    try:
        import logging
        import warnings

        logging.disable(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torchao
            from torchao.prototype.blockwise_fp8_training import kernels
    except Exception as e:  # noqa: BLE001 - any import failure of the peer is reported as one line
        raise KernelError(f"torchao blockwise FP8 reference is not importable: {type(e).__name__}: {e}") from None
    finally:
        logging.disable(logging.NOTSET)
    v = getattr(torchao, "__version__", "?")
    if not any(v == s or v.startswith(s + ".") for s in TORCHAO_VERSIONS):
        raise KernelError(f"torchao {v}: the blockwise adapter was written for torchao {', '.join(TORCHAO_VERSIONS)}")
    return kernels, v


def torchao_blockwise_act(x: np.ndarray):
    """(n, 128) binary32 tiles -> (dequantization scales (n,) binary32, codes (n, 128) uint8)."""
    import torch

    kernels, _ = _torchao_kernels()
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    q, s = kernels.torch_blockwise_scale_act_quant_lhs(t, 128)
    return s.reshape(-1).numpy().astype(np.float32), q.view(torch.uint8).numpy()


def torchao_version() -> str:
    """The installed torchao version (KernelError when it is not one the adapters were written for)."""
    return _torchao_kernels()[1]
