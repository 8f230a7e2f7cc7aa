"""Certification: adapters for third-party kernels, the differential runner, identify, and reports."""

from refarith.certify.adapters import Kernel, load_kernel, user_kernel
from refarith.certify.identify import VariantScore, identify
from refarith.certify.report import html_page, markdown, write_reports
from refarith.certify.runner import Certificate, Stage, certify

__all__ = ["Certificate", "Kernel", "Stage", "VariantScore", "certify", "html_page", "identify", "load_kernel",
           "markdown", "user_kernel", "write_reports"]
