import torch

from bert_ablation.models.masking import IGNORE_INDEX, Masker, MaskingProcedure
from bert_ablation.schema import schema_defaults

SPECIALS = [0, 1, 2, 3, 4]  # pad, unk, cls, sep, mask
MASK_ID = 4


def masked_sample(procedure, n=400, t=256, vocab=1000, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (n, t), generator=g)
    ids[:, 0], ids[:, -1], ids[:, -20:-1] = 2, 3, 0  # [CLS] ... [PAD]s [SEP]
    masker = Masker(procedure, vocab, SPECIALS, MASK_ID)
    corrupted, labels = masker(ids, torch.Generator().manual_seed(seed + 1))
    return ids, corrupted, labels


def test_selection_rate_and_mix_match_the_procedure():
    ids, corrupted, labels = masked_sample(MaskingProcedure(0.15, 0.8, 0.1, 0.1))
    candidates = ~torch.isin(ids, torch.tensor(SPECIALS))
    selected = labels != IGNORE_INDEX
    assert abs(selected.sum() / candidates.sum() - 0.15) < 0.005
    assert torch.equal(labels[selected], ids[selected])  # labels are the original tokens
    to_mask = (corrupted == MASK_ID) & selected
    same = (corrupted == ids) & selected
    changed = selected & ~to_mask & ~same
    n = selected.sum().item()
    assert abs(to_mask.sum().item() / n - 0.8) < 0.01
    # a random draw can hit the original token: SAME gets 10% + 10%/|V| of the selected
    assert abs(same.sum().item() / n - 0.1) < 0.01
    assert abs(changed.sum().item() / n - 0.1) < 0.01
    assert torch.equal(corrupted[~selected], ids[~selected])  # nothing else changes


def test_specials_are_never_selected_and_never_drawn_as_replacements():
    ids, corrupted, labels = masked_sample(MaskingProcedure(0.5, 0.0, 0.0, 1.0))
    special = torch.isin(ids, torch.tensor(SPECIALS))
    assert (labels[special] == IGNORE_INDEX).all()
    assert torch.equal(corrupted[special], ids[special])
    selected = labels != IGNORE_INDEX
    assert not torch.isin(corrupted[selected], torch.tensor(SPECIALS)).any()


def test_all_mask_and_all_same_extremes():
    ids, corrupted, labels = masked_sample(MaskingProcedure(0.15, 1.0, 0.0, 0.0))
    selected = labels != IGNORE_INDEX
    assert (corrupted[selected] == MASK_ID).all()
    ids, corrupted, labels = masked_sample(MaskingProcedure(0.15, 0.0, 1.0, 0.0))
    assert torch.equal(corrupted, ids)


def test_masks_are_a_function_of_the_seed():
    a = masked_sample(MaskingProcedure.from_config(schema_defaults("masking")), seed=3)
    b = masked_sample(MaskingProcedure.from_config(schema_defaults("masking")), seed=3)
    c = masked_sample(MaskingProcedure.from_config(schema_defaults("masking")), seed=4)
    assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
    assert not torch.equal(a[2], c[2])


def test_max_predictions_caps_each_row_and_leaves_short_rows_alone():
    ids, _, capped = masked_sample(MaskingProcedure(0.15, 0.8, 0.1, 0.1, max_predictions=20))
    _, _, free = masked_sample(MaskingProcedure(0.15, 0.8, 0.1, 0.1))
    per_row = (capped != IGNORE_INDEX).sum(1)
    assert per_row.max() == 20 < (free != IGNORE_INDEX).sum(1).max()  # ~35 expected of 236 candidates
    # a row under the cap keeps exactly the uncapped selection: the cap only drops
    under = (free != IGNORE_INDEX).sum(1) <= 20
    assert torch.equal(capped[under], free[under])
    assert ((capped != IGNORE_INDEX) <= (free != IGNORE_INDEX)).all()


def test_static_masks_select_once_and_apply_each_runs_mix():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (300, 64), generator=g)
    ids[:, 0], ids[:, -1] = 2, 3
    select = Masker(MaskingProcedure(0.15, 0.8, 0.1, 0.1, max_predictions=12), 1000, SPECIALS, MASK_ID)
    positions, fates, random_ids = select.static_draws(ids, torch.Generator().manual_seed(1), 12)
    assert positions.shape == fates.shape == random_ids.shape == (300, 12)
    used = positions >= 0
    assert (used.sum(1) <= 12).all() and abs(used.sum() / (300 * 62) - 0.15) < 0.02
    assert not torch.isin(random_ids, torch.tensor(SPECIALS)).any()
    stored_positions = set()
    for mix in ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.8, 0.1, 0.1)):
        run = Masker(MaskingProcedure(0.15, *mix), 1000, SPECIALS, MASK_ID)
        corrupted, labels = run.apply_static(ids, positions, fates, random_ids)
        selected = labels != IGNORE_INDEX
        stored_positions.add(tuple(selected.nonzero().flatten().tolist()))
        assert selected.sum() == used.sum() and torch.equal(labels[selected], ids[selected])
        share_masked = ((corrupted == MASK_ID) & selected).sum().item() / selected.sum().item()
        assert abs(share_masked - mix[0]) < 0.03
        assert torch.equal(corrupted[~selected], ids[~selected])
    assert len(stored_positions) == 1  # every mix predicts the same stored positions


def test_the_schema_default_is_the_papers_procedure_and_the_only_default():
    import dataclasses

    # Section 3.1: 15% of the tokens, of which 80% [MASK], 10% unchanged, 10% random.
    assert MaskingProcedure.from_config(schema_defaults("masking")) == MaskingProcedure(0.15, 0.8, 0.1, 0.1)
    mix = [f.name for f in dataclasses.fields(MaskingProcedure) if f.default is dataclasses.MISSING]
    assert mix == ["probability", "mask", "same", "random"]


def test_prediction_slots_hold_the_batchs_labels_in_order_in_a_rounded_up_width():
    from bert_ablation.models.masking import IGNORE_INDEX, prediction_slots

    labels = torch.full((3, 12), IGNORE_INDEX)
    labels[0, [2, 5, 9]] = torch.tensor([7, 8, 9])
    labels[1, 0:6] = torch.arange(6) + 20  # 9 labels in all: 16 slots
    positions, targets = prediction_slots(labels)
    assert positions.shape == targets.shape == (16,)
    assert positions[:9].tolist() == [2, 5, 9, 12, 13, 14, 15, 16, 17]  # row-major into the (B * T) batch
    assert targets[:9].tolist() == [7, 8, 9, 20, 21, 22, 23, 24, 25]
    assert (targets[9:] == IGNORE_INDEX).all() and (positions[9:] == 0).all()  # spare slots: a real position
    # the slots hold exactly the labelled (position, label) pairs
    rebuilt = torch.full((36,), IGNORE_INDEX)
    used = targets != IGNORE_INDEX
    rebuilt[positions[used]] = targets[used]
    assert torch.equal(rebuilt.view(3, 12), labels)
    assert prediction_slots(torch.full((2, 5), IGNORE_INDEX))[0].shape == (8,)  # no labels: still slots
