"""SHA-256 of the committed golden_vectors/MANIFEST.json.

Written by ``refarith golden generate`` whenever it writes that MANIFEST (do not edit by hand).
``refarith golden verify`` and ``refarith certify`` refuse a committed set whose MANIFEST has another
digest, so a golden file cannot be edited together with its MANIFEST entry without this package
changing too.
"""

MANIFEST_SHA256 = "c52661a099fd4ddbd35915ff6baf8a7ec69761f387b9c87f67876a3a4c3228c2"
