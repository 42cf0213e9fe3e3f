"""Our models against the HF reference implementations on the same weights and batch."""
import torch
import torch.nn.functional as F
from transformers import AutoModel, BertForPreTraining, BertLMHeadModel

from bert_ablation.masking import Masker, MaskingProcedure
from bert_ablation.modeling import BertForAblationPretraining, FinetuneModel, bert_config
from bert_ablation.objectives import OBJECTIVES, next_token_labels

MODEL = {"layers": 2, "hidden": 32, "heads": 2, "intermediate": 64, "dropout": 0.1, "max_position_embeddings": 64}


def batch(tokenizer, with_pairs=True):
    a = ["the cat sat on the mat", "a big red car ran far away on the road"]
    b = ["the dog saw the child", "winter came"]
    enc = tokenizer(a, b if with_pairs else None, padding=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"],
            "attention_mask": enc["attention_mask"], "next_sentence_label": torch.tensor([0, 1])}


def model_for(tokenizer, causal, seed=0):
    torch.manual_seed(seed)
    return BertForAblationPretraining(bert_config(MODEL, len(tokenizer), tokenizer.pad_token_id, causal)).eval()


def test_mlm_nsp_loss_equals_bert_for_pretraining(tokenizer):
    ours = model_for(tokenizer, causal=False)
    reference = BertForPreTraining(ours.config).eval()
    reference.load_state_dict(ours.state_dict())
    masker = Masker.for_tokenizer(MaskingProcedure(), tokenizer)
    inputs = OBJECTIVES["mlm_nsp"].targets(batch(tokenizer), masker, torch.Generator().manual_seed(0))
    assert (inputs["labels"] != -100).any()
    ref = reference(**inputs)
    out = ours(**inputs)
    torch.testing.assert_close(out.loss, ref.loss)
    # gradients agree too: the masked-position gather changes the cost, not the function
    out.loss.backward()
    ref.loss.backward()
    for (name, p), (_, q) in zip(ours.named_parameters(), reference.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-6, rtol=1e-4, msg=name)


def test_ltr_loss_equals_hand_computed_next_token_loss_and_bert_lm_head(tokenizer):
    ours = model_for(tokenizer, causal=True)
    inputs = OBJECTIVES["ltr"].targets(batch(tokenizer, with_pairs=False), None, torch.Generator())
    assert "next_sentence_label" not in inputs
    loss = ours(**inputs).loss
    # by hand: full logits, position t predicts token t+1 among real tokens
    hidden = ours.bert(inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
    logits = ours.cls.predictions(hidden)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    terms = [F.cross_entropy(logits[b, t], ids[b, t + 1], reduction="sum")
             for b in range(ids.size(0)) for t in range(ids.size(1) - 1) if mask[b, t + 1]]
    torch.testing.assert_close(loss, torch.stack(terms).mean())
    # HF's causal head shifts internally, so it gets *unshifted* labels: one shift in total
    reference = BertLMHeadModel(ours.config).eval()
    missing = reference.load_state_dict(ours.state_dict(), strict=False)
    assert not missing.missing_keys
    hf_labels = ids.masked_fill(mask == 0, -100)
    torch.testing.assert_close(loss, reference(input_ids=ids, attention_mask=mask, labels=hf_labels).loss)


def test_causal_model_cannot_see_the_future(tokenizer):
    ours = model_for(tokenizer, causal=True)
    ids = batch(tokenizer, with_pairs=False)["input_ids"][:1]
    changed = ids.clone()
    changed[0, -2] = tokenizer.mask_token_id
    h1 = ours.bert(ids).last_hidden_state
    h2 = ours.bert(changed).last_hidden_state
    torch.testing.assert_close(h1[0, :-2], h2[0, :-2])
    assert not torch.allclose(h1[0, -2], h2[0, -2])


def test_next_token_labels_skip_padding():
    ids = torch.tensor([[2, 7, 8, 3, 0], [2, 9, 3, 0, 0]])
    mask = (ids != 0).long()
    assert next_token_labels(ids, mask).tolist() == [[7, 8, 3, -100, -100], [9, 3, -100, -100, -100]]


def test_checkpoint_round_trip_through_auto_model(tokenizer, tmp_path):
    ours = model_for(tokenizer, causal=False)
    ours.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert type(loaded).__name__ == "BertModel"
    for name, tensor in loaded.state_dict().items():
        torch.testing.assert_close(tensor, ours.state_dict()["bert." + name], msg=name)
    again = BertForAblationPretraining.from_pretrained(tmp_path)
    torch.testing.assert_close(again.cls.predictions.decoder.weight, ours.bert.embeddings.word_embeddings.weight)


def test_causal_classifier_reads_the_last_real_token(tokenizer):
    encoder = model_for(tokenizer, causal=True).bert
    model = FinetuneModel(encoder, "classification", 3, "linear", dropout=0.0).eval()
    inputs = batch(tokenizer)
    inputs.pop("next_sentence_label")
    logits = model(**inputs).logits
    # appending padding changes nothing; the prediction comes from the last non-pad token
    padded = {k: F.pad(v, (0, 3)) for k, v in inputs.items()}
    torch.testing.assert_close(model(**padded).logits, logits)
    bilstm = FinetuneModel(encoder, "classification", 3, "bilstm", dropout=0.0).eval()
    torch.testing.assert_close(bilstm(**padded).logits, bilstm(**inputs).logits)
    assert bilstm.output.in_features == 2 * encoder.config.hidden_size
