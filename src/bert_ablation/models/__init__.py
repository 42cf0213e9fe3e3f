"""The models: encoder families and pretraining heads, objectives, masking, fine-tuning heads, checkpoint import."""
