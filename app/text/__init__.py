"""Script-aware text handling (Khmer normalisation, romanisation and search keys)."""
