"""SHA-256 of the committed golden_vectors/MANIFEST.json.

Written by ``refarith golden generate`` whenever it writes that MANIFEST (do not edit by hand).
``refarith golden verify`` and ``refarith certify`` refuse a committed set whose MANIFEST has another
digest, so a golden file cannot be edited together with its MANIFEST entry without this package
changing too.
"""

MANIFEST_SHA256 = "113de00f3fc041c08270b935a65483f93cbdf23523ba8ab0390fbef99e0dd574"
