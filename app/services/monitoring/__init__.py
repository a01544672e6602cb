"""Central monitoring, by job: `rollups` (what each event counts and the tables it is counted into),
`ingest` (the offices' events stored once and counted in the same transaction) and `indicators` (the
catalogue, its queries over the rollups and small-cell suppression). See docs/monitoring.md."""
