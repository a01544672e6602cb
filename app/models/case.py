"""Case management: cases, notes, applications, referrals, follow-ups, grievances (issue: case management)."""
