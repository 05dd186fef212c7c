"""Prefect tasks: one per DVC stage (run through ``dvc repro``), upload, and DVC pull/push.

Tasks are thin: DVC decides what is stale, the trainflow library does the work, and tasks add
retries, timeouts that stop whole process groups, and small summaries for the flow."""
