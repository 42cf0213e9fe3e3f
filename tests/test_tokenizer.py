import os
import subprocess
import sys
from collections import Counter

from bert_ablation.data.tokenizer import SPECIAL_TOKENS, learn_wordpiece_vocab

SCRIPT = """
from tests.conftest import make_documents
from bert_ablation.data.tokenizer import train_wordpiece
sentences = [s for doc in make_documents(300) for s in doc]
print(sorted(train_wordpiece(sentences, 150, True, 1).get_vocab().items()))
"""


def test_vocabulary_is_the_same_in_every_process():
    """tokenizers' own trainer breaks count ties by hash order; ours must not."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outputs = {
        subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1 and outputs.pop().count("##") > 10


def test_merges_follow_pair_frequency_with_lexicographic_ties():
    counts = Counter({"low": 5, "lower": 2, "newest": 6, "widest": 3})
    vocab = learn_wordpiece_vocab(counts, vocab_size=len(SPECIAL_TOKENS) + 11 + 3, min_frequency=1)
    assert vocab[: len(SPECIAL_TOKENS)] == SPECIAL_TOKENS
    assert len(vocab) == len(SPECIAL_TOKENS) + 11 + 3  # 11 symbols (first letters and ##letters), 3 merges
    # ##e+##s and ##s+##t both count 9: the smaller pair wins; then ##es+##t (9); then the
    # 7-count tie ##o+##w vs l+##o goes to '##o' < 'l'
    assert vocab[-3:] == ["##es", "##est", "##ow"]
    # merges stop at min_frequency: after l+##ow (7) the best pair counts 6
    assert learn_wordpiece_vocab(counts, vocab_size=1000, min_frequency=7)[-1] == "low"
