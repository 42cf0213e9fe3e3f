import pytest
import torch

from bert_ablation.training.batching import epoch_batch_matrix, epoch_batches


def padding(batches, lengths):
    return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)


def test_grouped_epoch_visits_every_example_once_with_less_padding():
    lengths = torch.randint(5, 128, (1000,), generator=torch.Generator().manual_seed(0)).tolist()
    plain = epoch_batches(lengths, 16, torch.Generator().manual_seed(1), group_by_length=False)
    grouped = epoch_batches(lengths, 16, torch.Generator().manual_seed(1), group_by_length=True)
    for batches in (plain, grouped):
        assert sorted(i for b in batches for i in b) == list(range(1000))
    assert padding(grouped, lengths) < 0.2 * padding(plain, lengths)
    # same seed, same batches; another seed, another order
    assert grouped == epoch_batches(lengths, 16, torch.Generator().manual_seed(1), group_by_length=True)
    assert grouped != epoch_batches(lengths, 16, torch.Generator().manual_seed(2), group_by_length=True)
    # batch order is shuffled: not sorted by length across the epoch
    longest = [max(lengths[i] for i in b) for b in grouped]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


def test_drop_last_keeps_only_full_batches():
    batches = epoch_batches(list(range(100)), 16, torch.Generator().manual_seed(0), True, drop_last=True)
    assert len(batches) == 6 and all(len(b) == 16 for b in batches)
    assert len({i for b in batches for i in b}) == 96


@pytest.mark.parametrize("n, batch_size, group", [(1000, 8, True), (1000, 8, False), (37, 4, True), (5, 8, True),
                                                  (51_207, 1, True)])  # the last: more than 1024 megabatches
def test_the_batch_matrix_is_the_batch_list_of_the_same_generator(n, batch_size, group):
    lengths = torch.randint(1, 100, (n,), generator=torch.Generator().manual_seed(n), dtype=torch.int32)
    listed = epoch_batches(lengths, batch_size, torch.Generator().manual_seed(3), group, drop_last=True)
    matrix = epoch_batch_matrix(lengths, batch_size, torch.Generator().manual_seed(3), group)
    assert matrix.dtype == torch.int32 and matrix.shape == (n // batch_size, batch_size)
    assert matrix.tolist() == listed



def test_length_grouping_gives_world_fine_tuning_batches_one_sentence_form_so_fine_tuning_does_not_group():
    """Why finetune.group_by_length is off: 1,000 examples fit in one megabatch, so grouped batches
    each hold one length, which in the world's SST-2 means one sentence form (plain, negated or
    contrasted), and the forms pull an adjective's weight in opposite directions from batch to
    batch; from random init SST-2 then stays at chance (docs/recipe.md)."""
    from collections import Counter

    from bert_ablation.config import schema
    from bert_ablation.data.world import World

    train = World(seed=0).task("sst2", n_train=1000, n_dev=10)["train"]
    lengths = [len(record["sentence"].split()) for record in train]
    forms = [" but " in r["sentence"] and "contrast" or " not " in r["sentence"] and "negated" or "plain" for r in train]

    def one_form(batches):  # mean share of a batch's most common form
        return sum(max(Counter(forms[i] for i in b).values()) / len(b) for b in batches) / len(batches)

    grouped = one_form(epoch_batches(lengths, 16, torch.Generator().manual_seed(0), group_by_length=True))
    plain = one_form(epoch_batches(lengths, 16, torch.Generator().manual_seed(0), group_by_length=False))
    assert plain < 0.6 and grouped > 0.95, (plain, grouped)
    assert schema()["properties"]["finetune"]["properties"]["group_by_length"]["default"] is False
