"""Evaluation: metrics, tables and figures, the paper's reference numbers, claims, fine-tuning curves."""
