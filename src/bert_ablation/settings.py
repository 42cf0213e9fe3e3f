"""Settings, typed: a pretraining run's (the model's shape, the masking mix, the optimisation and the
spec that holds them) and a task's, as frozen dataclasses with one documented field per config key.

``plan.resolve_ablation`` stacks the config's layers into the run's spec as a plain JSON document
(the one its hash, its params and its checkpoint's ``ablation.json`` are made of); ``AblationSpec``
is that document typed, built once where a job or a report starts to act on it
(``AblationSpec.from_dict``), and written back unchanged (``to_dict``), so hashes and caches do not
move. Each field's meaning and default live in config.schema.yaml (``definitions.model``,
``masking``, ``pretrain``); ``tests/test_settings.py`` holds the fields to the schema's keys.
Torch-free: planning the DAG imports it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .schema import schema_defaults


@dataclass(frozen=True)
class ModelShape:
    """The encoder: its family and its shape (schema ``definitions.model``)."""
    architecture: str  # facts.architectures: bert (learned absolute positions) or roformer (rotary)
    layers: int  # #L
    hidden: int  # #H, divisible by heads
    heads: int  # #A
    intermediate: int  # feed-forward width (4H in the paper)
    dropout: float  # on hidden states and attention probabilities
    max_position_embeddings: int  # the longest sequence the model will ever see

    @classmethod
    def of(cls, model: ModelShape | dict) -> ModelShape:
        """A shape, or its JSON document (a spec's ``model``, as ablation.json stores it) typed; a
        key the document leaves out (a test's, a benchmark's) takes the schema's default."""
        return model if isinstance(model, cls) else cls(**{**schema_defaults("model"), **model})


@dataclass(frozen=True)
class Masking:
    """The masked-LM corruption (schema ``definitions.masking``): of the ``probability`` share of
    tokens selected, ``mask`` become [MASK], ``same`` stay and ``random`` become a random piece."""
    probability: float
    mask: float
    same: float
    random: float
    max_predictions: int | None  # per sequence; None = no cap


@dataclass(frozen=True)
class PretrainSettings:
    """One run's optimisation and its execution (schema ``definitions.pretrain``, less ``seeds``:
    how many runs there are is the plan's business, not a run's)."""
    steps: int  # optimizer steps; 0 = the initialised model is saved as it is
    batch_size: int  # sequences per step
    lr: float  # peak rate: linear warmup, then linear decay to 0
    warmup_steps: int
    weight_decay: float  # decoupled, not on biases and LayerNorm
    adam_betas: tuple[float, float]
    adam_eps: float
    grad_clip: float  # global gradient norm; 0 disables
    seed: int  # init, data order and masks, unless one of the three below sets its own
    init_seed: int | None
    data_seed: int | None
    mask_seed: int | None
    adam_bias_correction: bool  # False: google-research/bert's optimizer
    save_steps: tuple[int, ...]  # intermediate checkpoints step-<k>
    short_seq_steps: int  # the first steps train on short_seq_length instances (0 = one phase)
    short_seq_length: int
    eval_batches: int  # held-out batches of the perplexity
    precision: str  # auto, fp32, bf16 or fp16
    group_by_length: bool  # batches of similar length, trimmed to their longest row
    # Execution only (plan.EXECUTION_KEYS, LATER_EXECUTION_KEYS): how the run is carried out, not what it computes.
    state_every: int
    accumulation_steps: int
    log_every: int
    tensorboard: bool
    compile: bool
    health: str  # warn or fail: what the job does with a run that did not learn

    @classmethod
    def from_dict(cls, train: dict) -> PretrainSettings:
        """From a ``pretrain:`` document, or a part of one (tests, benchmarks): a key left out
        takes the schema's default; ``seeds`` is the plan's and is dropped."""
        document = {**schema_defaults("pretrain"), **train}
        document.pop("seeds", None)
        return cls._of_document(document)

    @classmethod
    def _of_document(cls, train: dict) -> PretrainSettings:
        return cls(**{k: tuple(v) if k in _LISTS else v for k, v in train.items()})

    def seeds(self) -> dict[str, int]:
        """The three seeds of the run: ``seed`` unless init_seed, data_seed or mask_seed sets one
        apart, so that one source of randomness can vary while the other two hold."""
        return {f"{name}_seed": self.seed if getattr(self, f"{name}_seed") is None else getattr(self, f"{name}_seed")
                for name in ("init", "data", "mask")}


# The JSON document's lists that the dataclasses hold as tuples (frozen, hashable).
_LISTS = {"adam_betas", "save_steps"}


@dataclass(frozen=True)
class AblationSpec:
    """One pretraining run, complete and self-contained: downstream jobs rebuild the model from it."""
    name: str  # the ablation, or one of its seed runs ("bert_base.seed2")
    objective: str  # facts.objectives: mlm_nsp, mlm or ltr
    packing: str  # nsp_pairs or contiguous
    model: ModelShape
    masking: Masking
    pretrain: PretrainSettings

    @classmethod
    def from_dict(cls, spec: dict) -> AblationSpec:
        """The typed spec of ``plan.resolve_ablation``'s document; an unknown or missing key is a
        TypeError naming it (the document comes from the validated config, so it means a bug)."""
        # no defaults filled in here: a resolved spec has every key, and one that lacks a key is a bug
        return cls(name=spec["name"], objective=spec["objective"], packing=spec["packing"],
                   model=ModelShape(**spec["model"]), masking=Masking(**spec["masking"]),
                   pretrain=PretrainSettings._of_document(spec["pretrain"]))

    def to_dict(self) -> dict:
        """The JSON document it was built from (lists as lists), key for key."""
        document = dataclasses.asdict(self)
        document["pretrain"] = {k: list(v) if k in _LISTS else v for k, v in document["pretrain"].items()}
        return document


# A task entry's keys that say where its data comes from and how much of it: they shape the task's
# data (the tasks rule's params), not how it is featurised and scored, so TaskSettings leaves them out.
TASK_DATA_KEYS = ("grid", "n_train", "n_dev", "hub", "source", "path", "files", "max_train_examples",
                  "max_eval_examples")


@dataclass(frozen=True)
class TaskSettings:
    """How a task's examples become windows and predictions become answers (schema
    ``definitions.task`` less TASK_DATA_KEYS): what featurising (data.features) and scoring
    (evaluation.scoring) read."""
    max_seq_length: int  # longest input in tokens (SQuAD: the window)
    doc_stride: int  # SQuAD: the windows' overlap or step, as doc_stride_meaning says
    doc_stride_meaning: str  # overlap (HF's stride) or step (run_squad.py's)
    max_query_length: int  # SQuAD: question tokens kept
    max_answer_length: int  # SQuAD: longest answer in tokens
    n_best: int  # SQuAD: start/end candidates per window
    max_context: bool  # SQuAD: an answer starts only where its token has the most context
    document_context: bool  # NER: each sentence read with its document's words around it

    @classmethod
    def from_dict(cls, task: dict) -> TaskSettings:
        """From a task's config entry (or a part of one: a key left out takes the schema's default,
        the one place defaults live); its data keys are ignored."""
        defaults = {k: v for k, v in schema_defaults("task").items() if k not in TASK_DATA_KEYS}
        return cls(**{**defaults, **{k: v for k, v in task.items() if k not in TASK_DATA_KEYS}})
