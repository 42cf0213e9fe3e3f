"""What each fine-tuning head is, without torch: whether it freezes the encoder and which of
its layers it reads. Config validation and the DAG plan need these facts at every `snakemake`
start; ``heads.py`` builds the modules from the same entries."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HeadKind:
    name: str
    frozen: bool  # feature-based: the encoder is frozen and its hidden states are read
    layers: tuple[int, ...] = ()  # hidden_states indices a feature head combines (() = every layer)
    mode: str = ""  # how a feature head combines them: select | weighted | concat

    def min_layers(self) -> int:
        """Transformer layers the encoder needs, so that e.g. "last four" are four real layers."""
        return max([1, *map(abs, self.layers)])


HEAD_KINDS: dict[str, HeadKind] = {k.name: k for k in (
    HeadKind("linear", frozen=False),
    HeadKind("bilstm", frozen=False),
    # Table 7's six layer combinations, in the paper's order.
    HeadKind("features_embeddings", True, (0,), "select"),
    HeadKind("features_second_to_last", True, (-2,), "select"),
    HeadKind("features_last", True, (-1,), "select"),
    HeadKind("features_sum_last_four", True, (-4, -3, -2, -1), "weighted"),
    HeadKind("features_concat_last_four", True, (-4, -3, -2, -1), "concat"),
    HeadKind("features_sum_all", True, (), "weighted"),
)}
