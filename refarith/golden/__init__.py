"""Golden vectors: deterministic, language-neutral files computed from the exact model, with a MANIFEST."""

from refarith.golden.drivers import CLASSES, Driver, drivers, get_driver, register_driver
from refarith.golden.fileformat import GoldenFile, load
from refarith.golden.generate import committed_specs, default_dir, file_name, find_file, generate, verify

__all__ = ["CLASSES", "Driver", "GoldenFile", "committed_specs", "default_dir", "drivers", "file_name", "find_file",
           "generate", "get_driver", "load", "register_driver", "verify"]
