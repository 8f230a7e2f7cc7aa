"""SHA-256 of the committed golden_vectors/MANIFEST.json.

Written by ``refarith golden generate`` whenever it writes that MANIFEST (do not edit by hand).
``refarith golden verify`` and ``refarith certify`` refuse a committed set whose MANIFEST has another
digest, so a golden file cannot be edited together with its MANIFEST entry without this package
changing too.
"""

MANIFEST_SHA256 = "7065aec4bdf46d671b683c92ee8082c6aae89a93e09821034289942a4de25833"
