"""Eligibility: screenings and their determinations (issue: one-call eligibility)."""
