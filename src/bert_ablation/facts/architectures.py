"""Encoder families as facts: their names and what each is. ``config.schema.yaml``'s
``model.architecture`` enum lists the same names (tests/test_import_graph.py checks);
``models.modeling.ARCHITECTURES`` builds each family's models."""

from __future__ import annotations

ARCHITECTURES = {
    "bert": "BERT: post-LN, learned absolute positions (the paper's model)",
    "roformer": "RoFormer: BERT with rotary position embeddings",
}
