"""The DCI (Digital Convergence Initiative, spdci/standards v1.0.0) registry APIs.

Guichet speaks them both ways: as a Social Registry (with IBR's `enrolled` check) for partner
clients, and as a client of external registries. This package holds what is about the standard
itself: the envelope and its codes (envelope.py), the signing profile (signing.py), queries compiled
to SQL (query.py) and the records (records.py). The models are written by hand, not generated: the
spec's schemas have defects (docs/dci.md) and what we accept is more lenient than what we send."""
