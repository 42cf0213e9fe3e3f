"""bert-ablation: reproduce the ablation studies of the BERT paper (Devlin et al., 2019).

The package holds all logic; the Snakemake workflow only wires its stages together:
corpus -> tokenizer -> instances -> pretrain -> finetune -> tables.
"""

__version__ = "0.1.0"
