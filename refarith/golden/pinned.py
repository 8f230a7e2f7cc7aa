"""SHA-256 of the committed golden_vectors/MANIFEST.json.

Written by ``refarith golden generate`` whenever it writes that MANIFEST (do not edit by hand).
``refarith golden verify`` and ``refarith certify`` refuse a committed set whose MANIFEST has another
digest, so a golden file cannot be edited together with its MANIFEST entry without this package
changing too.
"""

MANIFEST_SHA256 = "ca684cbaa9f504697fc31ff38a9e1dbaa90f1197c8115b096506d0c75ab48f32"
