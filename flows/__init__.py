"""Prefect flows: ``training_pipeline`` (the DVC pipeline stage by stage, then upload) and
``retrain`` (pull, pipeline, accept if not worse, push and upload). Deployments are in
prefect.yaml; ``python -m flows.serve`` serves the nightly retrain without a worker."""
