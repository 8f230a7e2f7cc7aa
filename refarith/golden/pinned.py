"""SHA-256 of the committed golden_vectors/MANIFEST.json.

Written by ``refarith golden generate`` whenever it writes that MANIFEST (do not edit by hand).
``refarith golden verify`` and ``refarith certify`` refuse a committed set whose MANIFEST has another
digest, so a golden file cannot be edited together with its MANIFEST entry without this package
changing too.
"""

MANIFEST_SHA256 = "069b625d79b74887c1a24b1833959184d83de9144eebb8065739f4dd9afcecf7"
