"""Central monitoring: ingested events, rollups, office sync state (issue: decentralised offices)."""
