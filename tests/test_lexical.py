import gzip
import random

import numpy as np
import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from rouge_score import rouge_scorer
from rouge_score.tokenize import tokenize as rouge_reference_tokenize
from sklearn.feature_extraction.text import TfidfVectorizer

from synth.analysis import lexical
from synth.kernel.errors import SynthError

SCORER = rouge_scorer.RougeScorer(["rougeL"])

OPENERS = ["Hi,", "Hello there!", "Dear support team,", "Quick question:", "I hope you can help.", ""]
SUBJECTS = ["my new router", "the mobile app", "our billing account", "the smart thermostat",
            "my order #4521", "the premium plan", "this laptop charger", "the shared calendar"]
PROBLEMS = ["stopped working after the last update", "keeps disconnecting every few minutes",
            "shows an error when I log in", "was charged twice this month", "never arrived at my address",
            "is much slower than it used to be", "won't sync with my other devices"]
ASKS = ["Can you help me fix it?", "What should I do next?", "Please send a replacement.",
        "I would like a refund.", "Is there a known issue?", "Thanks in advance!", "Any advice would be great."]
EXTRAS = ["I already tried restarting it twice.", "This is really frustrating.", "It worked fine yesterday.",
          "I'm using version 2.3.1 on Android 14.", "", "", "My neighbour has the same problem."]


def support_requests(n: int, seed: int) -> list[str]:
    """Texts from a template grammar: shared phrases, so most texts have real near-matches."""
    r = random.Random(seed)
    texts = []
    for _ in range(n):
        parts = [r.choice(OPENERS), r.choice(SUBJECTS).capitalize(), r.choice(PROBLEMS) + ".",
                 r.choice(EXTRAS), r.choice(ASKS)]
        if r.random() < 0.3:
            r.shuffle(parts)
        texts.append(" ".join(p for p in parts if p))
    return texts


def small_vocabulary_corpus(seed: int, n: int = 25) -> list[str]:
    """Texts of 1 to 14 words from 8 words (so n-grams repeat), with duplicates and a 1-word text."""
    r = random.Random(seed)
    vocab = ["the", "cat", "sat", "on", "a", "Mat", "dog", "ran"]
    texts = [" ".join(r.choice(vocab) for _ in range(r.randint(2, 14))) for _ in range(n - 3)]
    return texts + [texts[0], texts[1].upper() + "!", r.choice(vocab)]


def nltk_self_bleu(texts: list[str], hypotheses=None, weights=(0.25,) * 4) -> float:
    """The reference: NLTK's sentence_bleu of each hypothesis against all other texts, averaged."""
    tokens = [lexical.words(t) for t in texts]
    chosen = range(len(texts)) if hypotheses is None else hypotheses
    scores = [sentence_bleu([tokens[j] for j in range(len(tokens)) if j != i], tokens[i], weights=weights,
                            smoothing_function=SmoothingFunction().method1) for i in chosen]
    return sum(scores) / len(scores)


def brute_force_best_rouge(texts: list[str]) -> np.ndarray:
    """For each text, the highest rouge-score ROUGE-L F with any other text (each pair scored once)."""
    best = np.zeros(len(texts))
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            f = SCORER.score(texts[i], texts[j])["rougeL"].fmeasure
            best[i], best[j] = max(best[i], f), max(best[j], f)
    return best


@pytest.fixture(scope="module")
def requests_300():
    texts = support_requests(300, seed=7)
    return texts, brute_force_best_rouge(texts)


def test_distinct_n_by_hand():
    """Exact fractions."""
    texts = ["The cat sat.", "the CAT ran"]
    # unigrams: the, cat, sat, the, cat, ran -> 4 unique of 6
    assert lexical.distinct_n(texts, 1) == 4 / 6
    # bigrams: (the cat), (cat sat), (the cat), (cat ran) -> 3 unique of 4; none across texts
    assert lexical.distinct_n(texts, 2) == 3 / 4
    assert lexical.distinct_n(["a b", "a b"], 2) == 1 / 2
    assert lexical.distinct_n(texts, 3) == 2 / 2
    assert lexical.distinct_n(texts, 4) is None
    assert lexical.distinct_n([], 1) is None
    with pytest.raises(SynthError, match="n >= 1"):
        lexical.distinct_n(texts, 0)


def test_distinct_n_matches_a_counter_of_tuples():
    """Exact, on a corpus with repeats, against the plain definition."""
    texts = small_vocabulary_corpus(5, n=60)
    for n in (1, 2, 3, 5):
        grams = [tuple(w[i:i + n]) for w in map(lexical.words, texts) for i in range(len(w) - n + 1)]
        assert lexical.distinct_n(texts, n) == len(set(grams)) / len(grams)


def test_dense_ids_on_both_paths():
    """Exact: ids equal where keys are, on the packed sort and on the argsort fallback for huge keys."""
    small = np.array([7, 3, 7, 9, 3], dtype=np.int64)
    assert lexical._dense(small).tolist() == [1, 0, 1, 2, 0]
    huge = np.array([2**62, 5, 2**62, 7], dtype=np.int64)
    assert lexical._dense(huge).tolist() == [2, 0, 2, 1]


def test_compression_ratio_is_gzip_and_grows_with_repetition():
    """Exact against a direct gzip computation."""
    texts = ["Hello, wörld!", "second text", ""]
    raw = "Hello, wörld!\nsecond text\n".encode("utf-8")
    assert lexical.compression_ratio(texts) == len(raw) / len(gzip.compress(raw, compresslevel=9, mtime=0))
    r = random.Random(0)
    varied = ["".join(r.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(60)) for _ in range(50)]
    repetitive = ["the same sentence about the same router, again"] * 50
    assert lexical.compression_ratio(repetitive) > 3 * lexical.compression_ratio(varied)
    assert lexical.compression_ratio([]) is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_self_bleu_equals_nltk(seed):
    """Equal to NLTK's sentence_bleu (method1) averaged over every text, to 1e-9."""
    texts = small_vocabulary_corpus(seed)
    value, params = lexical.self_bleu(texts)
    assert value == pytest.approx(nltk_self_bleu(texts), abs=1e-9)
    assert params == {"tokenizer": lexical.WORD_TOKENIZER, "max_order": 4,
                      "smoothing": "nltk method1 (epsilon 0.1)", "population": 25, "hypotheses": 25,
                      "sampled": False, "seed": 0}


def test_self_bleu_other_orders_equal_nltk():
    """Equal to NLTK with uniform weights 1/max_order, to 1e-9."""
    texts = small_vocabulary_corpus(3)
    assert lexical.self_bleu(texts, max_order=2)[0] == pytest.approx(
        nltk_self_bleu(texts, weights=(0.5, 0.5)), abs=1e-9)
    assert lexical.self_bleu(texts, max_order=1)[0] == pytest.approx(
        nltk_self_bleu(texts, weights=(1.0,)), abs=1e-9)


def test_self_bleu_with_empty_and_unmatched_texts_equals_nltk():
    """To 1e-9: NLTK scores an empty hypothesis (and one with no word found elsewhere) 0, and an
    empty reference still competes for the closest reference length."""
    texts = ["", "the cat sat", "the cat sat on the mat", "?!", "zebra", "the dog", "a cat"]
    value, _ = lexical.self_bleu(texts)
    assert value == pytest.approx(nltk_self_bleu(texts), abs=1e-9)
    assert lexical.self_bleu(["", ""])[0] == 0.0


def test_self_bleu_of_identical_texts_is_one():
    """Exact 1 up to floating point (1e-12)."""
    assert lexical.self_bleu(["Same words here, again."] * 5)[0] == pytest.approx(1.0, abs=1e-12)


def test_self_bleu_sampled_hypotheses_equal_nltk_on_those():
    """To 1e-9: the mean of NLTK's sentence_bleu over exactly the sampled hypotheses, which are
    numpy default_rng(seed).choice(n, max_hypotheses, replace=False), each against ALL others."""
    texts = small_vocabulary_corpus(4, n=30)
    value, params = lexical.self_bleu(texts, max_hypotheses=7, seed=3)
    sampled = np.random.default_rng(3).choice(30, size=7, replace=False)
    assert value == pytest.approx(nltk_self_bleu(texts, hypotheses=sampled), abs=1e-9)
    assert (params["population"], params["hypotheses"], params["sampled"], params["seed"]) == (30, 7, True, 3)


def test_self_bleu_needs_two_texts():
    """None below two texts; bad arguments raise SynthError."""
    assert lexical.self_bleu(["only one"])[0] is None
    assert lexical.self_bleu([])[0] is None
    with pytest.raises(SynthError):
        lexical.self_bleu(["a", "b"], max_order=0)
    with pytest.raises(SynthError):
        lexical.self_bleu(["a", "b"], max_hypotheses=0)


def test_rouge_tokens_equal_rouge_score_tokenizer():
    """Exact token lists."""
    tricky = ["", "   ", "Hello, World!", "don't e-mail me at FOO_bar@x.com", "3.14 vs 2,718 and 1e-9",
              "Ünïcödé café naïve ß İstanbul", "KELVIN \u212a sign", "tabs\tand\nnewlines\r\n",
              "１２３ fullwidth",
              "emoji 🙂 in-between", "CamelCase and snake_case", "--!!??..", "a1b2 c3 4d"]
    for text in tricky:
        assert lexical.rouge_tokens(text) == rouge_reference_tokenize(text, None), text


def test_rouge_l_f_equals_rouge_score_on_random_pairs():
    """Equal to RougeScorer(['rougeL']).score(target, prediction).fmeasure to 1e-12, including
    empty and punctuation-only strings and texts longer than 64 tokens (multi-word ints)."""
    r = random.Random(11)
    vocab = ["the", "The", "CAT", "sat", "on", "mat", "3", "42", "x1", "dog", ",", ".", "!", "--", "e-mail"]
    texts = ["", "?!", "..."] + [" ".join(r.choice(vocab) for _ in range(r.randint(1, 90))) for _ in range(120)]
    for _ in range(600):
        target, prediction = r.choice(texts), r.choice(texts)
        expected = SCORER.score(target, prediction)["rougeL"].fmeasure
        got = lexical.rouge_l_f(lexical.rouge_tokens(target), lexical.rouge_tokens(prediction))
        assert got == pytest.approx(expected, abs=1e-12), (target, prediction)


def test_batched_lcs_equals_one_at_a_time():
    """Exact: packing many texts into lanes of one int gives each its own LCS length."""
    r = random.Random(2)
    a = [r.choice("abcd") for _ in range(30)]
    others = [[r.choice("abcde") for _ in range(r.randint(0, 70))] for _ in range(40)]
    assert lexical._lcs_lengths(a, others) == [lexical._lcs_lengths(a, [o])[0] for o in others]


def test_tfidf_equals_sklearn():
    """Cosine similarities equal sklearn's TfidfVectorizer (unigrams+bigrams, sublinear tf) to 1e-12."""
    texts = support_requests(80, seed=1) + ["", "?!"]
    ours = lexical._tfidf([lexical.rouge_tokens(t) for t in texts])
    sk = TfidfVectorizer(tokenizer=lexical.rouge_tokens, lowercase=False, token_pattern=None,
                         ngram_range=(1, 2), sublinear_tf=True).fit_transform(texts)
    assert ours.shape == sk.shape
    assert np.abs((ours @ ours.T).toarray() - (sk @ sk.T).toarray()).max() < 1e-12


def test_rouge_l_max_mean_exhaustive_equals_brute_force():
    """Equal to the brute-force max over all others of rouge-score's F, averaged, to 1e-12."""
    texts = support_requests(20, seed=3) + ["", "Hello there!"]
    value, params = lexical.rouge_l_max_mean(texts)
    assert value == pytest.approx(brute_force_best_rouge(texts).mean(), abs=1e-12)
    assert params == {"tokenizer": lexical.ROUGE_TOKENIZER, "population": 22, "hypotheses": 22,
                      "sampled": False, "candidates": "all", "candidate_selection": "exhaustive", "seed": 0}


@pytest.mark.slow
def test_rouge_l_max_mean_pruned_equals_brute_force(requests_300):
    """On this seeded 300-text corpus the TF-IDF top-32 always holds the true best match, so the
    pruned mean equals brute force to 1e-12 (top-16 already does; top-1 to top-8 do not)."""
    texts, best = requests_300
    value, params = lexical.rouge_l_max_mean(texts, candidates=32)
    assert value == pytest.approx(best.mean(), abs=1e-12)
    assert params["candidates"] == 32 and params["candidate_selection"] == "tf-idf cosine top-k"
    # pruning is real: with a single candidate per text, some best matches are missed
    assert lexical.rouge_l_max_mean(texts, candidates=1)[0] < best.mean() - 1e-3


def test_rouge_l_max_mean_sampled_equals_brute_force_on_those(requests_300):
    """To 1e-12: the mean of the brute-force best over exactly the sampled hypotheses,
    numpy default_rng(seed).choice(n, max_hypotheses, replace=False), each searched among ALL others."""
    texts, best = requests_300
    value, params = lexical.rouge_l_max_mean(texts, max_hypotheses=40, seed=5)
    sampled = np.random.default_rng(5).choice(300, size=40, replace=False)
    assert value == pytest.approx(best[sampled].mean(), abs=1e-12)
    assert (params["population"], params["hypotheses"], params["sampled"], params["seed"]) == (300, 40, True, 5)


def test_rouge_l_max_mean_edge_cases():
    """Exact: identical texts give 1, texts without tokens give 0, fewer than 2 texts give None."""
    assert lexical.rouge_l_max_mean(["Same text, twice."] * 40)[0] == 1.0
    assert lexical.rouge_l_max_mean(["", "?!", "..."] * 20, candidates=4)[0] == 0.0
    mixed = ["", "alpha beta", "gamma delta", "alpha beta gamma"] * 3
    assert lexical.rouge_l_max_mean(mixed, candidates=2)[0] == pytest.approx(
        brute_force_best_rouge(mixed).mean(), abs=1e-12)
    assert lexical.rouge_l_max_mean(["one"])[0] is None
    with pytest.raises(SynthError):
        lexical.rouge_l_max_mean(["a", "b"], candidates=0)
