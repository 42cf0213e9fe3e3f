"""The data stages: corpus, tokenizer, pretraining instances, and the fine-tuning tasks (registry, kinds, sources, the built-in world)."""
