# bert-ablation: the BERT paper's ablations, from raw corpus to paper-style tables.
#   snakemake --cores 2            # every table the config enables (default: Table 5)
#   snakemake --cores 2 table5     # one table
from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config.yaml")


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/tokenizer.smk"
include: "rules/instances.smk"
include: "rules/pretrain.smk"
include: "rules/tasks.smk"
include: "rules/finetune.smk"
include: "rules/tables.smk"


rule all:
    input:
        all_table_outputs(),
    default_target: True
