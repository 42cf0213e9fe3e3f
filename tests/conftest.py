import random

import pytest

WORDS = ("the cat dog sat on mat ran far away big small red blue house tree car road city man woman "
         "child saw found took gave river stone garden winter summer").split()


def make_documents(n_docs: int, seed: int = 0) -> list[list[str]]:
    rng = random.Random(seed)
    return [
        [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))).capitalize() + "."
         for _ in range(rng.randint(2, 8))]
        for _ in range(n_docs)
    ]


@pytest.fixture(scope="session")
def tokenizer():
    from bert_ablation.data.tokenizer import train_wordpiece

    sentences = [s for doc in make_documents(200) for s in doc]
    return train_wordpiece(sentences, vocab_size=120, lowercase=True, min_frequency=1)


@pytest.fixture(scope="session")
def text_corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n\n".join("\n".join(doc) for doc in make_documents(300)) + "\n")
    return path


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Offline mode, a private cache, and any socket connection or DNS lookup fails the test:
    hub code runs for real against local folders laid out like hub repositories."""
    import socket

    import datasets
    import huggingface_hub

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # datasets and huggingface_hub read those variables at import: set the values they parsed too
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
