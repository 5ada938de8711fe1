"""The scientist's pages: their batches, one batch live, and a submission form."""
