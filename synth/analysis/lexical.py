"""Lexical diversity: how much the texts of a set reuse one another's words and phrasing.

Reads: a list of texts. Writes: nothing; each measure returns its value (and, where it samples or
prunes, the parameters it used) for the caller to store.

Every measure equals a public reference implementation (NLTK's BLEU, Google's rouge-score,
scikit-learn's TF-IDF, gzip), as tests/test_lexical.py checks, yet runs in seconds on 50,000 texts.
"""

from __future__ import annotations

import gzip
import math
import re
from bisect import bisect_left, bisect_right
from itertools import chain

import numpy as np

from synth.kernel.errors import SynthError

WORD_TOKENIZER = r"lowercase \w+ words"
ROUGE_TOKENIZER = "rouge-score default (lowercase, [^a-z0-9]+ -> space)"
_WORD = re.compile(r"\w+")
# After lowercasing, rouge-score turns every other character into a space and splits on spaces,
# which leaves exactly the runs of [a-z0-9].
_ROUGE_TOKEN = re.compile(r"[a-z0-9]+")
# NLTK's SmoothingFunction().method1: a zero n-gram match count becomes this.
EPSILON = 0.1
# Hypotheses per sparse product in the TF-IDF candidate search.
BLOCK = 256


def words(text: str) -> list[str]:
    """The tokens behind distinct-n and Self-BLEU: lowercase runs of word characters."""
    return _WORD.findall(text.lower())


def rouge_tokens(text: str) -> list[str]:
    """rouge-score's default tokens (no stemming): lowercase runs of [a-z0-9]."""
    return _ROUGE_TOKEN.findall(text.lower())


def _dense(key: np.ndarray) -> np.ndarray:
    """Ids 0 to distinct - 1 for the keys, equal exactly where the keys are."""
    n = len(key)
    if not n:
        return key
    if (int(key.max()) + 1) * n <= np.iinfo(np.int64).max:
        # a plain sort of key and position packed in one int is several times faster than argsort
        packed = np.sort(key * n + np.arange(n))
        ranked, order = np.divmod(packed, n)
    else:
        order = np.argsort(key, kind="stable")
        ranked = key[order]
    dense = np.empty(n, dtype=np.int64)
    dense[order] = np.cumsum(np.r_[True, ranked[1:] != ranked[:-1]]) - 1
    return dense


def _ngrams(token_lists: list[list[str]], max_order: int):
    """For n = 1..max_order: (n, text index, n-gram id) of every n-gram inside one text.

    Ids are dense (0 to distinct - 1) and equal exactly when the n-grams are.
    """
    flat = list(chain.from_iterable(token_lists))
    vocab = dict(zip(dict.fromkeys(flat), range(len(flat))))
    ids = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    text = np.repeat(np.arange(len(lengths)), lengths)
    # tokens from each position to the end of its text, itself included
    left = np.repeat(np.cumsum(lengths), lengths) - np.arange(len(ids))
    position, gram = np.arange(len(ids)), ids
    for n in range(1, max_order + 1):
        if n > 1:
            # an n-gram is an (n-1)-gram that has room for one more token, and that token
            room = left[position] >= n
            position = position[room]
            gram = _dense(gram[room] * len(vocab) + ids[position + n - 1])
        yield n, text[position], gram


def ngram_ids(token_lists: list[list[str]], max_order: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Every (n, text index, dense n-gram id) for n = 1..max_order, to share between metrics."""
    return list(_ngrams(token_lists, max_order))


def distinct_n(texts: list[str], n: int, tokens: list[list[str]] | None = None,
               grams: list[tuple[int, np.ndarray, np.ndarray]] | None = None) -> float | None:
    """Unique n-grams / all n-grams over the whole set (Li et al., 2016); None if there are none.

    ``tokens`` (``words`` of each text) or ``grams`` (from :func:`ngram_ids`) may be passed in."""
    if n < 1:
        raise SynthError(f"distinct-n needs n >= 1, got {n}.")
    if grams is None or len(grams) < n:
        grams = ngram_ids(tokens if tokens is not None else [words(t) for t in texts], n)
    gram = grams[n - 1][2]
    return (int(gram.max()) + 1) / len(gram) if len(gram) else None


def compression_ratio(texts: list[str]) -> float | None:
    """Size / gzip size of the texts joined by newlines (higher: more repetition); None if empty."""
    if not texts:
        return None
    raw = "\n".join(texts).encode("utf-8")
    return len(raw) / len(gzip.compress(raw, compresslevel=9, mtime=0))


def _sample(n: int, limit: int, seed: int) -> np.ndarray:
    """Every index while n <= limit; past it, ``default_rng(seed).choice(n, limit)`` sorted."""
    if limit < 1:
        raise SynthError(f"The number of hypotheses must be at least 1, got {limit}.")
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _clipped_matches(text: np.ndarray, gram: np.ndarray, n_texts: int) -> np.ndarray:
    """Per text, the sum over its n-grams of their count clipped to the largest in any OTHER text."""
    if not len(gram):
        return np.zeros(n_texts, dtype=np.int64)
    # count each (n-gram, text) pair; sorted, each n-gram's texts stand together
    pair, count = np.unique(gram * n_texts + text, return_counts=True)
    g, t = np.divmod(pair, n_texts)
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    top = np.maximum.reduceat(count, starts)
    # the first text holding an n-gram's largest count sees only the second largest elsewhere
    holders = np.flatnonzero(count == top[g])
    holders = holders[np.r_[True, g[holders][1:] != g[holders][:-1]]]
    rest = count.copy()
    rest[holders] = 0
    second = np.maximum.reduceat(rest, starts)
    is_holder = np.zeros(len(count), dtype=bool)
    is_holder[holders] = True
    clipped = np.minimum(count, np.where(is_holder, second[g], top[g]))
    return np.bincount(t, weights=clipped, minlength=n_texts).astype(np.int64)


def _closest_other_length(sorted_lengths: list[int], length: int) -> int:
    """NLTK's closest reference length, among all lengths but one copy of ``length``; ties: shorter."""
    lo, hi = bisect_left(sorted_lengths, length), bisect_right(sorted_lengths, length)
    if hi - lo > 1:
        return length
    below = sorted_lengths[lo - 1] if lo > 0 else None
    above = sorted_lengths[hi] if hi < len(sorted_lengths) else None
    if above is None or (below is not None and length - below <= above - length):
        return below
    return above


def _sentence_bleu(matches: list[int], totals: list[int], hyp_len: int, ref_len: int) -> float:
    """NLTK's sentence_bleu from the clipped counts, uniform weights, method1 smoothing."""
    if matches[0] == 0:
        # NLTK returns 0 when no unigram matches, before smoothing (so also for an empty text)
        return 0.0
    weight = 1 / len(matches)
    logs = (weight * math.log(m / t if m else EPSILON / t) for m, t in zip(matches, totals))
    penalty = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return penalty * math.exp(math.fsum(logs))


def self_bleu(texts: list[str], max_order: int = 4, max_hypotheses: int = 10_000, seed: int = 0,
              tokens: list[list[str]] | None = None,
              grams: list[tuple[int, np.ndarray, np.ndarray]] | None = None) -> tuple[float | None, dict]:
    """Mean sentence BLEU of each text against all the others as references (Texygen's Self-BLEU).

    Equals the mean over texts of NLTK's ``sentence_bleu(others, text, weights=(1/max_order,) *
    max_order, smoothing_function=SmoothingFunction().method1)``, tokens from :func:`words`. A text
    with no token, or with no word found in any other text, scores 0 as in NLTK and still counts.
    Past ``max_hypotheses`` texts, the mean is over a seeded sample of them (numpy
    ``default_rng(seed).choice`` without replacement), each still scored against all the others.
    None when there are fewer than 2 texts. ``tokens`` (``words`` of each text) and ``grams`` (from
    :func:`ngram_ids`) may be passed in when already computed.
    """
    if max_order < 1:
        raise SynthError(f"Self-BLEU needs max_order >= 1, got {max_order}.")
    n = len(texts)
    chosen = _sample(n, max_hypotheses, seed) if n >= 2 else np.arange(0)
    params = {"tokenizer": WORD_TOKENIZER, "max_order": max_order,
              "smoothing": f"nltk method1 (epsilon {EPSILON})", "population": n,
              "hypotheses": len(chosen), "sampled": len(chosen) < n, "seed": seed}
    if n < 2:
        return None, params
    tokens = tokens if tokens is not None else [words(t) for t in texts]
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=n)
    # clipping needs only each n-gram's largest and second-largest count over the set, so no
    # hypothesis is ever compared with the references one by one
    if grams is None or len(grams) < max_order:
        grams = ngram_ids(tokens, max_order)
    matches = np.stack([_clipped_matches(text, gram, n)[chosen]
                        for _, text, gram in grams[:max_order]], axis=1)
    totals = np.maximum(1, lengths[chosen, None] - np.arange(max_order)[None, :])
    sorted_lengths = sorted(lengths.tolist())
    scores = [_sentence_bleu(m, t, length, _closest_other_length(sorted_lengths, length))
              for m, t, length in zip(matches.tolist(), totals.tolist(), lengths[chosen].tolist())]
    return math.fsum(scores) / len(scores), params


def _lcs_lengths(a: list[str], others: list[list[str]]) -> list[int]:
    """Length of the longest common subsequence of ``a`` with each of ``others``.

    Bit-parallel (Allison-Dix; Hyyro 2004) on one Python int for all of ``others`` at once: each
    has a lane of bits with a guard bit above it, and a bit left set marks a token not in the LCS.
    """
    # only tokens of ``a`` are ever looked up
    masks: dict[str, int] = dict.fromkeys(a, 0)
    lanes, offsets, offset = 0, [], 0
    for other in others:
        offsets.append(offset)
        for i, token in enumerate(other):
            if token in masks:
                masks[token] |= 1 << (offset + i)
        lanes |= ((1 << len(other)) - 1) << offset
        offset += len(other) + 1
    v = lanes
    for token in a:
        match = masks[token]
        if match:
            u = v & match
            # clearing the guard bits stops a lane's carry from reaching the next lane
            v = ((v + u) | (v - u)) & lanes
    return [len(other) - ((v >> start) & ((1 << len(other)) - 1)).bit_count()
            for other, start in zip(others, offsets)]


def _rouge_f(lcs: int, target_len: int, prediction_len: int) -> float:
    """rouge-score's ROUGE-L F-measure from the LCS length, in its order of operations."""
    if lcs == 0:
        return 0.0
    precision = lcs / prediction_len
    recall = lcs / target_len
    return 2 * precision * recall / (precision + recall)


def rouge_l_f(a: list[str], b: list[str]) -> float:
    """ROUGE-L F1 of token lists ``a`` (target) and ``b`` (prediction), as rouge-score gives it.

    0 when either is empty. F1 is symmetric; swapping the two can change only the last bit.
    """
    return _rouge_f(_lcs_lengths(a, [b])[0], len(a), len(b)) if a and b else 0.0


def _tfidf(token_lists: list[list[str]]) -> "sparse.csr_matrix":
    """The rows of scikit-learn's ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)``.

    Unigrams and bigrams, tf 1 + ln(count), idf ln((1 + n) / (1 + df)) + 1, rows of unit length;
    the columns come in another order. Built with numpy: sklearn's Python vocabulary of every
    distinct bigram takes tens of seconds on 50,000 texts.
    """
    from scipy import sparse  # here, not at import: 0.2 s that a page's first draw need not pay

    rows, columns, width = [], [], 0
    for _, text, gram in _ngrams(token_lists, 2):
        rows.append(text)
        columns.append(gram + width)
        width += int(gram.max()) + 1 if len(gram) else 0
    row, column = np.concatenate(rows), np.concatenate(columns)
    n = len(token_lists)
    x = sparse.csr_matrix((np.ones(len(row)), (row, column)), shape=(n, width))
    x.sum_duplicates()
    document_frequency = np.bincount(x.indices, minlength=width)
    idf = np.log((1 + n) / (1 + document_frequency)) + 1
    x.data = (1 + np.log(x.data)) * idf[x.indices]
    norms = np.sqrt(np.bincount(np.repeat(np.arange(n), np.diff(x.indptr)), weights=x.data ** 2,
                                minlength=n))
    x.data /= np.repeat(np.where(norms == 0, 1.0, norms), np.diff(x.indptr))
    return x


def _tfidf_candidates(token_lists: list[list[str]], chosen: np.ndarray, k: int) -> list[np.ndarray]:
    """For each chosen text, the (up to) k other texts of highest TF-IDF cosine above 0."""
    x = _tfidf(token_lists)
    xt = x.T.tocsr()
    pools: list[np.ndarray] = []
    for start in range(0, len(chosen), BLOCK):
        rows = chosen[start:start + BLOCK]
        sims = (x[rows] @ xt).tocsr()
        for r, row in enumerate(rows):
            span = slice(sims.indptr[r], sims.indptr[r + 1])
            # a zero cosine means no shared token, hence a ROUGE-L of 0: only nonzeros are kept
            others, values = sims.indices[span], sims.data[span]
            keep = others != row
            others, values = others[keep], values[keep]
            if len(others) > k:
                others = others[np.argpartition(-values, k - 1)[:k]]
            pools.append(others)
    return pools


def rouge_l_max_mean(texts: list[str], max_hypotheses: int = 2000, candidates: int = 32, seed: int = 0
                     ) -> tuple[float | None, dict]:
    """Mean over texts of the highest ROUGE-L F with any other text (the Self-Instruct filter's measure).

    Tokens from :func:`rouge_tokens`. Every pair is scored while there are at most ``candidates``
    + 1 texts; past that, each text is scored only against its ``candidates`` closest others by
    TF-IDF cosine (word unigrams and bigrams, sublinear tf), where its best match almost always
    is; a miss can only lower the value. Past ``max_hypotheses`` texts, the mean is over a seeded
    sample of them (as in :func:`self_bleu`), each still searched among all the others. None when
    there are fewer than 2 texts.
    """
    if candidates < 1:
        raise SynthError(f"ROUGE-L needs at least 1 candidate per text, got {candidates}.")
    n = len(texts)
    chosen = _sample(n, max_hypotheses, seed) if n >= 2 else np.arange(0)
    exhaustive = n <= candidates + 1
    params = {"tokenizer": ROUGE_TOKENIZER, "population": n, "hypotheses": len(chosen),
              "sampled": len(chosen) < n, "candidates": "all" if exhaustive else candidates,
              "candidate_selection": "exhaustive" if exhaustive else "tf-idf cosine top-k", "seed": seed}
    if n < 2:
        return None, params
    tokens = [rouge_tokens(t) for t in texts]
    if exhaustive:
        pools = [[j for j in range(n) if j != i] for i in chosen.tolist()]
    else:
        pools = _tfidf_candidates(tokens, chosen, candidates)
    best = []
    for i, pool in zip(chosen.tolist(), pools):
        others = [tokens[j] for j in pool]
        lcs = _lcs_lengths(tokens[i], others) if tokens[i] else []
        best.append(max((_rouge_f(s, len(tokens[i]), len(o)) for s, o in zip(lcs, others)), default=0.0))
    return math.fsum(best) / len(best), params
