"""Our models against the HF reference implementations on the same weights and batch."""
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, BertForPreTraining, BertLMHeadModel

from bert_ablation.models.masking import Masker, MaskingProcedure
from bert_ablation.models.modeling import BertForAblationPretraining, FinetuneModel, bert_config
from bert_ablation.models.objectives import OBJECTIVES, next_token_labels
from bert_ablation.schema import schema_defaults

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
    masker = Masker.for_tokenizer(MaskingProcedure.from_config(schema_defaults("masking")), tokenizer)
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


# --- every encoder family (model.architecture) -----------------------------------------------

from transformers import RoFormerForCausalLM, RoFormerForMaskedLM  # noqa: E402

from bert_ablation.models.modeling import ARCHITECTURES, load_encoder, pretraining_model  # noqa: E402

ROFORMER = {**MODEL, "architecture": "roformer"}


def roformer_for(tokenizer, causal, seed=0):
    torch.manual_seed(seed)
    return pretraining_model(ROFORMER, len(tokenizer), tokenizer.pad_token_id, causal).eval()


def test_roformer_mlm_loss_and_gradients_equal_roformer_for_masked_lm(tokenizer):
    ours = roformer_for(tokenizer, causal=False)
    reference = RoFormerForMaskedLM(ours.config).eval()
    result = reference.load_state_dict(ours.state_dict(), strict=False)
    assert not result.missing_keys  # ours = HF's MLM model + the NSP pooler and classifier
    assert sorted({k.split(".")[0] for k in result.unexpected_keys}) == ["pooler", "seq_relationship"]
    masker = Masker.for_tokenizer(MaskingProcedure.from_config(schema_defaults("masking")), tokenizer)
    inputs = OBJECTIVES["mlm"].targets(batch(tokenizer), masker, torch.Generator().manual_seed(0))
    ref = reference(**inputs)
    out = ours(**inputs)
    torch.testing.assert_close(out.loss, ref.loss)
    out.loss.backward()
    ref.loss.backward()
    grads = dict(reference.named_parameters())
    for name, p in ours.named_parameters():
        if name in grads and p.grad is not None:
            torch.testing.assert_close(p.grad, grads[name].grad, atol=1e-6, rtol=1e-4, msg=name)


def test_roformer_nsp_loss_is_the_pooled_cls_classifier(tokenizer):
    ours = roformer_for(tokenizer, causal=False)
    masker = Masker.for_tokenizer(MaskingProcedure.from_config(schema_defaults("masking")), tokenizer)
    inputs = OBJECTIVES["mlm_nsp"].targets(batch(tokenizer), masker, torch.Generator().manual_seed(0))
    out = ours(**inputs)
    hidden = ours.roformer(inputs["input_ids"], attention_mask=inputs["attention_mask"],
                           token_type_ids=inputs["token_type_ids"]).last_hidden_state
    nsp_logits = ours.seq_relationship(torch.tanh(ours.pooler.dense(hidden[:, 0])))
    torch.testing.assert_close(out.nsp_loss, F.cross_entropy(nsp_logits, inputs["next_sentence_label"]))
    torch.testing.assert_close(out.loss, out.lm_loss + out.nsp_loss)
    # segment embeddings are kept: changing token types changes the encoding
    flipped = ours.roformer(inputs["input_ids"], attention_mask=inputs["attention_mask"],
                            token_type_ids=1 - inputs["token_type_ids"]).last_hidden_state
    assert not torch.allclose(hidden, flipped)


def test_roformer_ltr_loss_equals_roformer_for_causal_lm_with_one_shift(tokenizer):
    ours = roformer_for(tokenizer, causal=True)
    inputs = OBJECTIVES["ltr"].targets(batch(tokenizer, with_pairs=False), None, torch.Generator())
    loss = ours(**inputs).loss
    reference = RoFormerForCausalLM(ours.config).eval()
    missing = reference.load_state_dict(ours.state_dict(), strict=False)
    assert not missing.missing_keys
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    torch.testing.assert_close(loss, reference(input_ids=ids, attention_mask=mask,
                                               labels=ids.masked_fill(mask == 0, -100)).loss)


def test_every_causal_family_cannot_see_the_future(tokenizer):
    for name, family in ARCHITECTURES.items():
        ours = pretraining_model({**MODEL, "architecture": name}, len(tokenizer), tokenizer.pad_token_id, True)
        encoder = family.encoder_of(ours.eval())
        ids = batch(tokenizer, with_pairs=False)["input_ids"][:1]
        changed = ids.clone()
        changed[0, -2] = tokenizer.mask_token_id
        h1, h2 = encoder(ids).last_hidden_state, encoder(changed).last_hidden_state
        torch.testing.assert_close(h1[0, :-2], h2[0, :-2], msg=name)
        assert not torch.allclose(h1[0, -2], h2[0, -2]), name
        bidirectional = family.encoder_of(pretraining_model({**MODEL, "architecture": name}, len(tokenizer),
                                                            tokenizer.pad_token_id, False).eval())
        assert not torch.allclose(bidirectional(ids).last_hidden_state[0, 0],
                                  bidirectional(changed).last_hidden_state[0, 0]), name


def test_roformer_checkpoint_round_trip_keeps_the_nsp_pooler(tokenizer, tmp_path):
    ours = roformer_for(tokenizer, causal=False)
    ours.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert type(loaded).__name__ == "RoFormerModel"
    for name, tensor in loaded.state_dict().items():
        torch.testing.assert_close(tensor, ours.state_dict()["roformer." + name], msg=name)
    encoder = load_encoder(str(tmp_path))
    torch.testing.assert_close(encoder.pooler.dense.weight, ours.pooler.dense.weight)
    again = type(ours).from_pretrained(tmp_path)
    torch.testing.assert_close(again.cls.predictions.decoder.weight, ours.roformer.embeddings.word_embeddings.weight)
    # the fine-tuning model's sentence summary reads that pooler
    model = FinetuneModel(encoder, "classification", 2, "linear", dropout=0.0).eval()
    assert model.head.pooler is encoder.pooler


def test_bert_adam_is_adam_without_bias_correction():
    """engine.BertAdam against the update of google-research/bert's AdamWeightDecayOptimizer,
    written out by hand; with decay, it equals torch's AdamW once the correction is removed."""
    from bert_ablation.training.engine import BertAdam

    torch.manual_seed(0)
    w0 = torch.randn(4, 3)
    grads = [torch.randn(4, 3) for _ in range(3)]
    lr, b1, b2, eps, wd = 1e-2, 0.9, 0.999, 1e-6, 0.01
    param = torch.nn.Parameter(w0.clone())
    opt = BertAdam([{"params": [param], "weight_decay": wd}], lr=lr, betas=(b1, b2), eps=eps)
    w, m, v = w0.clone(), torch.zeros(4, 3), torch.zeros(4, 3)
    for g in grads:
        param.grad = g.clone()
        opt.step()
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (v.sqrt() + eps) + wd * w)
        torch.testing.assert_close(param.data, w)
    # without the correction the first step is larger: m / sqrt(v) = (1 - b1) / sqrt(1 - b2) sign(g), ~3.16x
    # AdamW's m_hat / sqrt(v_hat) = sign(g)
    adamw_param = torch.nn.Parameter(w0.clone())
    adamw = torch.optim.AdamW([adamw_param], lr=lr, betas=(b1, b2), eps=eps, weight_decay=0.0)
    ours_param = torch.nn.Parameter(w0.clone())
    ours = BertAdam([ours_param], lr=lr, betas=(b1, b2), eps=eps)
    for p, o in ((adamw_param, adamw), (ours_param, ours)):
        p.grad = grads[0].clone()
        o.step()
    ratio = (ours_param.data - w0).abs().mean() / (adamw_param.data - w0).abs().mean()
    assert ratio == pytest.approx((1 - b1) / (1 - b2) ** 0.5, rel=1e-3)


def test_engine_records_which_optimizer_it_built():
    from bert_ablation.training.engine import BertAdam, Engine

    model = torch.nn.Linear(3, 2)
    from bert_ablation.settings import PretrainSettings

    corrected = Engine.from_settings(model, PretrainSettings.from_dict({}), lr=1e-3, total_steps=10, warmup_steps=0)
    original = Engine.from_settings(torch.nn.Linear(3, 2), PretrainSettings.from_dict({"adam_bias_correction": False}),
                                    lr=1e-3,
                                    total_steps=10, warmup_steps=0)
    assert isinstance(corrected.optimizer, torch.optim.AdamW) and isinstance(original.optimizer, BertAdam)
    assert corrected.optimizer_settings()["bias_correction"] is True
    assert original.optimizer_settings() == {"name": "BertAdam (no bias correction)", "bias_correction": False,
                                             "betas": [0.9, 0.999], "eps": 1e-6, "weight_decay": 0.01}


def test_the_host_computed_slots_and_labels_alone_give_the_same_loss_and_gradients(tokenizer):
    """The engine passes lm_positions/lm_targets built on the host (no device sync); a caller that
    passes only labels gets them derived: the same loss, gradients and counts."""
    from bert_ablation.models.masking import prediction_slots

    masker = Masker.for_tokenizer(MaskingProcedure.from_config(schema_defaults("masking")), tokenizer)
    labels_only = OBJECTIVES["mlm_nsp"].targets(batch(tokenizer), masker, torch.Generator().manual_seed(0))
    inputs = dict(labels_only)
    inputs["lm_positions"], inputs["lm_targets"] = prediction_slots(inputs["labels"])
    results = []
    for given in (inputs, labels_only):
        model = model_for(tokenizer, causal=False)
        out = model(**given)
        out.loss.backward()
        results.append((out, [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (a, grads_a), (b, grads_b) = results
    torch.testing.assert_close(a.loss, b.loss)
    assert int(a.lm_predictions) == int(b.lm_predictions) == int((inputs["labels"] != -100).sum())
    assert int(a.lm_correct) == int(b.lm_correct)
    for x, y in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(x, y)
