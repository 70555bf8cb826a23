"""Near-duplicate detection with three experts (MinHash-LSH, SimHash, cosine) combined by voting.

Layout: ``shingles.py`` (text → 64-bit shingle hashes), ``expert.py`` (the interface every expert implements),
``minhash.py``, ``simhash.py``, ``lsh.py`` (band/row choice and candidate pairs from band keys),
``voting.py`` (all / any / majority / expressions), ``clusters.py`` (union-find).
"""
