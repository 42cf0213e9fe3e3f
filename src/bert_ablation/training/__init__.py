"""Training: the one engine, batching, data parallelism, and the two loops (pretraining, fine-tuning)."""
