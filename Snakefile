# bert-ablation: the BERT paper's ablations, from raw corpus to paper-style tables.
#   snakemake --cores 2            # every table and figure the config defines, plus the claims
#   snakemake --cores 2 table6     # one table (or figure5, claims, loss_curves)
#   snakemake --cores 1 estimate   # tokens, FLOPs, GPU-hours and disk of the configuration
from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/tokenizer.smk"
include: "rules/instances.smk"
include: "rules/pretrain.smk"
include: "rules/checkpoints.smk"
include: "rules/tasks.smk"
include: "rules/finetune.smk"
include: "rules/tables.smk"
include: "rules/estimate.smk"
include: "rules/rehearsal.smk"


rule all:
    input:
        all_outputs(),
    default_target: True
