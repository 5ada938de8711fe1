"""Live status over websockets (docs/live-status.md): the message protocol, the per-process
broadcaster fed by batches.changes, the batch consumer and its route."""
