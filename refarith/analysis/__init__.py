"""Error analyses of approximate operators: each module exposes rows(quick) for `refarith report ops`."""
